"""SendMessageFunction: SQS batch of messages to citizens -> ePROM (letters, SMS, e-mail) -> MessagesTable (refusals
to the DLQ).

Records of a batch are sent one after the other, each waiting for its slot of ePROM's pace; only records to retry
later are reported in batchItemFailures.
"""

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext
from eprom.api_key import ApiKeySource, read_secret
from eprom.eprom_client import eprom_client_from
from eprom.message_documents import MessageDocuments
from eprom.message_store import MessageStore
from eprom.outcome_bus import OutcomeBus
from eprom.pacer import Pacer
from eprom.queues import DeadLetterQueue, QueueVisibility
from eprom.retrying_consumer import RetryingConsumer, RetryPolicy

from send_message.sending import MessageSender
from send_message.settings import SenderSettings

MESSAGE_BATCH_SIZE = 5  # the SQS event's BatchSize in template.yaml
settings = SenderSettings.from_environment()
logger = Logger()
metrics = Metrics()

store = MessageStore(settings.messages_table, retention_days=settings.result_retention_days)
pacer = Pacer(settings.idempotency_table, store.client, requests_per_second=settings.eprom_requests_per_second)


@cache
def fingerprint_key() -> bytes:
    """Read on first use (not at import, which must not call AWS), then kept: the key never changes."""
    return read_secret(settings.order_fingerprint_secret_id, max_age_seconds=0).encode()


sender = MessageSender(
    eprom=eprom_client_from(settings, ApiKeySource.of(settings), pacer=pacer, max_connections=1),
    store=store,
    documents=MessageDocuments(settings.message_documents_bucket),
    outcomes=OutcomeBus(settings.outcome_bus_name),
    fingerprint_key=fingerprint_key,
    allow_synthetic_national_ids=settings.allow_synthetic_national_ids,
    allow_test_mode_orders=settings.allow_test_mode_orders,
)
consumer = RetryingConsumer(
    name="Messages",
    handle=sender.handle,
    announce_refusal=sender.announce_refusal,
    dead_letters=DeadLetterQueue(settings.message_dead_letter_queue_url),
    queue=QueueVisibility(),
    policy=RetryPolicy(
        base_delay_seconds=settings.retry_base_delay_seconds,
        max_delay_seconds=settings.retry_max_delay_seconds,
        window_seconds=settings.message_retry_window_hours * 3600,
    ),
    # a batch's messages that ePROM's pace held back come back spread over the slots they would have taken
    flow_control_spread_seconds=MESSAGE_BATCH_SIZE / settings.eprom_requests_per_second,
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer.consume(event, context.get_remaining_time_in_millis() / 1000)
