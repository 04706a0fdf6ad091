"""PlaceOrderFunction: SQS batch of order messages -> ePROM -> FormOrdersTable (refusals to the DLQ).

Records of a batch are placed in parallel on a bounded thread pool, so a batch costs about one ePROM
round trip; only records to retry later are reported in batchItemFailures.
"""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import cache, partial

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from aws_lambda_powertools.utilities.typing import LambdaContext
from eprom.api_key import read_secret
from eprom.eprom_client import eprom_client_from
from eprom.models import OrderMessage
from eprom.order_store import OrderStore
from eprom.outcomes import OutcomeBus
from eprom.queues import AMBIGUOUS_ATTEMPT_ID, DeadLetterQueue, QueueVisibility, SqsRecord

from place_order import placement
from place_order.claims import OrderClaims
from place_order.settings import PlacerSettings

settings = PlacerSettings.from_environment()
logger = Logger()
metrics = Metrics()

eprom = eprom_client_from(settings, max_connections=settings.max_concurrent_orders)
store = OrderStore(settings.form_orders_table, retention_days=settings.result_retention_days)
claims = OrderClaims(
    settings.idempotency_table,
    store.client,
    retention=timedelta(days=settings.result_retention_days),
    idempotency_expiry=timedelta(seconds=settings.idempotency_expiry_seconds),
)
refusals = placement.Refusals(DeadLetterQueue(settings.dead_letter_queue_url), OutcomeBus(settings.outcome_bus_name))
order_queue = QueueVisibility()
retry_policy = placement.RetryPolicy(
    base_delay_seconds=settings.retry_base_delay_seconds,
    max_delay_seconds=settings.retry_max_delay_seconds,
    window_seconds=settings.order_retry_window_hours * 3600,
    ambiguous=settings.ambiguous_order_policy,
)
validation_context = {
    "allow_synthetic_national_ids": settings.allow_synthetic_national_ids,
    "allow_test_mode_orders": settings.allow_test_mode_orders,
}
idempotency_config = IdempotencyConfig(
    event_key_jmespath="order_reference",
    payload_validation_jmespath="@",  # the same orderReference with other content is refused, not placed
    expires_after_seconds=settings.idempotency_expiry_seconds,
    raise_on_no_idempotency_key=True,
)
workers = ThreadPoolExecutor(max_workers=settings.max_concurrent_orders, thread_name_prefix="order")


@idempotent_function(
    data_keyword_argument="order",
    config=idempotency_config,
    # The store's client: Powertools would otherwise build a second boto3 session (~70 ms of cold start).
    persistence_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=store.client),
    output_serializer=PydanticSerializer(placement.PlacementOutcome),
)
def place_once(order: OrderMessage, attempt: placement.Attempt, read_timeout: float) -> placement.PlacementOutcome:
    return placement.place_with_eprom(
        order,
        attempt=attempt,
        eprom=eprom,
        claims=claims,
        store=store,
        fingerprint_key=fingerprint_key(),
        read_timeout=read_timeout,
        ambiguous_policy=retry_policy.ambiguous,
    )


@cache
def fingerprint_key() -> bytes:
    """Read on first use (not at import, which must not call AWS), then kept: the key never changes."""
    return read_secret(settings.order_fingerprint_secret_id, max_age_seconds=0).encode()


def place_record(record: SqsRecord, lambda_context: LambdaContext) -> None:
    def read_timeout() -> float:
        return placement.eprom_read_timeout(
            lambda_context.get_remaining_time_in_millis() / 1000,
            connect_timeout=settings.eprom_connect_timeout_seconds,
            longest=settings.eprom_read_timeout_seconds,
        )

    # A parked message a person redrove keeps its attributes: the attempt it was parked for is theirs to replace.
    redriven = record.string_attributes.get("rejectionClass") == "Ambiguous"
    attempt = placement.Attempt(
        id=str(uuid.uuid4()),
        sending_until=time.time() + lambda_context.get_remaining_time_in_millis() / 1000,
        replacing=record.string_attributes.get(AMBIGUOUS_ATTEMPT_ID) if redriven else None,
    )
    logger.thread_safe_append_keys(message_id=record.message_id)
    try:
        placement.handle_order_message(
            record.body,
            message_id=record.message_id,
            sent_at=record.sent_at,
            validation_context=validation_context,
            place_once=lambda order: place_once(order=order, attempt=attempt, read_timeout=read_timeout()),
            store=store,
            claims=claims,
            fingerprint_key=fingerprint_key(),
            refusals=refusals,
        )
    except Exception as error:
        placement.retry_later_or_give_up(
            record.body,
            error,
            message_id=record.message_id,
            sent_at=record.sent_at,
            receive_count=record.receive_count,
            policy=retry_policy,
            retry_later=partial(order_queue.retry_after, record.event_source_arn, record.receipt_handle),
            refusals=refusals,
        )
    finally:
        logger.thread_safe_clear_keys()


def is_failed(record: SqsRecord, lambda_context: LambdaContext) -> bool:
    try:
        place_record(record, lambda_context)
    except Exception:  # retry_later_or_give_up logged why; SQS delivers it again when its visibility timeout ends
        return True
    return False


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    idempotency_config.register_lambda_context(context)  # an attempt that timed out does not block the retry
    # Written out rather than Powertools' batch processor: its parallel variant is asyncio-only, and asyncio
    # would cost every cold start ~25 ms to run what are blocking calls on these threads anyway.
    records = [SqsRecord.of(record) for record in event["Records"]]
    failures = workers.map(partial(is_failed, lambda_context=context), records)
    failed = [record for record, is_failure in zip(records, failures, strict=True) if is_failure]
    return {"batchItemFailures": [{"itemIdentifier": record.message_id} for record in failed]}
