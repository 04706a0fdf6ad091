"""One order message: validate it, place it with ePROM at most once per orderReference, record the outcome.

Every message ends placed, in the DLQ with a reason and class, or retried later: a failure that is safe to retry
sets the message's next delivery itself (exponential backoff, Retry-After honoured) until the retry window is
spent, and then moves the message to the DLQ as RetriesExhausted. An attempt that ePROM may have carried out
(Ambiguous) is parked in the DLQ for a person, unless AMBIGUOUS_ORDER_POLICY=retry.
"""

import hashlib
import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from eprom.aws_clients import AWS_CALL_MAX_SECONDS
from eprom.eprom_client import Ambiguous, EpromClient, Placed, Refused, Transient
from eprom.models import EpromOrderResponse, OrderMessage, describe_validation_error
from eprom.order_store import OrderStore
from pydantic import BaseModel, ValidationError

from place_order.queues import DeadLetterQueue, RejectionClass

logger = Logger(child=True)
metrics = Metrics()
# Records run on worker threads, and Metrics.add_metric is not thread-safe: two threads adding a metric name for
# the first time each create its entry, and one count is lost.
_metrics_lock = threading.Lock()

REUSED_ORDER_REFERENCE = "orderReference was already used for an order with other content"
SQS_MAX_VISIBILITY_SECONDS = 43200
# Below this there is no point in asking ePROM: its answer would likely be lost to our own timeout.
MIN_EPROM_READ_TIMEOUT_SECONDS = 1.0


class TransientFailure(Exception):
    """Nothing was ordered; try the message again later. The message is a reason without personal data."""

    def __init__(self, reason: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_seconds = retry_after_seconds


class NotPlaced(Exception):
    """The order goes to the DLQ with this reason and class (it is not remembered: a redrive tries it again)."""

    def __init__(self, reason: str, rejection_class: RejectionClass) -> None:
        super().__init__(reason)
        self.rejection_class = rejection_class


class AmbiguousAttempt(Exception):
    """The order was sent and its answer lost: ePROM may have created it."""


class PlacementOutcome(BaseModel):
    """What is remembered per orderReference, so a re-sent order gets the same answer without a second order."""

    response: EpromOrderResponse | None = None  # ePROM created the order
    placed_before: str | None = None  # the formOrderId an earlier message of this orderReference created


@dataclass(frozen=True)
class RetryPolicy:
    base_delay_seconds: int
    max_delay_seconds: int
    window_seconds: float
    ambiguous: str  # "park" or "retry"


def order_fingerprint(order: OrderMessage) -> str:
    """Tells "the same order again" from "the reference reused with other content", after idempotency expired."""
    return hashlib.sha256(order.model_dump_json(by_alias=True).encode()).hexdigest()


def eprom_read_timeout(remaining_seconds: float, *, connect_timeout: float, longest: float) -> float:
    """Wait for ePROM as long as the invocation allows: a placed order must still be written to FormOrdersTable
    and to the idempotency record (two AWS calls of at most AWS_CALL_MAX_SECONDS each) before the function's
    timeout, or the order would exist at ePROM with no record of it here."""
    return min(longest, remaining_seconds - connect_timeout - 2 * AWS_CALL_MAX_SECONDS)


def place_with_eprom(
    order: OrderMessage, *, eprom: EpromClient, store: OrderStore, read_timeout: float
) -> PlacementOutcome:
    """The idempotent unit. Only what must be remembered is returned; every other end is raised, so Powertools
    keeps no record of it and a later delivery is tried afresh."""
    fingerprint = order_fingerprint(order)
    earlier = store.find_by_order_reference(order.order_reference)
    if earlier:  # placed by a message whose idempotency record has expired: never order again
        if any(item.get("orderFingerprint", fingerprint) != fingerprint for item in earlier):
            raise NotPlaced(REUSED_ORDER_REFERENCE, "ReusedOrderReference")
        return PlacementOutcome(placed_before=earlier[0]["formOrderId"])
    if read_timeout < MIN_EPROM_READ_TIMEOUT_SECONDS:
        raise TransientFailure("too little time left in this invocation to wait for ePROM (the order was not sent)")
    match eprom.place(order.to_eprom_request(), read_timeout=read_timeout):
        case Placed(response):
            return PlacementOutcome(response=response)
        case Refused(reason):
            raise NotPlaced(reason, "RefusedByEprom")
        case Ambiguous(reason):
            raise AmbiguousAttempt(reason)
        case Transient(reason, retry_after_seconds):
            raise TransientFailure(reason, retry_after_seconds)


def handle_order_message(
    body: str,
    *,
    validation_context: dict[str, bool],
    place_once: Callable[[OrderMessage], PlacementOutcome],
    store: OrderStore,
    dead_letters: DeadLetterQueue,
    ambiguous_policy: str,
) -> None:
    try:
        order = OrderMessage.model_validate_json(body, context=validation_context)
    except ValidationError as error:
        refuse(body, f"invalid order message: {describe_validation_error(error)}", "InvalidMessage", dead_letters)
        return
    logger.thread_safe_append_keys(order_reference=order.order_reference, form_id=str(order.form_id))

    attempted_at = datetime.now(UTC)
    try:
        outcome = place_once(order)
    except IdempotencyValidationError:
        refuse(body, REUSED_ORDER_REFERENCE, "ReusedOrderReference", dead_letters)
        return
    except IdempotencyAlreadyInProgressError as error:
        raise TransientFailure("an order with this orderReference is being placed right now") from error
    except NotPlaced as refusal:
        refuse(body, str(refusal), refusal.rejection_class, dead_letters)
        return
    except AmbiguousAttempt as attempt:
        count("OrdersAmbiguous")
        if ambiguous_policy == "retry":
            raise TransientFailure(f"{attempt} (retried: AMBIGUOUS_ORDER_POLICY=retry)") from attempt
        refuse(body, _ambiguous_reason(str(attempt), order, attempted_at), "Ambiguous", dead_letters)
        return

    if outcome.placed_before:
        logger.info("order was placed before; nothing to do", form_order_id=outcome.placed_before)
        return
    assert outcome.response is not None  # a PlacementOutcome holds one or the other
    form_order_id = str(outcome.response.id)
    store.record_placed(
        form_order_id,
        order_reference=order.order_reference,
        order_fingerprint=order_fingerprint(order),
        form_id=str(order.form_id),
        response=outcome.response,
        order_expiry=order.expiry_date,
    )
    logger.info("order placed", form_order_id=form_order_id)
    count("OrdersPlaced")


def retry_later_or_give_up(
    body: str,
    error: Exception,
    *,
    sent_at: datetime,
    receive_count: int,
    policy: RetryPolicy,
    retry_later: Callable[[int], None],
    dead_letters: DeadLetterQueue,
) -> None:
    """After a failure that is safe to retry. Returns when the message was moved to the DLQ (the window is
    spent); raises `error` again when it stays on the queue for a later attempt."""
    reason = str(error) if isinstance(error, TransientFailure) else f"unexpected {type(error).__name__}"
    age_seconds = (datetime.now(UTC) - sent_at).total_seconds()
    if age_seconds >= policy.window_seconds:
        hours = policy.window_seconds / 3600
        refuse(body, f"retries exhausted: still failing after {hours:g} h; last error: {reason}", "RetriesExhausted",
               dead_letters)  # fmt: skip
        return
    retry_after = error.retry_after_seconds if isinstance(error, TransientFailure) else None
    delay = backoff_seconds(receive_count, policy, retry_after)
    try:
        retry_later(delay)
    except Exception as visibility_error:  # the queue's own visibility timeout then applies: retried all the same
        logger.warning("could not set the retry delay", error_type=type(visibility_error).__name__)
    logger.warning("order will be retried", reason=reason, attempt=receive_count, retry_in_seconds=delay)
    count("OrdersRetried")
    with _metrics_lock:
        metrics.add_metric(name="RetriedOrderAgeSeconds", unit=MetricUnit.Seconds, value=round(age_seconds))
    raise error


def backoff_seconds(attempt: int, policy: RetryPolicy, retry_after: float | None = None) -> int:
    """Exponential from the base to the cap, jitter only ever added (so a backlog's retries spread out), and
    never sooner than the Retry-After ePROM asked for."""
    delay = min(policy.max_delay_seconds, policy.base_delay_seconds * 2 ** min(max(attempt, 1) - 1, 20))
    delay += random.uniform(0, delay / 4)  # noqa: S311 - spreading retries, not cryptography
    if retry_after:
        delay = max(delay, retry_after)
    return min(math.ceil(delay), SQS_MAX_VISIBILITY_SECONDS)


def refuse(body: str, reason: str, rejection_class: RejectionClass, dead_letters: DeadLetterQueue) -> None:
    # If this send fails the exception propagates and the message is retried: a refusal is never dropped.
    dead_letters.send(body, reason, rejection_class)
    logger.warning("order refused", rejection_reason=reason, rejection_class=rejection_class)
    with single_metric(name="OrdersRefused", unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        metric.add_dimension(name="ReasonClass", value=rejection_class)


def count(metric_name: str) -> None:
    with _metrics_lock:
        metrics.add_metric(name=metric_name, unit=MetricUnit.Count, value=1)


def _ambiguous_reason(detail: str, order: OrderMessage, attempted_at: datetime) -> str:
    return (
        f"ePROM may have created this order: {detail}. Attempted at {attempted_at:%Y-%m-%dT%H:%M:%SZ} for form "
        f"{order.form_id}. Look in ePROM Admin for an order of that form created around that time (a form order "
        "whose callbacks we stored without an orderReference is listed by the orphans query): if there is none, "
        "redrive this message; if there is one, delete it here (a redrive would order a second time)."
    )
