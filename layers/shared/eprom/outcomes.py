"""Outcome events for upstream on OutcomeBus (architecture.md, "Results to upstream").

Derived from FormOrdersTable's stream (old and new image of an item) and, for refusals, from the placer. The same
fact always gets the same `eventId` (a UUID made from the fact), so a repeated event carries the same id and
content and consumers de-duplicate on it. Nothing personal goes into an event: no national ids, no answers, no
key (`singleUseCode` is the one credential, and only in FormOrderPlaced for NoDistribution orders).
"""

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from eprom.aws_clients import aws_client
from eprom.order_store import PLACED, STATUS_RANK

SOURCE = "eprom.integration"
REFUSED = "Refused"  # the status of a FormOrderRefused event: below Placed, so any later event outranks it
_EVENT_IDS = uuid.UUID("6f1d3c3e-8f0a-4f5e-9d43-2c8a1b7e5a10")  # namespace of our deterministic event ids
PUT_EVENTS_MAX_ENTRIES = 10

type DetailType = Literal[
    "FormOrderPlaced", "FormOrderRefused", "FormOrderStatusChanged", "FormReturned", "SignedDocumentStored"
]


class _Detail(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    event_id: str
    occurred_at: str
    order_reference: str | None
    form_order_id: str | None
    status: str
    status_rank: int


class StoredObjectRef(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    bucket: str
    key: str
    version_id: str | None = Field(default=None, exclude_if=lambda value: value is None)
    sha256: str
    bytes: int


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


type OutcomeDetail = FormOrderPlaced | FormOrderRefused | FormOrderStatusChanged | FormReturned | SignedDocumentStored


def event_id(detail_type: str, *fact: object) -> str:
    return str(uuid.uuid5(_EVENT_IDS, "|".join([detail_type, *map(str, fact)])))


def item_outcomes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, *, bucket: str) -> list[OutcomeDetail]:
    """What changed between two images of a FormOrdersTable item, as outcome events (none for a removal)."""
    old, new = old or {}, new or {}
    if not new:
        return []  # deleted by TTL at the end of retention: nothing to tell
    form_order_id = str(new["formOrderId"])
    common = {
        "order_reference": new.get("orderReference"),
        "form_order_id": form_order_id,
        "status": str(new.get("status") or PLACED),
        "status_rank": STATUS_RANK.get(str(new.get("status") or PLACED), 0),
    }
    details: list[OutcomeDetail] = []
    if new.get("orderReference") and not old.get("orderReference"):
        details.append(
            FormOrderPlaced(
                event_id=event_id("FormOrderPlaced", form_order_id),
                occurred_at=str(new.get("placedAt") or new["updatedAt"]),
                form_id=new.get("formId"),
                notification_channel=new.get("preferredNotificationChannel"),
                login_url=new.get("loginUrl"),
                single_use_code=new.get("singleUseCode"),
                **common,
            )
        )
    if new.get("status") and new.get("status") != old.get("status") and new.get("status") != PLACED:
        details.append(
            FormOrderStatusChanged(
                event_id=event_id("FormOrderStatusChanged", form_order_id, new["status"]),
                occurred_at=str(new["updatedAt"]),
                previous_status=old.get("status"),
                status_error_code=new.get("statusErrorCode"),
                notification_channel=new.get("notificationChannel"),
                status_timestamp_utc=new.get("statusTimestampUtc"),
                **common,
            )
        )
    if new.get("answers") and not old.get("answers"):
        answers = new["answers"]
        details.append(
            FormReturned(
                event_id=event_id("FormReturned", form_order_id, answers["sha256"], answers.get("versionId")),
                occurred_at=str(new["updatedAt"]),
                answers=StoredObjectRef(bucket=bucket, **_pointer(answers)),
                signed_document_expected=signed_document_expected(new),
                is_patient_initiated=bool(new.get("isPatientInitiated")),
                **common,
            )
        )
    details += [
        FormReturned(
            event_id=event_id("FormReturned", form_order_id, entry["answersSha256"], entry.get("answersVersionId")),
            occurred_at=str(entry["receivedAt"]),
            answers=StoredObjectRef(
                bucket=bucket,
                key=new["answers"]["key"],
                version_id=entry.get("answersVersionId"),
                sha256=entry["answersSha256"],
                bytes=int(entry["answersBytes"]),
            ),
            signed_document_expected=signed_document_expected(new),
            is_patient_initiated=bool(new.get("isPatientInitiated")),
            **common,
        )
        for entry in later_returns(old, new)
    ]
    if new.get("signedDocument") and not old.get("signedDocument"):
        document = new["signedDocument"]
        details.append(
            SignedDocumentStored(
                event_id=event_id("SignedDocumentStored", form_order_id, document["sha256"]),
                occurred_at=str(new["updatedAt"]),
                document=StoredObjectRef(bucket=bucket, **_pointer(document)),
                **common,
            )
        )
    return details


def later_returns(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """History entries this change appended for a form return whose content is new to the item: not the first
    return (`answers`) and not noted before. Entries of code older than `answersBytes` are not announced."""
    if not new.get("answers"):
        return []
    old_history = old.get("statusHistory") or []
    known = {new["answers"]["sha256"]} | {entry.get("answersSha256") for entry in old_history}
    found = []
    for entry in (new.get("statusHistory") or [])[len(old_history) :]:  # statusHistory is only appended to
        if entry.get("answersBytes") is not None and entry.get("answersSha256") not in known:
            known.add(entry["answersSha256"])
            found.append(entry)
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


def signed_document_expected(item: Mapping[str, Any]) -> bool:
    """ePROM sends the all-zero GUID as signedFormId for an unsigned form."""
    signed_form_id = item.get("signedFormId")
    try:
        return bool(signed_form_id) and uuid.UUID(str(signed_form_id)).int != 0
    except ValueError:
        return False


def _pointer(attribute: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "key": attribute["key"],
        "version_id": attribute.get("versionId"),
        "sha256": attribute["sha256"],
        "bytes": int(attribute["bytes"]),
    }


class OutcomeEventsNotPut(Exception):
    """EventBridge refused some entries; the whole put is tried again (the same event ids)."""


class OutcomeBus:
    def __init__(self, bus_name: str) -> None:
        self.bus_name = bus_name

    @cached_property
    def client(self) -> Any:  # made when first needed: the placer only puts refusals (cold start, README)
        return aws_client("events")

    def put(self, details: list[OutcomeDetail]) -> None:
        for start in range(0, len(details), PUT_EVENTS_MAX_ENTRIES):
            chunk = details[start : start + PUT_EVENTS_MAX_ENTRIES]
            answer = self.client.put_events(
                Entries=[
                    {
                        "EventBusName": self.bus_name,
                        "Source": SOURCE,
                        "DetailType": type(detail).__name__,
                        "Detail": detail.model_dump_json(by_alias=True),
                    }
                    for detail in chunk
                ]
            )
            if answer.get("FailedEntryCount"):
                codes = sorted({entry.get("ErrorCode", "?") for entry in answer["Entries"] if "ErrorCode" in entry})
                raise OutcomeEventsNotPut(f"{answer['FailedEntryCount']} of {len(chunk)} events refused: {codes}")


class SignedDocumentJob(BaseModel):
    """A message on SignedDocumentQueue: fetch this form order's signed document from ePROM."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    form_order_id: uuid.UUID
    signed_form_id: uuid.UUID
