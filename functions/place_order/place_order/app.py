"""PlaceOrderFunction: SQS batch of order messages -> ePROM -> FormOrdersTable (refusals to the DLQ).

Records of a batch are placed in parallel on a bounded thread pool, so a batch costs about one ePROM
round trip; only records to retry later are reported in batchItemFailures.
"""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import cache, partial
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from aws_lambda_powertools.utilities.typing import LambdaContext
from eprom.api_key import ApiKeySource, read_secret
from eprom.eprom_client import eprom_client_from
from eprom.models import OrderMessage
from eprom.order_store import OrderStore
from eprom.outcome_bus import OutcomeBus
from eprom.queues import DeadLetterQueue, QueueVisibility, SqsRecord

from place_order import placement
from place_order.claims import OrderClaims
from place_order.placement import RetryLater
from place_order.placer import OrderPlacer, Refusals, RetryPolicy
from place_order.settings import PlacerSettings

settings = PlacerSettings.from_environment()
logger = Logger()
metrics = Metrics()

api_keys = ApiKeySource.of(settings)
store = OrderStore(settings.form_orders_table, retention_days=settings.result_retention_days)
claims = OrderClaims(
    settings.idempotency_table,
    store.client,
    retention=timedelta(days=settings.result_retention_days),
    idempotency_expiry=timedelta(seconds=settings.idempotency_expiry_seconds),
)
refusals = Refusals(DeadLetterQueue(settings.dead_letter_queue_url), OutcomeBus(settings.outcome_bus_name))
order_queue = QueueVisibility()
idempotency_config = IdempotencyConfig(
    event_key_jmespath="order_reference",
    payload_validation_jmespath="@",  # the same orderReference with other content is refused, not placed
    expires_after_seconds=settings.idempotency_expiry_seconds,
    raise_on_no_idempotency_key=True,
)
workers = ThreadPoolExecutor(max_workers=settings.max_concurrent_orders, thread_name_prefix="order")


@cache
def fingerprint_key() -> bytes:
    """Read on first use (not at import, which must not call AWS), then kept: the key never changes."""
    return read_secret(settings.order_fingerprint_secret_id, max_age_seconds=0).encode()


eprom_placement = placement.EpromPlacement(
    eprom=eprom_client_from(settings, api_keys, max_connections=settings.max_concurrent_orders),
    claims=claims,
    store=store,
    fingerprint_key=fingerprint_key,
    connect_timeout=settings.eprom_connect_timeout_seconds,
    longest_read_timeout=settings.eprom_read_timeout_seconds,
    ambiguous_policy=settings.ambiguous_order_policy,
)


# Powertools names its records after this function (place_order.app.place_once): renaming it forgets them.
@idempotent_function(  # type: ignore[untyped-decorator]  # Powertools types the decorator as Any
    data_keyword_argument="order",
    config=idempotency_config,
    # The store's client: Powertools would otherwise build a second boto3 session (~70 ms of cold start).
    persistence_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=store.client),
    output_serializer=PydanticSerializer(placement.RememberedPlacement),
)
def place_once(order: OrderMessage, attempt: placement.Attempt) -> placement.RememberedPlacement:
    return eprom_placement.place(order, attempt)


placer = OrderPlacer(
    placement=eprom_placement,
    place_once=place_once,
    refusals=refusals,
    order_queue=order_queue,
    retry_policy=RetryPolicy(
        base_delay_seconds=settings.retry_base_delay_seconds,
        max_delay_seconds=settings.retry_max_delay_seconds,
        window_seconds=settings.order_retry_window_hours * 3600,
    ),
    validation_context={
        "allow_synthetic_national_ids": settings.allow_synthetic_national_ids,
        "allow_test_mode_orders": settings.allow_test_mode_orders,
    },
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency_config.register_lambda_context(context)  # an attempt that timed out does not block the retry
    invocation_ends_at = time.time() + context.get_remaining_time_in_millis() / 1000
    # Written out rather than Powertools' batch processor: its parallel variant is asyncio-only, and asyncio
    # would cost every cold start ~25 ms to run what are blocking calls on these threads anyway.
    records = [SqsRecord.of(record) for record in event["Records"]]
    outcomes = workers.map(partial(placer.handle, invocation_ends_at=invocation_ends_at), records)
    retried = [record for record, outcome in zip(records, outcomes, strict=True) if isinstance(outcome, RetryLater)]
    return {"batchItemFailures": [{"itemIdentifier": record.message_id} for record in retried]}
