"""Placing an order with ePROM at most once per orderReference, and how a message's placement ends (Outcome).

Only the attempt that holds the orderReference's claim (claims.py: a conditional write, strongly consistent) sends
it to ePROM. An attempt that ePROM may have carried out (Ambiguous) is parked in the DLQ for a person, unless
AMBIGUOUS_ORDER_POLICY=retry; its claim stays, so every other message of the reference is parked too instead of
being sent, until a person redrives a parked message (it keeps its rejectionClass and ambiguousAttemptId, which say
"checked in ePROM Admin: place it").
"""

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from eprom.aws_clients import AWS_CALL_MAX_SECONDS
from eprom.eprom_client import Ambiguous, EpromClient, Placed, Refused, Transient
from eprom.models import EpromOrderResponse, OrderMessage
from eprom.order_store import OrderStore
from pydantic import BaseModel

from place_order.claims import AMBIGUOUS, PLACED, Claim, OrderClaims

type RejectionClass = Literal[
    "InvalidMessage", "RefusedByEprom", "ReusedOrderReference", "RetriesExhausted", "Ambiguous"
]
REUSED_ORDER_REFERENCE = "orderReference was already used for an order with other content"
BEING_PLACED = "an order with this orderReference is being placed right now"
# Below this there is no point in asking ePROM: its answer would likely be lost to our own timeout.
MIN_EPROM_READ_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class OrderPlaced:
    """ePROM has the order: created by this message, or by an earlier one of its orderReference."""

    form_order_id: str
    placed_before: bool = False


@dataclass(frozen=True)
class OrderRefused:
    """Not placed: to the DLQ with this reason and class. Not remembered: a redrive tries it again."""

    reason: str
    rejection_class: RejectionClass


@dataclass(frozen=True)
class OrderParked:
    """ePROM may have created the order in `attempt_id`: to the DLQ for a person to check, and the claim keeps every
    other message of the reference from being sent."""

    reason: str
    attempt_id: str


@dataclass(frozen=True)
class RetryLater:
    """Nothing was ordered (or AMBIGUOUS_ORDER_POLICY=retry takes the risk of a second order): the message is
    delivered again until its retry window is spent. The reason holds no personal data."""

    reason: str
    retry_after_seconds: float | None = None
    ambiguous: bool = False  # ePROM may have created the order (retried by AMBIGUOUS_ORDER_POLICY=retry)


type Outcome = OrderPlaced | OrderRefused | OrderParked | RetryLater


class NotRemembered(Exception):
    """How placement ends when Powertools must keep no record of it (it keeps what is returned), so that a later
    delivery asks the claim afresh."""

    def __init__(self, outcome: OrderRefused | OrderParked | RetryLater) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


@dataclass(frozen=True)
class Attempt:
    """One message's try at placing its order."""

    id: str
    sending_until: float  # epoch seconds: the invocation ends by then
    replacing: str | None = None  # a redriven parked message: the Ambiguous attempt a person found no order of


class RememberedPlacement(BaseModel):
    """What Powertools remembers per orderReference, so a re-sent order gets the same answer without a lookup."""

    response: EpromOrderResponse | None = None  # ePROM created the order
    placed_before: str | None = None  # the formOrderId an earlier message of this orderReference created


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


@dataclass(frozen=True)
class EpromPlacement:
    """Places orders with ePROM, at most once per orderReference, and records the placed ones."""

    eprom: EpromClient
    claims: OrderClaims
    store: OrderStore
    fingerprint_key: Callable[[], bytes]
    connect_timeout: float
    longest_read_timeout: float
    ambiguous_policy: Literal["park", "retry"]

    def fingerprint(self, order: OrderMessage) -> str:
        return order_fingerprint(order, self.fingerprint_key())

    def place(self, order: OrderMessage, attempt: Attempt) -> RememberedPlacement:
        """The idempotent unit (behind Powertools in app.py). Only what must be remembered is returned (placed,
        placed before); every other end is raised as NotRemembered."""
        reference, fingerprint = order.order_reference, self.fingerprint(order)
        holder = self.claims.take(reference, attempt_id=attempt.id, fingerprint=fingerprint,
                                  sending_until=attempt.sending_until, order_expiry=order.expiry_date,
                                  replacing=attempt.replacing)  # fmt: skip
        if holder is not None:
            return self._claimed_before(order, holder, fingerprint)
        read_timeout = eprom_read_timeout(
            attempt.sending_until - time.time(), connect_timeout=self.connect_timeout, longest=self.longest_read_timeout
        )
        try:
            earlier = self._placed_before(order, fingerprint)
            if earlier is None and read_timeout < MIN_EPROM_READ_TIMEOUT_SECONDS:
                not_sent = "too little time left in this invocation to wait for ePROM (the order was not sent)"
                raise NotRemembered(RetryLater(not_sent))
        except Exception:
            self.claims.release(reference, attempt.id)
            raise
        if earlier:
            self.claims.release(reference, attempt.id)  # the item answers for the reference
            return earlier
        match self.eprom.place(order.to_eprom_request(), read_timeout=read_timeout):
            case Placed(response):
                return RememberedPlacement(response=response)  # the claim is settled once the item is written
            case Refused(reason):
                self.claims.release(reference, attempt.id)
                raise NotRemembered(OrderRefused(reason, "RefusedByEprom"))
            case Ambiguous(reason) if self.ambiguous_policy == "retry":
                self.claims.release(reference, attempt.id)  # a possible second order is the policy's choice
                raise NotRemembered(RetryLater(f"{reason} (retried: AMBIGUOUS_ORDER_POLICY=retry)", ambiguous=True))
            case Ambiguous(reason):
                reason = _ambiguous_reason(reason, order, datetime.now(UTC))
                self.claims.settle_ambiguous(reference, attempt.id, reason)
                raise NotRemembered(OrderParked(reason, attempt.id))
            case Transient(reason, retry_after_seconds):
                self.claims.release(reference, attempt.id)
                raise NotRemembered(RetryLater(reason, retry_after_seconds))

    def record(self, order: OrderMessage, response: EpromOrderResponse) -> str:
        """The order ePROM created, in FormOrdersTable and then in its claim: its formOrderId."""
        form_order_id, fingerprint = str(response.id), self.fingerprint(order)
        self.store.record_placed(
            form_order_id,
            order_reference=order.order_reference,
            order_fingerprint=fingerprint,
            form_id=str(order.form_id),
            response=response,
            order_expiry=order.expiry_date,
        )
        # After the item: a claim that says Placed always has its item (a crash between the two leaves the claim
        # Sending, and the next delivery finds the response in Powertools' record and writes both again).
        self.claims.settle_placed(order.order_reference, fingerprint=fingerprint, form_order_id=form_order_id,
                                  order_expiry=order.expiry_date)  # fmt: skip
        return form_order_id

    def _placed_before(self, order: OrderMessage, fingerprint: str) -> RememberedPlacement | None:
        """The item an earlier message of this orderReference created before claims were kept, or whose claim
        expired (a final status after the order's expiryDate keeps an item longer). Only ever asked while holding
        the claim: every item written since then has a claim, so the index's lag cannot hide one (reads of a GSI
        are only ever eventually consistent:
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html)."""
        earlier = self.store.find_by_order_reference(order.order_reference)
        if not earlier:
            return None
        if any(_other_content(item.get("orderFingerprint"), fingerprint) for item in earlier):
            raise NotRemembered(OrderRefused(REUSED_ORDER_REFERENCE, "ReusedOrderReference"))
        return RememberedPlacement(placed_before=earlier[0]["formOrderId"])

    def _claimed_before(self, order: OrderMessage, holder: Claim, fingerprint: str) -> RememberedPlacement:
        """Another attempt holds the orderReference: its outcome is this message's."""
        if holder.fingerprint != fingerprint:
            raise NotRemembered(OrderRefused(REUSED_ORDER_REFERENCE, "ReusedOrderReference"))
        if holder.state == PLACED and holder.form_order_id:
            return RememberedPlacement(placed_before=holder.form_order_id)
        if holder.state == AMBIGUOUS:
            reason = holder.ambiguous_reason or "ePROM may have created this order"
            raise NotRemembered(OrderParked(reason, holder.attempt_id))
        if not holder.holder_gone():
            raise NotRemembered(RetryLater(BEING_PLACED))
        # Its invocation ended without settling the claim (crashed or timed out), perhaps after ePROM took the order.
        detail = "the attempt that sent it ended without an answer (the function stopped)"
        reason = _ambiguous_reason(detail, order, datetime.fromtimestamp(holder.taken_at, UTC))
        if not self.claims.settle_ambiguous(order.order_reference, holder.attempt_id, reason):
            raise NotRemembered(RetryLater("the orderReference's claim changed while it was read; trying again"))
        raise NotRemembered(OrderParked(reason, holder.attempt_id))


def _ambiguous_reason(detail: str, order: OrderMessage, attempted_at: datetime) -> str:
    return (
        f"ePROM may have created this order: {detail}. Attempted at {attempted_at:%Y-%m-%dT%H:%M:%SZ} for form "
        f"{order.form_id}. Look in ePROM Admin for an order of that form created around that time (a form order "
        "whose callbacks we stored without an orderReference is listed by the orphans query): if there is none, "
        "redrive this message; if there is one, delete it here (a redrive would order a second time)."
    )
