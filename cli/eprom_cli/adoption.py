"""`eprom orders adopt`: an Ambiguous order that ePROM did create, linked to its orderReference.

When the answer to a sent order is lost, the placer parks the message (rejectionClass Ambiguous) and keeps the
reference's claim Ambiguous; ePROM's callbacks for the order it may have created make an item without an
orderReference (callbacks carry none). A person who finds that order in ePROM Admin adopts it: the claim is settled
as Placed with the formOrderId (so no copy of the order is ever sent), the item gets the reference (the stream then
announces FormOrderPlaced to upstream), the order's current facts are announced again under the reference, and the
parked dead letters of the reference, resolved now, are deleted.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from eprom.claims import AMBIGUOUS
from place_order.claims import OrderClaims, placed_form_order_id

from eprom_cli import dead_letters, orders, outcomes
from eprom_cli.target import Target


class AdoptionRefused(Exception):
    """Why nothing was changed: one line for the operator."""


@dataclass(frozen=True)
class Adopted:
    announced: int  # events re-published under the reference
    deleted_letters: int


def adopt(target: Target, order_reference: str, form_order_id: str) -> Adopted:
    store = orders.store(target)
    item = store.item(form_order_id)
    if item is None:
        raise AdoptionRefused(f"no item {form_order_id}: ePROM has not called back about it (see `orders orphans`)")
    if item.order_reference:
        raise AdoptionRefused(f"item {form_order_id} belongs to orderReference {item.order_reference} already")
    if placed := orders.items_of(target, order_reference):
        raise AdoptionRefused(f"{order_reference} is placed already as {placed[0].form_order_id}: not an orphan's")
    if not target.idempotency_table:
        raise AdoptionRefused(f"stack {target.name} has no IdempotencyTableName output: deploy the current template")
    # settle_placed keeps the claim's expiration (if_not_exists): the two periods only bound a claim it would make
    claims = OrderClaims(target.idempotency_table, target.client("dynamodb"), retention=timedelta(0),
                         shortest_life=timedelta(0))  # fmt: skip
    claim = claims.current(order_reference)
    if claim is None:
        raise AdoptionRefused(f"no claim on {order_reference}: no attempt of it was parked as Ambiguous (redrive or "
                              "send the order instead)")  # fmt: skip
    if claim.state != AMBIGUOUS and not claim.holder_gone():
        raise AdoptionRefused(
            f"the claim on {order_reference} is {claim.state}"
            + (f" as {placed_form_order_id(claim)}" if placed_form_order_id(claim) else "")
            + ": not Ambiguous"
        )
    with dead_letters.held(target, "orders") as letters:
        parked = [letter for letter in dead_letters.chosen(letters, AMBIGUOUS, order_reference)]
        body = json.loads(parked[-1].body) if parked else {}
        expiry = datetime.fromisoformat(body["expiryDate"]) if "expiryDate" in body else datetime.now(UTC)
        claims.settle_placed(order_reference, fingerprint=claim.fingerprint, form_order_id=form_order_id,
                             order_expiry=expiry)  # fmt: skip
        if not store.adopt_orphan(
            form_order_id,
            order_reference=order_reference,
            order_fingerprint=claim.fingerprint,
            form_id=body.get("formId"),
            placed_at=item.created_at or item.updated_at or "",
        ):
            raise AdoptionRefused(f"item {form_order_id} changed meanwhile (linked or gone); the claim is Placed")
        for letter in parked:
            dead_letters.delete(target, letter)
    adopted = store.item(form_order_id)
    announced = outcomes.republish(target, [adopted]) if adopted else []
    return Adopted(len(announced), len(parked))
