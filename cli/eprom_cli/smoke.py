"""`eprom smoke` after a deploy: one test order per stack, form and day, and the wait for ePROM's Ordered callback.

The orderReference is smoke-DATE-form-FORM and the message the same all day: a re-run, or a message still being retried
(a 401, say), is one order to the placer (one idempotency key; placed once per orderReference), never two.
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from eprom.codes import FormOrderStatus
from eprom.order_item import PLACED

from eprom_cli import dead_letters, orders
from eprom_cli.target import Target

POLL_SECONDS = 2


class SmokeRefused(Exception):
    """Why no test order was sent: one line for the operator."""


@dataclass(frozen=True)
class SmokeOrder:
    reference: str
    placed_as: str | None  # the formOrderId it was placed as earlier; None: sent now
    earlier_refusals: frozenset[str] = frozenset()  # the message ids of its dead letters from earlier runs


def todays_reference(form_id: str, today: date) -> str:
    """smoke-DATE-form-FORM. The letter after the date's separator matters: six digits, a separator and five more
    are read as a national id written out (national_id.redact), and the form's first eight characters may be digits."""
    return f"smoke-{today:%Y%m%d}-form-{form_id[:8]}"


def order_once(target: Target, form_id: str, national_id: str) -> SmokeOrder:
    """Today's test order for the form, sent unless it was placed already."""
    if target.is_production:
        raise SmokeRefused("smoke sends a test order and is refused against a prod stage: verify prod with Hemit "
                           "instead")  # fmt: skip
    reference = todays_reference(form_id, datetime.now(UTC).date())
    if earlier := orders.items_of(target, reference):
        return SmokeOrder(reference, earlier[0].form_order_id)
    expiry = (datetime.now(UTC) + timedelta(days=7)).replace(hour=23, minute=59, second=59, microsecond=0)
    body = {"orderReference": reference, "formId": form_id, "nationalId": national_id,
            "expiryDate": expiry.isoformat(), "metadata": {"orderReference": reference}}  # fmt: skip
    order = orders.check_body(json.dumps(body), target)
    if order.problem:
        raise SmokeRefused(f"the test order is not valid: {order.problem}")
    with dead_letters.held(target, "orders") as letters:  # refused on an earlier run: not this run's answer
        earlier_refusals = frozenset(letter.message_id for letter in dead_letters.chosen(letters, None, reference))
    orders.send(target, order)
    return SmokeOrder(reference, None, earlier_refusals)


def wait_for_ordered(target: Target, order: SmokeOrder, timeout: int, progress: Callable[[str], None],
                     sleep: Callable[[float], None] = time.sleep,
                     clock: Callable[[], float] = time.monotonic) -> str:  # fmt: skip
    """'Ordered' once the callback came (or a later status), else what went wrong: not placed (refused, or ePROM
    did not take it) or placed with no callback yet."""
    deadline, placed_as = clock() + timeout, None
    while clock() < deadline:
        for item in orders.items_of(target, order.reference):
            if item.status == FormOrderStatus.Error.name:
                return f"ePROM could not reach the patient: Error ({item.status_error_code})"
            if item.status not in (None, PLACED):
                return "Ordered"
            placed_as = item.form_order_id
            progress(f"placed as {item.form_order_id}; waiting for ePROM's callback")
        with dead_letters.held(target, "orders") as letters:
            refusals = [letter for letter in dead_letters.chosen(letters, None, order.reference)
                        if letter.message_id not in order.earlier_refusals]  # fmt: skip
        if refusals:
            return f"the order was refused ({refusals[0].rejection_class}): {refusals[0].reason}"
        sleep(POLL_SECONDS)
    if placed_as:
        return (f"placed as {placed_as}, no callback yet after {timeout} s: is the ApiBaseUrl registered with Hemit, "
                "and the key set in both places? (re-run smoke later: it looks at this order again)")  # fmt: skip
    return (f"not placed within {timeout} s: ePROM did not take the order (a 401: the ApiKey is not set or not "
            "Hemit's; the network; ePROM down) and the placer retries it for 24 h; fix the cause and re-run smoke "
            "(the same order, never a second one)")  # fmt: skip
