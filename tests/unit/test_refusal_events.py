"""The placer's and the sender's refusals, written without pydantic (eprom/refusal_events.py), are the events the
published models write (eprom/outcomes.py FormOrderRefused, MessageRefused): the same bytes, valid to the model and
to the published schema, and the eventIds earlier code gave the same refusal."""

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from eprom.outcome_bus import event_id
from eprom.outcomes import FormOrderRefused, MessageRefused
from eprom.refusal_events import message_refused_outcome, refused_outcome
from jsonschema import Draft202012Validator

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "events"
MESSAGE_ID = "0b7e9c1a-4f34-4a8e-9d1e-2f5b8c9d0e11"
SENT_AT = datetime(2026, 3, 1, 13, 5, 7, 123456, tzinfo=timezone(timedelta(hours=1)))
OCCURRED_AT = "2026-03-01T12:05:07.123456+00:00"
REFUSALS = [  # (reference, rejectionClass, rejectionReason)
    ("REF-1", "InvalidMessage", "invalid order message: ø"),
    (None, "InvalidMessage", "ugyldig: «fødselsnummer» må være 11 siffer \u2013 æøå ÆØÅ 😀"),
    ("REF-2", "RefusedByEprom", 'a "quoted" value, a back\\slash and a /slash'),
    ("REF-3", "InvalidMessage", "control characters: \x00 \x01 \x1f \x7f \b \f \n \r \t, separators \u2028 \u2029"),
    (None, "Ambiguous", ""),
]


def _schema_validator(detail_type: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((SCHEMAS / f"{detail_type}.schema.json").read_text()))


@pytest.mark.parametrize(("reference", "rejection_class", "reason"), REFUSALS)
def test_a_form_order_refused_is_the_models_json(reference: str | None, rejection_class: str, reason: str) -> None:
    event = refused_outcome(message_id=MESSAGE_ID, sent_at=SENT_AT, order_reference=reference,
                            rejection_class=rejection_class, rejection_reason=reason)  # fmt: skip
    model = FormOrderRefused(
        event_id=event_id("FormOrderRefused", MESSAGE_ID, rejection_class, reason, OCCURRED_AT),
        occurred_at=OCCURRED_AT,
        order_reference=reference,
        form_order_id=None,
        status="Refused",
        status_rank=-1,
        rejection_class=rejection_class,
        rejection_reason=reason,
    )
    assert event.detail_type == "FormOrderRefused"
    assert event.detail == model.model_dump_json(by_alias=True)
    assert FormOrderRefused.model_validate_json(event.detail) == model
    _schema_validator("FormOrderRefused").validate(json.loads(event.detail))


@pytest.mark.parametrize(("reference", "rejection_class", "reason"), REFUSALS)
@pytest.mark.parametrize("kind", ["letter", "sms", None])
def test_a_message_refused_is_the_models_json(
    reference: str | None, rejection_class: str, reason: str, kind: str | None
) -> None:
    event = message_refused_outcome(message_id=MESSAGE_ID, sent_at=SENT_AT, message_reference=reference, kind=kind,
                                    rejection_class=rejection_class, rejection_reason=reason)  # fmt: skip
    model = MessageRefused(
        event_id=event_id("MessageRefused", MESSAGE_ID, rejection_class, reason, OCCURRED_AT),
        occurred_at=OCCURRED_AT,
        message_reference=reference,
        kind=kind,
        message_to_citizen_id=None,
        status="Refused",
        status_rank=-1,
        rejection_class=rejection_class,
        rejection_reason=reason,
    )
    assert event.detail_type == "MessageRefused"
    assert event.detail == model.model_dump_json(by_alias=True)
    assert MessageRefused.model_validate_json(event.detail) == model
    _schema_validator("MessageRefused").validate(json.loads(event.detail))


def test_a_refusal_keeps_the_event_id_it_had() -> None:
    """The ids earlier code (the models' own builders) gave these refusals: a repeat after an upgrade is the same
    event to consumers."""
    form = refused_outcome(message_id=MESSAGE_ID, sent_at=SENT_AT, order_reference="REF-1",
                           rejection_class="InvalidMessage", rejection_reason="invalid order message: ø")  # fmt: skip
    message = message_refused_outcome(message_id=MESSAGE_ID, sent_at=SENT_AT.astimezone(UTC), message_reference=None,
                                      kind="letter", rejection_class="InvalidMessage",
                                      rejection_reason="invalid message: ø")  # fmt: skip
    assert json.loads(form.detail)["eventId"] == "e87802b6-84bf-5a6d-87d4-b733726bb064"
    assert json.loads(message.detail)["eventId"] == "64f5cfab-925d-58f5-93f1-64d2bb90a3b7"
