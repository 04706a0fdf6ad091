"""The refusals the placer and the sender put on OutcomeBus before a message goes to their DLQ: FormOrderRefused and
MessageRefused, written as plain JSON so that neither function imports pydantic to start. Their models in
outcomes.py stay the published schema; tests/unit/test_refusal_events.py holds these events to them, byte for byte.

`occurredAt` is when the refused message was sent to its queue: a repeat of the refusal (the message came again
because its dead-lettering failed) has the same id and the same content, so consumers can de-duplicate.
"""

import json
from datetime import UTC, datetime
from typing import Any

from eprom.outcome_bus import OutcomeEvent, event_id

REFUSED = "Refused"  # the status of a refusal: below every other status, so any later event outranks it


def refused_outcome(
    *, message_id: str, sent_at: datetime, order_reference: str | None, rejection_class: str, rejection_reason: str
) -> OutcomeEvent:
    """FormOrderRefused of an OrderQueue message."""
    return _refusal("FormOrderRefused", message_id, sent_at, {"orderReference": order_reference, "formOrderId": None},
                    rejection_class, rejection_reason)  # fmt: skip


def message_refused_outcome(
    *, message_id: str, sent_at: datetime, message_reference: str | None, kind: str | None, rejection_class: str,
    rejection_reason: str,
) -> OutcomeEvent:  # fmt: skip
    """MessageRefused of a MessageQueue message."""
    subject = {"messageReference": message_reference, "kind": kind, "messageToCitizenId": None}
    return _refusal("MessageRefused", message_id, sent_at, subject, rejection_class, rejection_reason)


def _refusal(
    detail_type: str, message_id: str, sent_at: datetime, subject: dict[str, Any], rejection_class: str,
    rejection_reason: str,
) -> OutcomeEvent:  # fmt: skip
    occurred_at = sent_at.astimezone(UTC).isoformat()
    detail = {
        "eventId": event_id(detail_type, message_id, rejection_class, rejection_reason, occurred_at),
        "occurredAt": occurred_at,
        **subject,
        "status": REFUSED,
        "statusRank": -1,
        "rejectionClass": rejection_class,
        "rejectionReason": rejection_reason,
    }
    # the models' order of keys, and JSON as pydantic writes it: compact, non-ASCII as it is
    return OutcomeEvent(detail_type, json.dumps(detail, ensure_ascii=False, separators=(",", ":")))
