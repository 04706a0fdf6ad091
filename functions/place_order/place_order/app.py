"""PlaceOrderFunction: SQS batch of order messages -> ePROM -> FormOrdersTable (refusals to the DLQ).

Records of a batch are placed in parallel on a bounded thread pool, each waiting for its slot of ePROM's pace;
only records to retry later are reported in batchItemFailures.
"""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext
from eprom.api_key import ApiKeySource, read_secret
from eprom.eprom_client import eprom_client_from
from eprom.order_store import OrderStore
from eprom.outcome_bus import OutcomeBus
from eprom.pacer import Pacer
from eprom.queues import DeadLetterQueue, QueueVisibility
from eprom.retrying_consumer import RetryingConsumer, RetryPolicy

from place_order.claims import OrderClaims
from place_order.placing import OrderPlacer
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
    shortest_life=timedelta(seconds=settings.idempotency_expiry_seconds),
)
pacer = Pacer(settings.idempotency_table, store.client, requests_per_second=settings.eprom_requests_per_second)


@cache
def fingerprint_key() -> bytes:
    """Read on first use (not at import, which must not call AWS), then kept: the key never changes."""
    return read_secret(settings.order_fingerprint_secret_id, max_age_seconds=0).encode()


placer = OrderPlacer(
    eprom=eprom_client_from(settings, api_keys, pacer=pacer, max_connections=settings.max_concurrent_orders),
    claims=claims,
    store=store,
    outcomes=OutcomeBus(settings.outcome_bus_name),
    fingerprint_key=fingerprint_key,
    ambiguous_policy=settings.ambiguous_order_policy,
    allow_synthetic_national_ids=settings.allow_synthetic_national_ids,
    allow_test_mode_orders=settings.allow_test_mode_orders,
    function_name=settings.aws_lambda_function_name,
)
# Written out rather than Powertools' batch processor: its parallel variant is asyncio-only, and asyncio would cost
# every cold start ~25 ms to run what are blocking calls on these threads anyway.
consumer = RetryingConsumer(
    name="Orders",
    handle=placer.handle,
    announce_refusal=placer.announce_refusal,
    dead_letters=DeadLetterQueue(settings.dead_letter_queue_url),
    queue=QueueVisibility(),
    policy=RetryPolicy(
        base_delay_seconds=settings.retry_base_delay_seconds,
        max_delay_seconds=settings.retry_max_delay_seconds,
        window_seconds=settings.order_retry_window_hours * 3600,
    ),
    workers=ThreadPoolExecutor(max_workers=settings.max_concurrent_orders, thread_name_prefix="order"),
    # a batch's orders that ePROM's pace held back come back spread over the slots they would have taken
    flow_control_spread_seconds=settings.max_concurrent_orders / settings.eprom_requests_per_second,
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consumer.consume(event, context.get_remaining_time_in_millis() / 1000)
