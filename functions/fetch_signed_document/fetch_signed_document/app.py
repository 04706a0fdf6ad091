"""FetchSignedDocumentFunction: SignedDocumentQueue jobs -> GET ePROM's ExternalDocument -> FormResultsBucket
(signed/{formOrderId}.pdf) and the item's `signedDocument`. Partial batch failures: only jobs to retry stay."""

import time
from functools import partial
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext
from eprom.api_key import ApiKeySource
from eprom.eprom_client import eprom_client_from
from eprom.order_store import OrderStore
from eprom.queues import DeadLetterQueue, QueueVisibility, SqsRecord
from eprom.results_store import ResultsStore

from fetch_signed_document.fetching import FetchLater, FetchPolicy, fetch_signed_document
from fetch_signed_document.settings import FetcherSettings

settings = FetcherSettings.from_environment()
logger = Logger()
metrics = Metrics()
api_keys = ApiKeySource.of(settings)
eprom = eprom_client_from(settings, api_keys)
results = ResultsStore(settings.form_results_bucket)
store = OrderStore(settings.form_orders_table)
dead_letters = DeadLetterQueue(settings.signed_document_dead_letter_queue_url)
job_queue = QueueVisibility()
policy = FetchPolicy(
    base_delay_seconds=settings.document_retry_base_delay_seconds,
    max_delay_seconds=settings.document_retry_max_delay_seconds,
    window_seconds=settings.document_retry_window_hours * 3600,
    not_found_window_seconds=settings.document_not_found_window_hours * 3600,
    read_timeout_seconds=settings.eprom_read_timeout_seconds,
    max_bytes=settings.signed_document_max_bytes,
)


def fetch_record(record: SqsRecord, deadline: float) -> None:
    try:
        fetch_signed_document(
            record.body,
            sent_at=record.sent_at,
            receive_count=record.receive_count,
            eprom=eprom,
            results=results,
            store=store,
            dead_letters=dead_letters,
            policy=policy,
            retry_later=partial(job_queue.retry_after, record.event_source_arn, record.receipt_handle),
            deadline=deadline,
        )
    finally:
        logger.remove_keys(["form_order_id"])


def is_failed(record: SqsRecord, deadline: float) -> bool:
    try:
        fetch_record(record, deadline)
    except FetchLater:  # logged with its reason; its next delivery is set (backoff)
        return True
    except Exception as error:  # the type only: a message could quote what it failed on
        logger.error("signed-document job failed; SQS delivers it again", error_type=type(error).__name__)
        return True
    return False


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Written out rather than Powertools' batch processor, whose module imports asyncio: ~25 ms of every cold
    # start for a loop over at most five jobs. Failed jobs are reported, the invocation as a whole never fails.
    records = [SqsRecord.of(record) for record in event["Records"]]
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - settings.document_time_reserve_seconds
    failed = [record for record in records if is_failed(record, deadline)]
    return {"batchItemFailures": [{"itemIdentifier": record.message_id} for record in failed]}
