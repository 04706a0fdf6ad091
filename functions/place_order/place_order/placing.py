"""One record of OrderQueue: validate the order, place it with ePROM at most once per orderReference, record it,
and say what becomes of the message (a Verdict, carried out by eprom.retrying_consumer).

Only the attempt that holds the orderReference's claim (eprom.claims: a conditional write, strongly consistent) sends
it to ePROM, and ePROM's answer goes into the claim before the order's item: the claim is the one mechanism
exactly-once rests on. An attempt that ePROM may have carried out (Ambiguous) is parked in the DLQ for a person,
unless AMBIGUOUS_ORDER_POLICY=retry; its claim stays, so every other message of the reference is parked too instead
of being sent, until a person redrives a parked message (it keeps its rejectionClass and ambiguousAttemptId, which
say "checked in ePROM Admin: place it").
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from aws_lambda_powertools import Logger
from eprom.aws_clients import AWS_CALL_MAX_SECONDS
from eprom.claims import AMBIGUOUS, FINGERPRINT_VERSION, Claim, fingerprint
from eprom.eprom_client import Ambiguous, Deferred, EpromClient, Placed, Refused, Transient
from eprom.order_store import OrderStore
from eprom.orders import Order, OrderAnswer, order_reference_of, read_order
from eprom.outcome_bus import OutcomeBus
from eprom.queues import SqsRecord
from eprom.reading import Unreadable
from eprom.refusal_events import refused_outcome
from eprom.retrying_consumer import Attempt, Done, Refuse, RetryLater, Verdict, parked

from place_order.claims import OrderClaims, placed_answer, placed_form_order_id

logger = Logger(child=True)
REUSED_ORDER_REFERENCE = "orderReference was already used for an order with other content"
BEING_PLACED = "an order with this orderReference is being placed right now"


def order_fingerprint(order: Order, key: bytes) -> str:
    """Tells "the same order again" from "the reference reused with other content", however late it comes
    (eprom.claims.fingerprint, keyed with OrderFingerprintSecret)."""
    return fingerprint(order.fingerprint_content(), key)


def _other_content(stored: str | None, fingerprint: str) -> bool:
    """Only a fingerprint of this version can tell; none, or an older unkeyed one, is "unknown": the order is
    taken as the same one (not placed again, not refused)."""
    return stored is not None and stored.startswith(FINGERPRINT_VERSION) and stored != fingerprint


@dataclass(frozen=True)
class OrderPlacer:
    eprom: EpromClient
    claims: OrderClaims
    store: OrderStore
    outcomes: OutcomeBus
    fingerprint_key: Callable[[], bytes]
    ambiguous_policy: Literal["park", "retry"]
    allow_synthetic_national_ids: bool
    allow_test_mode_orders: bool
    function_name: str  # this Lambda function's name: an earlier version's idempotency records were named by it

    def handle(self, record: SqsRecord, ends_at: float) -> Verdict:
        """The message's verdict. `ends_at`: epoch seconds when the invocation ends."""
        try:
            order = read_order(
                record.body,
                allow_synthetic_national_ids=self.allow_synthetic_national_ids,
                allow_test_mode_orders=self.allow_test_mode_orders,
            )
        except Unreadable as problem:
            return Refuse(f"invalid order message: {problem}", "InvalidMessage")
        except Exception as error:  # anything else reading our input is the message's fault too: never retried
            return Refuse(f"invalid order message: unreadable ({type(error).__name__})", "InvalidMessage")
        logger.thread_safe_append_keys(order_reference=order.order_reference, form_id=str(order.form_id))
        return self.place(order, Attempt.of(record, ends_at))

    def announce_refusal(self, record: SqsRecord, refusal: Refuse) -> None:
        """FormOrderRefused on OutcomeBus, before the message goes to the DLQ: a repeat has the same eventId."""
        self.outcomes.put(
            [
                refused_outcome(
                    message_id=record.message_id,
                    sent_at=record.sent_at,
                    order_reference=order_reference_of(record.body),
                    rejection_class=refusal.rejection_class,
                    rejection_reason=refusal.reason,
                )
            ]
        )

    def fingerprint(self, order: Order) -> str:
        return order_fingerprint(order, self.fingerprint_key())

    def place(self, order: Order, attempt: Attempt) -> Verdict:
        reference, fingerprint = order.order_reference, self.fingerprint(order)
        holder = self.claims.take(
            reference,
            attempt_id=attempt.id,
            fingerprint=fingerprint,
            sending_until=attempt.sending_until,
            order_expiry=order.expiry_date,
            replacing=attempt.replacing,
        )
        if holder is not None:
            return self._claimed_before(order, holder, fingerprint)
        try:
            earlier = self._placed_before(order, fingerprint)
        except Exception:
            self.claims.release(reference, attempt.id)
            raise
        if earlier is not None:
            self.claims.release(reference, attempt.id)  # the item answers for the reference
            return earlier
        # ePROM's answer must leave time for the two writes that record it (the claim, then the item) before the
        # invocation ends, or the order would exist at ePROM with no record of it here.
        match self.eprom.place(order.eprom_request(), answer_by=attempt.sending_until - 2 * AWS_CALL_MAX_SECONDS):
            case Placed(response):
                self.claims.settle_placed(
                    reference,
                    fingerprint=fingerprint,
                    form_order_id=str(response.id),
                    order_expiry=order.expiry_date,
                    answer=response,
                )
                self._record(order, response, fingerprint)
                return Done("order placed", count="OrdersPlaced", log_keys={"form_order_id": str(response.id)})
            case Refused(reason):
                self.claims.release(reference, attempt.id)
                return Refuse(reason, "RefusedByEprom")
            case Ambiguous(reason) if self.ambiguous_policy == "retry":
                self.claims.release(reference, attempt.id)  # a possible second order is the policy's choice
                return RetryLater(f"{reason} (retried: AMBIGUOUS_ORDER_POLICY=retry)", count="OrdersAmbiguous")
            case Ambiguous(reason):
                reason = _ambiguous_reason(reason, order, datetime.now(UTC))
                self.claims.settle_ambiguous(reference, attempt.id, reason)
                return _parked(reason, attempt.id)
            case Deferred(reason, due_in_seconds):
                self.claims.release(reference, attempt.id)
                return RetryLater(reason, due_in_seconds, flow_control=True)
            case Transient(reason, retry_after_seconds):
                self.claims.release(reference, attempt.id)
                return RetryLater(reason, retry_after_seconds)
        raise AssertionError("unreachable: place returns one of the cases above")

    def _record(self, order: Order, response: OrderAnswer, fingerprint: str) -> None:
        """The order's item, once (a later delivery of a placed reference finds it written)."""
        self.store.record_placed(
            str(response.id),
            order_reference=order.order_reference,
            order_fingerprint=fingerprint,
            form_id=str(order.form_id),
            response=response,
            order_expiry=order.expiry_date,
        )

    def _placed_before(self, order: Order, fingerprint: str) -> Verdict | None:
        """The item an earlier message of this orderReference created before claims were kept, or whose claim
        expired (a final status after the order's expiryDate keeps an item longer). Only ever asked while holding
        the claim: every item written since then has a claim, so the index's lag cannot hide one (reads of a GSI
        are only ever eventually consistent:
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html)."""
        earlier = self.store.find_by_order_reference(order.order_reference)
        if not earlier:
            return None
        if any(_other_content(item.order_fingerprint, fingerprint) for item in earlier):
            return Refuse(REUSED_ORDER_REFERENCE, "ReusedOrderReference")
        return _placed_before(earlier[0].form_order_id)

    def _claimed_before(self, order: Order, holder: Claim, fingerprint: str) -> Verdict:
        """Another attempt holds the orderReference: its outcome is this message's."""
        if holder.fingerprint != fingerprint:
            return Refuse(REUSED_ORDER_REFERENCE, "ReusedOrderReference")
        if form_order_id := placed_form_order_id(holder):
            if (answer := placed_answer(holder)) is not None:  # its invocation may have stopped before the item
                self._record(order, answer, fingerprint)
            return _placed_before(form_order_id)
        if holder.state == AMBIGUOUS:
            return _parked(holder.ambiguous_reason or "ePROM may have created this order", holder.attempt_id)
        if not holder.holder_gone():
            return RetryLater(BEING_PLACED)
        # Its invocation ended without settling the claim (crashed or timed out), perhaps after ePROM took the order.
        answer = self.claims.legacy_answer(order.order_reference, self.function_name)
        if answer is not None:
            self.claims.settle_placed(
                order.order_reference,
                fingerprint=fingerprint,
                form_order_id=str(answer.id),
                order_expiry=order.expiry_date,
                answer=answer,
            )
            self._record(order, answer, fingerprint)
            return _placed_before(str(answer.id))
        detail = "the attempt that sent it ended without an answer (the function stopped)"
        reason = _ambiguous_reason(detail, order, datetime.fromtimestamp(holder.taken_at, UTC))
        if not self.claims.settle_ambiguous(order.order_reference, holder.attempt_id, reason):
            return RetryLater("the orderReference's claim changed while it was read; trying again")
        return _parked(reason, holder.attempt_id)


def _placed_before(form_order_id: str) -> Done:
    return Done("order was placed before; nothing to do", log_keys={"form_order_id": form_order_id})


def _parked(reason: str, attempt_id: str) -> Refuse:
    """ePROM may have created the order in `attempt_id`: to the DLQ for a person to check."""
    return parked(reason, attempt_id, count="OrdersAmbiguous")


def _ambiguous_reason(detail: str, order: Order, attempted_at: datetime) -> str:
    return (
        f"ePROM may have created this order: {detail}. Attempted at {attempted_at:%Y-%m-%dT%H:%M:%SZ} for form "
        f"{order.form_id}. Look in ePROM Admin for an order of that form created around that time (a form order "
        "whose callbacks we stored without an orderReference is listed by the orphans query): if there is none, "
        "redrive this message; if there is one, delete it here (a redrive would order a second time)."
    )
