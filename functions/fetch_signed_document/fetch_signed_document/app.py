"""FetchSignedDocumentFunction: SignedDocumentQueue jobs -> GET ePROM's ExternalDocument -> FormResultsBucket
(signed/{formOrderId}.pdf) and the item's `signedDocument`. Partial batch failures: only jobs to fetch later stay."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext
from eprom.api_key import ApiKeySource
from eprom.eprom_client import eprom_client_from
from eprom.order_store import OrderStore
from eprom.queues import DeadLetterQueue, QueueVisibility
from eprom.results_store import ResultsStore
from eprom.retrying_consumer import RetryingConsumer, RetryPolicy

from fetch_signed_document.fetching import FetchPolicy, SignedDocumentFetcher
from fetch_signed_document.settings import FetcherSettings

settings = FetcherSettings.from_environment()
logger = Logger()
metrics = Metrics()
api_keys = ApiKeySource.of(settings)
fetcher = SignedDocumentFetcher(
    eprom=eprom_client_from(settings, api_keys),
    results=ResultsStore(settings.form_results_bucket),
    store=OrderStore(settings.form_orders_table),
    policy=FetchPolicy(
        not_found_window_seconds=settings.document_not_found_window_hours * 3600,
        read_timeout_seconds=settings.eprom_read_timeout_seconds,
        max_bytes=settings.signed_document_max_bytes,
        time_reserve_seconds=settings.document_time_reserve_seconds,
    ),
)
# One job at a time: a batch holds at most five, and each streams a document through /tmp.
consumer = RetryingConsumer(
    name="SignedDocuments",
    handle=fetcher.handle,
    dead_letters=DeadLetterQueue(settings.signed_document_dead_letter_queue_url),
    queue=QueueVisibility(),
    policy=RetryPolicy(
        base_delay_seconds=settings.document_retry_base_delay_seconds,
        max_delay_seconds=settings.document_retry_max_delay_seconds,
        window_seconds=settings.document_retry_window_hours * 3600,
    ),
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer.consume(event, context.get_remaining_time_in_millis() / 1000)
