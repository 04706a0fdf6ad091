"""One order message: validate it, place it with ePROM at most once per orderReference, record the outcome.

Every message ends placed, in the DLQ with a reason and class, or retried later: a failure that is safe to retry
sets the message's next delivery itself (exponential backoff, Retry-After honoured) until the retry window is
spent, and then moves the message to the DLQ as RetriesExhausted. Only the attempt that holds the orderReference's
claim (claims.py: a conditional write, strongly consistent) sends it to ePROM. An attempt that ePROM may have
carried out (Ambiguous) is parked in the DLQ for a person, unless AMBIGUOUS_ORDER_POLICY=retry; its claim stays,
so every other message of the reference is parked too instead of being sent, until a person redrives a parked
message (it keeps its rejectionClass and ambiguousAttemptId, which say "checked in ePROM Admin: place it").
"""

import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Literal

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from eprom.aws_clients import AWS_CALL_MAX_SECONDS
from eprom.eprom_client import Ambiguous, EpromClient, Placed, Refused, Transient
from eprom.models import EpromOrderResponse, OrderMessage, OrderReference, describe_validation_error
from eprom.order_store import OrderStore
from eprom.outcome_bus import OutcomeBus
from eprom.outcomes import refused_outcome
from eprom.queues import DeadLetterQueue, backoff_seconds
from pydantic import BaseModel, TypeAdapter, ValidationError

from place_order.claims import AMBIGUOUS, PLACED, Claim, OrderClaims

logger = Logger(child=True)
metrics = Metrics()
# Records run on worker threads, and Metrics.add_metric is not thread-safe: two threads adding a metric name for
# the first time each create its entry, and one count is lost.
_metrics_lock = threading.Lock()

type RejectionClass = Literal[
    "InvalidMessage", "RefusedByEprom", "ReusedOrderReference", "RetriesExhausted", "Ambiguous"
]
REUSED_ORDER_REFERENCE = "orderReference was already used for an order with other content"
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
    """The order was sent and its answer lost: ePROM may have created it (AMBIGUOUS_ORDER_POLICY=retry)."""


class Parked(NotPlaced):
    """ePROM may have created the order in `attempt_id`: the message goes to the DLQ for a person to check, and the
    claim keeps every other message of the reference from being sent."""

    def __init__(self, reason: str, attempt_id: str) -> None:
        super().__init__(reason, "Ambiguous")
        self.attempt_id = attempt_id


@dataclass(frozen=True)
class Attempt:
    """One message's try at placing its order."""

    id: str
    sending_until: float  # epoch seconds: the invocation ends by then
    replacing: str | None = None  # a redriven parked message: the Ambiguous attempt a person found no order of


class PlacementOutcome(BaseModel):
    """What Powertools remembers per orderReference, so a re-sent order gets the same answer without a lookup."""

    response: EpromOrderResponse | None = None  # ePROM created the order
    placed_before: str | None = None  # the formOrderId an earlier message of this orderReference created


@dataclass(frozen=True)
class RetryPolicy:
    base_delay_seconds: int
    max_delay_seconds: int
    window_seconds: float
    ambiguous: str  # "park" or "retry"


FINGERPRINT_VERSION = "hmac-sha256:"


def order_fingerprint(order: OrderMessage, key: bytes) -> str:
    """Tells "the same order again" from "the reference reused with other content", after idempotency expired.
    Keyed (OrderFingerprintSecret): a plain hash of an order could be reversed to its national id by trying every
    candidate of a birth date."""
    digest = hmac.new(key, order.model_dump_json(by_alias=True).encode(), hashlib.sha256).hexdigest()
    return FINGERPRINT_VERSION + digest


def _other_content(stored: str | None, fingerprint: str) -> bool:
    """Only a fingerprint of this version can tell; none, or an older unkeyed one, is "unknown": the order is
    taken as the same one (not placed again, not refused)."""
    return stored is not None and stored.startswith(FINGERPRINT_VERSION) and stored != fingerprint


def eprom_read_timeout(remaining_seconds: float, *, connect_timeout: float, longest: float) -> float:
    """Wait for ePROM as long as the invocation allows: a placed order must still be written to FormOrdersTable
    and to the idempotency record (two AWS calls of at most AWS_CALL_MAX_SECONDS each) before the function's
    timeout, or the order would exist at ePROM with no record of it here. (The claim is settled after them; a
    claim left Sending is settled by the next delivery, from the idempotency record.)"""
    return min(longest, remaining_seconds - connect_timeout - 2 * AWS_CALL_MAX_SECONDS)


def placed_before(order: OrderMessage, store: OrderStore, fingerprint_key: bytes) -> PlacementOutcome | None:
    """The item an earlier message of this orderReference created before claims were kept, or whose claim expired
    (a final status after the order's expiryDate keeps an item longer). Only ever asked while holding the claim:
    every item written since then has a claim, so the index's lag cannot hide one (reads of a GSI are only ever
    eventually consistent: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html).
    NotPlaced when that order had other content."""
    earlier = store.find_by_order_reference(order.order_reference)
    if not earlier:
        return None
    fingerprint = order_fingerprint(order, fingerprint_key)
    if any(_other_content(item.order_fingerprint, fingerprint) for item in earlier):
        raise NotPlaced(REUSED_ORDER_REFERENCE, "ReusedOrderReference")
    return PlacementOutcome(placed_before=earlier[0].form_order_id)


def place_with_eprom(
    order: OrderMessage,
    *,
    attempt: Attempt,
    eprom: EpromClient,
    claims: OrderClaims,
    store: OrderStore,
    fingerprint_key: bytes,
    read_timeout: float,
    ambiguous_policy: str,
) -> PlacementOutcome:
    """The idempotent unit. Only what must be remembered is returned (placed, placed before); every other end is
    raised, so Powertools keeps no record of it and a later delivery asks the claim afresh."""
    reference, fingerprint = order.order_reference, order_fingerprint(order, fingerprint_key)
    holder = claims.take(reference, attempt_id=attempt.id, fingerprint=fingerprint,
                         sending_until=attempt.sending_until, order_expiry=order.expiry_date,
                         replacing=attempt.replacing)  # fmt: skip
    if holder is not None:
        return _claimed_before(order, holder, fingerprint, claims)
    try:
        earlier = placed_before(order, store, fingerprint_key)
        if earlier is None and read_timeout < MIN_EPROM_READ_TIMEOUT_SECONDS:
            raise TransientFailure("too little time left in this invocation to wait for ePROM (the order was not sent)")
    except Exception:
        claims.release(reference, attempt.id)
        raise
    if earlier:
        claims.release(reference, attempt.id)  # the item answers for the reference
        return earlier
    match eprom.place(order.to_eprom_request(), read_timeout=read_timeout):
        case Placed(response):
            return PlacementOutcome(response=response)  # the claim is settled once the item is written
        case Refused(reason):
            claims.release(reference, attempt.id)
            raise NotPlaced(reason, "RefusedByEprom")
        case Ambiguous(reason) if ambiguous_policy == "retry":
            claims.release(reference, attempt.id)  # a possible second order is the policy's choice
            raise AmbiguousAttempt(reason)
        case Ambiguous(reason):
            reason = _ambiguous_reason(reason, order, datetime.now(UTC))
            claims.settle_ambiguous(reference, attempt.id, reason)
            raise Parked(reason, attempt.id)
        case Transient(reason, retry_after_seconds):
            claims.release(reference, attempt.id)
            raise TransientFailure(reason, retry_after_seconds)


def _claimed_before(order: OrderMessage, holder: Claim, fingerprint: str, claims: OrderClaims) -> PlacementOutcome:
    """Another attempt holds the orderReference: its outcome is this message's."""
    if holder.fingerprint != fingerprint:
        raise NotPlaced(REUSED_ORDER_REFERENCE, "ReusedOrderReference")
    if holder.state == PLACED and holder.form_order_id:
        return PlacementOutcome(placed_before=holder.form_order_id)
    if holder.state == AMBIGUOUS:
        raise Parked(holder.ambiguous_reason or "ePROM may have created this order", holder.attempt_id)
    if not holder.holder_gone():
        raise TransientFailure("an order with this orderReference is being placed right now")
    # Its invocation ended without settling the claim (crashed or timed out), perhaps after ePROM took the order.
    detail = "the attempt that sent it ended without an answer (the function stopped)"
    reason = _ambiguous_reason(detail, order, datetime.fromtimestamp(holder.taken_at, UTC))
    if not claims.settle_ambiguous(order.order_reference, holder.attempt_id, reason):
        raise TransientFailure("the orderReference's claim changed while it was read; trying again")
    raise Parked(reason, holder.attempt_id)


@dataclass(frozen=True)
class Refusals:
    """Where a message that will not be placed goes: FormOrderRefused on OutcomeBus, then the DLQ with the body.
    The event goes first: if either fails the message is retried, and a repeated event has the same eventId."""

    dead_letters: DeadLetterQueue
    outcomes: OutcomeBus

    def refuse(
        self,
        body: str,
        message_id: str,
        reason: str,
        rejection_class: RejectionClass,
        *,
        sent_at: datetime,
        attempt_id: str | None = None,
    ) -> None:
        """`attempt_id`: the Ambiguous attempt a parked message was parked for (what a redrive of it takes over)."""
        self.outcomes.put(
            [
                refused_outcome(
                    message_id=message_id,
                    sent_at=sent_at,
                    order_reference=_order_reference_of(body),
                    rejection_class=rejection_class,
                    rejection_reason=reason,
                )
            ]
        )
        self.dead_letters.send(body, reason, rejection_class, ambiguous_attempt_id=attempt_id)
        logger.warning("order refused", rejection_reason=reason, rejection_class=rejection_class)
        with single_metric(name="OrdersRefused", unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as m:
            m.add_dimension(name="ReasonClass", value=rejection_class)


def handle_order_message(
    body: str,
    *,
    message_id: str,
    sent_at: datetime,
    validation_context: dict[str, bool],
    place_once: Callable[[OrderMessage], PlacementOutcome],
    store: OrderStore,
    claims: OrderClaims,
    fingerprint_key: bytes,
    refusals: Refusals,
) -> None:
    """`place_once` is the idempotent placement (place_with_eprom behind Powertools' idempotency)."""

    def refuse(reason: str, rejection_class: RejectionClass, attempt_id: str | None = None) -> None:
        refusals.refuse(body, message_id, reason, rejection_class, sent_at=sent_at, attempt_id=attempt_id)

    try:
        order = OrderMessage.model_validate_json(body, context=validation_context)
    except ValidationError as error:
        refuse(f"invalid order message: {describe_validation_error(error)}", "InvalidMessage")
        return
    logger.thread_safe_append_keys(order_reference=order.order_reference, form_id=str(order.form_id))

    try:
        outcome = place_once(order)
    except IdempotencyValidationError:
        refuse(REUSED_ORDER_REFERENCE, "ReusedOrderReference")
        return
    except IdempotencyAlreadyInProgressError as error:
        raise TransientFailure("an order with this orderReference is being placed right now") from error
    except Parked as parked:
        count("OrdersAmbiguous")
        refuse(str(parked), "Ambiguous", parked.attempt_id)
        return
    except NotPlaced as refusal:
        refuse(str(refusal), refusal.rejection_class)
        return
    except AmbiguousAttempt as attempt:  # AMBIGUOUS_ORDER_POLICY=retry
        count("OrdersAmbiguous")
        raise TransientFailure(f"{attempt} (retried: AMBIGUOUS_ORDER_POLICY=retry)") from attempt

    if outcome.placed_before:
        logger.info("order was placed before; nothing to do", form_order_id=outcome.placed_before)
        return
    assert outcome.response is not None  # a PlacementOutcome holds one or the other
    form_order_id = str(outcome.response.id)
    fingerprint = order_fingerprint(order, fingerprint_key)
    store.record_placed(
        form_order_id,
        order_reference=order.order_reference,
        order_fingerprint=fingerprint,
        form_id=str(order.form_id),
        response=outcome.response,
        order_expiry=order.expiry_date,
    )
    # After the item: a claim that says Placed always has its item (a crash between the two leaves the claim
    # Sending, and the next delivery finds the response in Powertools' record and writes both again).
    claims.settle_placed(order.order_reference, fingerprint=fingerprint, form_order_id=form_order_id,
                         order_expiry=order.expiry_date)  # fmt: skip
    logger.info("order placed", form_order_id=form_order_id)
    count("OrdersPlaced")


def retry_later_or_give_up(
    body: str,
    error: Exception,
    *,
    message_id: str,
    sent_at: datetime,
    receive_count: int,
    policy: RetryPolicy,
    retry_later: Callable[[int], None],
    refusals: Refusals,
) -> None:
    """After a failure that is safe to retry. Returns when the message was moved to the DLQ (the window is
    spent); raises `error` again when it stays on the queue for a later attempt."""
    reason = str(error) if isinstance(error, TransientFailure) else f"unexpected {type(error).__name__}"
    age_seconds = (datetime.now(UTC) - sent_at).total_seconds()
    if age_seconds >= policy.window_seconds:
        hours = policy.window_seconds / 3600
        reason = f"retries exhausted: still failing after {hours:g} h; last error: {reason}"
        refusals.refuse(body, message_id, reason, "RetriesExhausted", sent_at=sent_at)
        return
    retry_after = error.retry_after_seconds if isinstance(error, TransientFailure) else None
    delay = backoff_seconds(
        receive_count, base=policy.base_delay_seconds, cap=policy.max_delay_seconds, retry_after=retry_after
    )
    try:
        retry_later(delay)
    except Exception as visibility_error:  # the queue's own visibility timeout then applies: retried all the same
        logger.warning("could not set the retry delay", error_type=type(visibility_error).__name__)
    logger.warning("order will be retried", reason=reason, attempt=receive_count, retry_in_seconds=delay)
    count("OrdersRetried")
    with _metrics_lock:
        metrics.add_metric(name="RetriedOrderAgeSeconds", unit=MetricUnit.Seconds, value=round(age_seconds))
    raise error


def count(metric_name: str) -> None:
    with _metrics_lock:
        metrics.add_metric(name=metric_name, unit=MetricUnit.Count, value=1)


def _order_reference_of(body: str) -> str | None:
    """The orderReference of a message, for its FormOrderRefused event, when it is a valid one (an invalid
    message's could hold anything, a national id too)."""
    try:
        return _order_reference_adapter().validate_python(json.loads(body).get("orderReference"))
    except (ValueError, AttributeError):  # not JSON, not an object, or not a valid orderReference
        return None


@cache
def _order_reference_adapter() -> TypeAdapter[str]:
    return TypeAdapter(OrderReference)


def _ambiguous_reason(detail: str, order: OrderMessage, attempted_at: datetime) -> str:
    return (
        f"ePROM may have created this order: {detail}. Attempted at {attempted_at:%Y-%m-%dT%H:%M:%SZ} for form "
        f"{order.form_id}. Look in ePROM Admin for an order of that form created around that time (a form order "
        "whose callbacks we stored without an orderReference is listed by the orphans query): if there is none, "
        "redrive this message; if there is one, delete it here (a redrive would order a second time)."
    )
