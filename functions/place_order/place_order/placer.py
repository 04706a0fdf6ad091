"""One record of OrderQueue, one path: validate the order, place it (placement.py), and carry out its Outcome.

Every message ends placed, in the DLQ with a reason and class (refused or parked), or retried later: a failure that
is safe to retry sets the message's next delivery itself (exponential backoff, Retry-After honoured) until the
retry window is spent, and then moves the message to the DLQ as RetriesExhausted.
"""

import json
import threading
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from eprom.models import OrderMessage, OrderReference, describe_validation_error
from eprom.outcome_bus import OutcomeBus
from eprom.outcomes import refused_outcome
from eprom.queues import AMBIGUOUS_ATTEMPT_ID, DeadLetterQueue, QueueVisibility, SqsRecord, backoff_seconds
from pydantic import TypeAdapter, ValidationError

from place_order.placement import (
    BEING_PLACED,
    REUSED_ORDER_REFERENCE,
    Attempt,
    EpromPlacement,
    NotRemembered,
    OrderParked,
    OrderPlaced,
    OrderRefused,
    Outcome,
    RejectionClass,
    RememberedPlacement,
    RetryLater,
)

logger = Logger(child=True)
metrics = Metrics()
# Records run on worker threads, and Metrics.add_metric is not thread-safe: two threads adding a metric name for
# the first time each create its entry, and one count is lost.
_metrics_lock = threading.Lock()


class PlaceOnce(Protocol):
    """EpromPlacement.place behind Powertools' idempotency (app.py)."""

    def __call__(self, *, order: OrderMessage, attempt: Attempt) -> RememberedPlacement: ...


@dataclass(frozen=True)
class RetryPolicy:
    base_delay_seconds: int
    max_delay_seconds: int
    window_seconds: float


@dataclass(frozen=True)
class Refusals:
    """Where a message that will not be placed goes: FormOrderRefused on OutcomeBus, then the DLQ with the body.
    The event goes first: if either fails the message is retried, and a repeated event has the same eventId."""

    dead_letters: DeadLetterQueue
    outcomes: OutcomeBus

    def refuse(
        self, record: SqsRecord, reason: str, rejection_class: RejectionClass, *, attempt_id: str | None = None
    ) -> None:
        """`attempt_id`: the Ambiguous attempt a parked message was parked for (what a redrive of it takes over)."""
        self.outcomes.put(
            [
                refused_outcome(
                    message_id=record.message_id,
                    sent_at=record.sent_at,
                    order_reference=_order_reference_of(record.body),
                    rejection_class=rejection_class,
                    rejection_reason=reason,
                )
            ]
        )
        self.dead_letters.send(record.body, reason, rejection_class, ambiguous_attempt_id=attempt_id,
                               attributes=record.message_attributes)  # fmt: skip
        logger.warning("order refused", rejection_reason=reason, rejection_class=rejection_class)
        with single_metric(name="OrdersRefused", unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as m:
            m.add_dimension(name="ReasonClass", value=rejection_class)


@dataclass(frozen=True)
class OrderPlacer:
    placement: EpromPlacement
    place_once: PlaceOnce
    refusals: Refusals
    order_queue: QueueVisibility
    retry_policy: RetryPolicy
    validation_context: dict[str, bool]

    def handle(self, record: SqsRecord, invocation_ends_at: float) -> Outcome:
        """The record's outcome, carried out. A failure on the way (an AWS call) is retried later as well."""
        logger.thread_safe_append_keys(message_id=record.message_id)
        try:
            try:
                outcome = self._outcome(record, invocation_ends_at)
                self._carry_out(record, outcome)
            except Exception as error:  # the type only: a message could quote what it failed on
                outcome = RetryLater(f"unexpected {type(error).__name__}")
            if isinstance(outcome, RetryLater):
                return self._retry_later_or_give_up(record, outcome)
            return outcome
        finally:
            logger.thread_safe_clear_keys()

    def _outcome(self, record: SqsRecord, invocation_ends_at: float) -> Outcome:
        """What becomes of the message (nothing is sent to the DLQ yet)."""
        try:
            order = OrderMessage.model_validate_json(record.body, context=self.validation_context)
        except ValidationError as error:
            return OrderRefused(f"invalid order message: {describe_validation_error(error)}", "InvalidMessage")
        except Exception as error:  # anything else reading our input is the message's fault too: never retried
            return OrderRefused(f"invalid order message: unreadable ({type(error).__name__})", "InvalidMessage")
        logger.thread_safe_append_keys(order_reference=order.order_reference, form_id=str(order.form_id))
        try:
            placed = self.place_once(order=order, attempt=_attempt(record, invocation_ends_at))
        except NotRemembered as end:
            return end.outcome
        except IdempotencyValidationError:
            return OrderRefused(REUSED_ORDER_REFERENCE, "ReusedOrderReference")
        except IdempotencyAlreadyInProgressError:
            return RetryLater(BEING_PLACED)
        if placed.placed_before:
            return OrderPlaced(placed.placed_before, placed_before=True)
        assert placed.response is not None  # a RememberedPlacement holds one or the other
        return OrderPlaced(self.placement.record(order, placed.response))

    def _carry_out(self, record: SqsRecord, outcome: Outcome) -> None:
        """Logged and counted; refused and parked messages to the DLQ (retries: _retry_later_or_give_up)."""
        match outcome:
            case OrderPlaced(form_order_id, placed_before=True):
                logger.info("order was placed before; nothing to do", form_order_id=form_order_id)
            case OrderPlaced(form_order_id):
                logger.info("order placed", form_order_id=form_order_id)
                _count("OrdersPlaced")
            case OrderRefused(reason, rejection_class):
                self.refusals.refuse(record, reason, rejection_class)
            case OrderParked(reason, attempt_id):
                _count("OrdersAmbiguous")
                self.refusals.refuse(record, reason, "Ambiguous", attempt_id=attempt_id)
            case RetryLater(ambiguous=True):
                _count("OrdersAmbiguous")

    def _retry_later_or_give_up(self, record: SqsRecord, retry: RetryLater) -> Outcome:
        """The message's next delivery set (backoff), or, once its retry window is spent, the DLQ."""
        age_seconds = record.age_seconds()
        if age_seconds >= self.retry_policy.window_seconds:
            hours = self.retry_policy.window_seconds / 3600
            reason = f"retries exhausted: still failing after {hours:g} h; last error: {retry.reason}"
            try:
                self.refusals.refuse(record, reason, "RetriesExhausted")
            except Exception:  # SQS delivers it again when its visibility timeout ends
                return retry
            return OrderRefused(reason, "RetriesExhausted")
        delay = backoff_seconds(
            record.receive_count,
            base=self.retry_policy.base_delay_seconds,
            cap=self.retry_policy.max_delay_seconds,
            retry_after=retry.retry_after_seconds,
        )
        try:
            self.order_queue.retry_after(record.event_source_arn, record.receipt_handle, delay)
        except Exception as visibility_error:  # the queue's own visibility timeout then applies: retried all the same
            logger.warning("could not set the retry delay", error_type=type(visibility_error).__name__)
        logger.warning(
            "order will be retried", reason=retry.reason, attempt=record.receive_count, retry_in_seconds=delay
        )
        _count("OrdersRetried")
        with _metrics_lock:
            metrics.add_metric(name="RetriedOrderAgeSeconds", unit=MetricUnit.Seconds, value=round(age_seconds))
        return retry


def _attempt(record: SqsRecord, invocation_ends_at: float) -> Attempt:
    # A parked message a person redrove keeps its attributes: the attempt it was parked for is theirs to replace.
    redriven = record.string_attributes.get("rejectionClass") == "Ambiguous"
    return Attempt(
        id=str(uuid.uuid4()),
        sending_until=invocation_ends_at,
        replacing=record.string_attributes.get(AMBIGUOUS_ATTEMPT_ID) if redriven else None,
    )


def _count(metric_name: str) -> None:
    with _metrics_lock:
        metrics.add_metric(name=metric_name, unit=MetricUnit.Count, value=1)


def _order_reference_of(body: str) -> str | None:
    """The orderReference of a message, for its FormOrderRefused event, when it is a valid one (an invalid
    message's could hold anything, a national id too)."""
    try:
        return _order_reference_adapter().validate_python(json.loads(body).get("orderReference"))
    except Exception:  # not JSON (or nested too deep to read), not an object, or not a valid orderReference
        return None


@cache
def _order_reference_adapter() -> TypeAdapter[str]:
    return TypeAdapter(OrderReference)
