"""Outcome events for upstream on OutcomeBus (architecture.md, "Results to upstream" and "Messages to citizens"):
their models, and what events a change of an item means (put on the bus by outcome_bus.OutcomeBus: as_events); and
PrivacySettingChanged, a change of a person's privacy setting ePROM forwarded (architecture.md, "Privacy settings
(PVK)").

Derived from FormOrdersTable's stream (old and new image of an item) and, for refusals, from the placer. The same
fact always gets the same `eventId` (a UUID made from the fact), so a repeated event carries the same id and
content and consumers de-duplicate on it. Nothing personal goes into an event: no national ids, no answers, no
key (`singleUseCode` is the one credential, and only in FormOrderPlaced for NoDistribution orders).
"""

import dataclasses
import uuid
from collections.abc import Iterable
from typing import TypedDict

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from eprom.message_item import MessageItem
from eprom.message_store import DELIVERED, NOT_DELIVERED
from eprom.message_store import STATUS_RANK as MESSAGE_STATUS_RANK
from eprom.order_item import PLACED, STATUS_RANK, HistoryEntry, OrderItem
from eprom.outcome_bus import OutcomeEvent, event_id
from eprom.results_store import ResultPointer


class _Detail(BaseModel):
    # built on first use: only the publisher (and the CLI) build events
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, defer_build=True)

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
                              serialize_by_alias=True, frozen=True, defer_build=True)  # fmt: skip

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


class FormOrderRefused(_Detail):  # made by the placer without pydantic: refusal_events.py
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


def as_events(details: Iterable[BaseModel]) -> list[OutcomeEvent]:
    """Event models as OutcomeBus puts them: the model's name is the detail-type."""
    return [OutcomeEvent(type(detail).__name__, detail.model_dump_json(by_alias=True)) for detail in details]


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
            signed_document_expected=_expects_a_document(entry.signed_form_id or new.signed_form_id),
            is_patient_initiated=bool(new.is_patient_initiated),
            **common,
        )
        for entry, answers in later_returns(old, new)
    ]
    stored_before = {document.sha256 for document in old.later_signed_documents}
    documents = [new.signed_document] if new.signed_document and not old.signed_document else []
    documents += [document for document in new.later_signed_documents if document.sha256 not in stored_before]
    details += [
        SignedDocumentStored(
            event_id=event_id("SignedDocumentStored", form_order_id, document.sha256),
            occurred_at=str(new.updated_at),
            document=StoredObjectRef.of(document, bucket),
            **common,
        )
        for document in documents
    ]
    return details


def documents_to_fetch(old: OrderItem | None, new: OrderItem | None) -> list[str]:
    """The signedFormIds whose documents the form returns this change announces expect: the first return's, and
    those later returns carried (another signedFormId is another document)."""
    if new is None:
        return []
    old = old or OrderItem(form_order_id=new.form_order_id)
    carried = [new.signed_form_id] if new.answers and not old.answers else []
    carried += [entry.signed_form_id or new.signed_form_id for entry, _ in later_returns(old, new)]
    return list(dict.fromkeys(str(signed_form_id) for signed_form_id in carried if _expects_a_document(signed_form_id)))


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


def signed_document_expected(item: OrderItem) -> bool:
    """Whether the item's first form return expects a signed document."""
    return _expects_a_document(item.signed_form_id)


def _expects_a_document(signed_form_id: str | None) -> bool:
    """ePROM sends the all-zero GUID as signedFormId for an unsigned form."""
    try:
        return bool(signed_form_id) and uuid.UUID(str(signed_form_id)).int != 0
    except ValueError:
        return False


# --- Messages to citizens (architecture.md, "Messages to citizens") ------------------------------------------------
# From MessagesTable's stream, as the orders' events come from FormOrdersTable's; MessageRefused from the sender.
# No national id, phone number, address or text is in a message's item, so none can reach its events.


class _MessageDetail(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, defer_build=True)

    event_id: str
    occurred_at: str
    message_reference: str | None
    kind: str | None
    message_to_citizen_id: str | None
    status: str
    status_rank: int


class MessageAccepted(_MessageDetail):
    notification_channel: str | None


class MessageRefused(_MessageDetail):  # made by the sender without pydantic: refusal_events.py
    rejection_class: str
    rejection_reason: str


class MessageDelivered(_MessageDetail):
    notification_channel: str | None


class MessageNotDelivered(_MessageDetail):
    notification_channel: str | None


type MessageOutcome = MessageAccepted | MessageRefused | MessageDelivered | MessageNotDelivered


class _MessageCommon(TypedDict):
    """What every event of one change of a message's item tells."""

    message_reference: str
    kind: str | None
    message_to_citizen_id: str | None
    status: str
    status_rank: int
    notification_channel: str | None


def message_outcomes(old: MessageItem | None, new: MessageItem | None) -> list[MessageOutcome]:
    """What changed between two images of a message's item, as events: MessageAccepted when ePROM's answer is
    written (MessageNotDelivered instead for a letter it could send on no channel), then the letter's fate from
    its callbacks. A claim being taken or let go, a link item, a removal: nothing."""
    if new is None or new.is_link or not new.sent_at or not new.status:
        return []
    old = old or MessageItem(message_reference=new.message_reference)
    status = new.status
    common: _MessageCommon = {
        "message_reference": new.message_reference,
        "kind": new.kind,
        "message_to_citizen_id": new.message_to_citizen_id,
        "status": status,
        "status_rank": MESSAGE_STATUS_RANK.get(status, 0),
        "notification_channel": new.notification_channel,
    }
    fact = (new.message_reference, new.sent_at)  # the sent_at of a reference sent again after its item expired differs
    detail: type[MessageAccepted | MessageDelivered | MessageNotDelivered]
    if not old.sent_at:
        detail, occurred_at = (MessageNotDelivered if status == NOT_DELIVERED else MessageAccepted), new.sent_at
    elif status != old.status and status in (DELIVERED, NOT_DELIVERED):
        detail, occurred_at = (MessageDelivered if status == DELIVERED else MessageNotDelivered), str(new.updated_at)
    else:
        return []
    return [detail(event_id=event_id(detail.__name__, *fact, status), occurred_at=occurred_at, **common)]


# --- Privacy settings (PVK): a change a person made on Helsenorge, announced by StatusCallbackFunction -------------


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, defer_build=True)


class StoredChangeRef(_Camel):
    bucket: str
    key: str
    version_id: str | None
    sha256: str


class PrivacySettingChanged(_Camel):
    event_id: str
    occurred_at: str
    pvk_id: str
    name: str | None
    status: str
    change: StoredChangeRef


def privacy_setting_changed(
    *, pvk_id: str, name: str | None, status: str, change: ResultPointer, bucket: str, received_at: str
) -> PrivacySettingChanged:
    """The event of a stored change: its id is made from the stored content, so the same change sent again by ePROM
    is the same event (same id, same content: `occurredAt` is when the change was first stored)."""
    return PrivacySettingChanged(
        event_id=event_id("PrivacySettingChanged", change.sha256),
        occurred_at=received_at,
        pvk_id=pvk_id,
        name=name,
        status=status,
        change=StoredChangeRef(bucket=bucket, key=change.key, version_id=change.version_id, sha256=change.sha256),
    )
