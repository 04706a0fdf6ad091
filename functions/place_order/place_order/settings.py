"""PlaceOrderFunction's configuration (eprom.settings: read once from the environment at start)."""

from dataclasses import dataclass
from typing import Literal

from eprom.queues import MAX_RETRY_DELAY_SECONDS
from eprom.settings import EpromApiSettings, setting


@dataclass(frozen=True, kw_only=True)
class PlacerSettings(EpromApiSettings):
    form_orders_table: str = setting(non_empty=True)
    idempotency_table: str = setting(non_empty=True)
    order_fingerprint_secret_id: str = setting(non_empty=True)  # the key of the orders' fingerprints (placing.py)
    dead_letter_queue_url: str = setting(non_empty=True)
    outcome_bus_name: str = setting(non_empty=True)
    allow_synthetic_national_ids: bool = False
    allow_test_mode_orders: bool = False
    # Records of one batch placed at once; the event source's MaximumConcurrency bounds the environments.
    max_concurrent_orders: int = setting(10, ge=1, le=100)
    # The shortest life of an orderReference's claim (it lives as long as the order's item, and at least this).
    idempotency_expiry_seconds: int = setting(7 * 24 * 3600, ge=3600)
    # ePROM's pace: order requests per second, shared by every environment (eprom.pacer)
    eprom_requests_per_second: float = setting(2, gt=0, le=100)
    # Set by Lambda; an earlier version's idempotency records were named by it (claims.legacy_answer)
    aws_lambda_function_name: str = "test-func"
    # An order's item is deleted this long after its expiryDate (or its final status, see the callback).
    result_retention_days: int = setting(180, ge=1)
    # Transient failures: retried with exponential backoff (jitter inside the cap) from base to cap, for the window.
    retry_base_delay_seconds: int = setting(30, ge=1)
    retry_max_delay_seconds: int = setting(900, ge=1, le=MAX_RETRY_DELAY_SECONDS)  # what SQS accepts
    order_retry_window_hours: float = setting(24, gt=0)
    # "park": an order ePROM may have created goes to the DLQ for a person to check; "retry": try again (a
    # possible duplicate order rather than a delay).
    ambiguous_order_policy: Literal["park", "retry"] = "park"
