"""PrivacySettingsFunction: upstream's synchronous requests (Lambda Invoke) about privacy settings (PVK) -> ePROM's
three PVK calls, each paced; a list is written to FormResultsBucket as it is read (architecture.md)."""

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext
from eprom.api_key import ApiKeySource
from eprom.aws_clients import aws_client
from eprom.eprom_client import eprom_client_from
from eprom.pacer import Pacer
from eprom.results_store import ResultsStore

from privacy_settings.operations import PrivacySettings
from privacy_settings.settings import PrivacySettingsSettings

settings = PrivacySettingsSettings.from_environment()
logger = Logger()
metrics = Metrics()
pacer = Pacer(
    settings.idempotency_table, aws_client("dynamodb"), requests_per_second=settings.eprom_requests_per_second
)
privacy = PrivacySettings(
    eprom=eprom_client_from(settings, ApiKeySource.of(settings), pacer=pacer),
    results=ResultsStore(settings.form_results_bucket),
    call_seconds=settings.privacy_call_seconds,
    allow_synthetic_national_ids=settings.allow_synthetic_national_ids,
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    ends_at = time.time() + context.get_remaining_time_in_millis() / 1000
    return privacy.handle(event, ends_at=ends_at, request_id=context.aws_request_id)
