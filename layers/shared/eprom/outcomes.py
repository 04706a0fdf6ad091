"""Outcome events for upstream on OutcomeBus (architecture.md, "Results to upstream"): their models, and what
events a change of an item means (put on the bus by outcome_bus.OutcomeBus).

Derived from FormOrdersTable's stream (old and new image of an item) and, for refusals, from the placer. The same
fact always gets the same `eventId` (a UUID made from the fact), so a repeated event carries the same id and
content and consumers de-duplicate on it. Nothing personal goes into an event: no national ids, no answers, no
key (`singleUseCode` is the one credential, and only in FormOrderPlaced for NoDistribution orders).
"""

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import TypedDict

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from eprom.order_item import PLACED, STATUS_RANK, HistoryEntry, OrderItem
from eprom.results_store import ResultPointer

SOURCE = "eprom.integration"
REFUSED = "Refused"  # the status of a FormOrderRefused event: below Placed, so any later event outranks it
_EVENT_IDS = uuid.UUID("6f1d3c3e-8f0a-4f5e-9d43-2c8a1b7e5a10")  # namespace of our deterministic event ids


class _Detail(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    event_id: str
    occurred_at: str
    order_reference: str | None
    form_order_id: str | None
    status: str
    status_rank: int


# A result pointer (ResultPointer) with its bucket, so upstream can read the object; `bucket` first, as the published
# schema has it (no docstring: it would become the schema's description).
class StoredObjectRef(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True, frozen=True)  # fmt: skip

    bucket: str
    key: str
    version_id: str | None = Field(default=None, exclude_if=lambda value: value is None)
    sha256: str
    bytes: int

    @classmethod
    def of(cls, pointer: ResultPointer, bucket: str) -> "StoredObjectRef":
        return cls(bucket=bucket, **dataclasses.asdict(pointer))


class FormOrderPlaced(_Detail):
    form_id: str | None
    notification_channel: str | None
    login_url: str | None
    single_use_code: str | None = Field(default=None, exclude_if=lambda value: value is None)


class FormOrderRefused(_Detail):
    rejection_class: str
    rejection_reason: str


class FormOrderStatusChanged(_Detail):
    previous_status: str | None
    status_error_code: str | None
    notification_channel: str | None
    status_timestamp_utc: str | None


class FormReturned(_Detail):
    answers: StoredObjectRef
    signed_document_expected: bool
    is_patient_initiated: bool


class SignedDocumentStored(_Detail):
    document: StoredObjectRef


class _Common(TypedDict):
    """What every event of one item change tells."""

    order_reference: str | None
    form_order_id: str | None
    status: str
    status_rank: int


type OutcomeDetail = FormOrderPlaced | FormOrderRefused | FormOrderStatusChanged | FormReturned | SignedDocumentStored


def event_id(detail_type: str, *fact: object) -> str:
    return str(uuid.uuid5(_EVENT_IDS, "|".join([detail_type, *map(str, fact)])))


def item_outcomes(old: OrderItem | None, new: OrderItem | None, *, bucket: str) -> list[OutcomeDetail]:
    """What changed between two images of a FormOrdersTable item, as outcome events (none for a removal)."""
    if new is None:
        return []  # deleted by TTL at the end of retention: nothing to tell
    old = old or OrderItem(form_order_id=new.form_order_id)
    form_order_id = new.form_order_id
    status = new.status or PLACED
    common: _Common = {
        "order_reference": new.order_reference,
        "form_order_id": form_order_id,
        "status": status,
        "status_rank": STATUS_RANK.get(status, 0),
    }
    details: list[OutcomeDetail] = []
    if new.order_reference and not old.order_reference:
        details.append(
            FormOrderPlaced(
                event_id=event_id("FormOrderPlaced", form_order_id),
                occurred_at=str(new.placed_at or new.updated_at),
                form_id=new.form_id,
                notification_channel=new.preferred_notification_channel,
                login_url=new.login_url,
                single_use_code=new.single_use_code,
                **common,
            )
        )
    if new.status and new.status != old.status and new.status != PLACED:
        details.append(
            FormOrderStatusChanged(
                event_id=event_id("FormOrderStatusChanged", form_order_id, new.status),
                occurred_at=str(new.updated_at),
                previous_status=old.status,
                status_error_code=new.status_error_code,
                notification_channel=new.notification_channel,
                status_timestamp_utc=new.status_timestamp_utc,
                **common,
            )
        )
    if new.answers and not old.answers:
        details.append(
            FormReturned(
                event_id=event_id("FormReturned", form_order_id, new.answers.sha256, new.answers.version_id),
                occurred_at=str(new.updated_at),
                answers=StoredObjectRef.of(new.answers, bucket),
                signed_document_expected=signed_document_expected(new),
                is_patient_initiated=bool(new.is_patient_initiated),
                **common,
            )
        )
    details += [
        FormReturned(
            event_id=event_id("FormReturned", form_order_id, answers.sha256, answers.version_id),
            occurred_at=entry.received_at,
            answers=StoredObjectRef.of(answers, bucket),
            signed_document_expected=signed_document_expected(new),
            is_patient_initiated=bool(new.is_patient_initiated),
            **common,
        )
        for entry, answers in later_returns(old, new)
    ]
    if new.signed_document and not old.signed_document:
        details.append(
            SignedDocumentStored(
                event_id=event_id("SignedDocumentStored", form_order_id, new.signed_document.sha256),
                occurred_at=str(new.updated_at),
                document=StoredObjectRef.of(new.signed_document, bucket),
                **common,
            )
        )
    return details


def later_returns(old: OrderItem, new: OrderItem) -> list[tuple[HistoryEntry, ResultPointer]]:
    """History entries this change appended for a form return whose content is new to the item (not the first
    return, `answers`, and not noted before), each with where its answers are: another version of the same key.
    Entries of code older than `answersBytes` are not announced."""
    if new.answers is None:
        return []
    known = {new.answers.sha256} | {entry.answers_sha256 for entry in old.status_history}
    found = []
    for entry in new.status_history[len(old.status_history) :]:  # statusHistory is only appended to
        if entry.answers_bytes is not None and entry.answers_sha256 is not None and entry.answers_sha256 not in known:
            known.add(entry.answers_sha256)
            pointer = ResultPointer(key=new.answers.key, version_id=entry.answers_version_id,
                                    sha256=entry.answers_sha256, bytes=entry.answers_bytes)  # fmt: skip
            found.append((entry, pointer))
    return found


def refused_outcome(
    *, message_id: str, sent_at: datetime, order_reference: str | None, rejection_class: str, rejection_reason: str
) -> FormOrderRefused:
    """`occurredAt` is when the refused message was sent to OrderQueue: a repeat of the refusal (the message came
    again because its dead-lettering failed) has the same id and the same content, so consumers can de-duplicate."""
    occurred_at = sent_at.astimezone(UTC).isoformat()
    return FormOrderRefused(
        event_id=event_id("FormOrderRefused", message_id, rejection_class, rejection_reason, occurred_at),
        occurred_at=occurred_at,
        order_reference=order_reference,
        form_order_id=None,
        status=REFUSED,
        status_rank=-1,
        rejection_class=rejection_class,
        rejection_reason=rejection_reason,
    )


def signed_document_expected(item: OrderItem) -> bool:
    """ePROM sends the all-zero GUID as signedFormId for an unsigned form."""
    try:
        return bool(item.signed_form_id) and uuid.UUID(str(item.signed_form_id)).int != 0
    except ValueError:
        return False
