"""The FormOrdersTable item (architecture.md, "FormOrdersTable item"): what OrderStore writes, what its reads and
the table's stream images hold, parsed at those edges. Attribute names are the models' aliases (camelCase); only
this module and the store name them.

An item is made by the placer's write or by ePROM's first callback, whichever comes first, so only `formOrderId`
is always there: an item ePROM called back about before (or without) our write has no `orderReference`, and the
orderReference index projects only the key, `orderReference` and `orderFingerprint`.
"""

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from eprom.codes import FormOrderStatus
from eprom.order_store import PLACED as PLACED  # our own status for an order ePROM accepted, before its first callback
from eprom.results_store import ResultPointer as ResultPointer  # an attribute's type: importable from here too
from eprom.results_store import SignedDocumentPointer, as_guid

STATUS_RANK = {
    PLACED: 0,
    FormOrderStatus.Ordered.name: 1,
    FormOrderStatus.Error.name: 2,
    FormOrderStatus.DigipostDelivered.name: 2,
    FormOrderStatus.PhysicalMailReturned.name: 2,
    FormOrderStatus.Expired.name: 3,
    FormOrderStatus.Completed.name: 4,  # a paper answer can still come after Expired
}
FINAL_STATUSES = frozenset({FormOrderStatus.Completed.name, FormOrderStatus.Expired.name})


class _ItemModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        frozen=True,
        defer_build=True,  # built on first use, as models.py's: only by the functions that read an item
    )


class HistoryEntry(_ItemModel):
    """One distinct callback in `statusHistory`, as the wire had it (text cut short). A form return notes which
    answers it brought, never the answers themselves (entries written before `answersBytes` existed lack it)."""

    status: str | None = None
    status_error_code: str | None = None
    notification_channel: str | None = None
    status_timestamp_utc: str | None = None
    answers_sha256: str | None = None
    answers_version_id: str | None = None
    answers_bytes: int | None = None
    signed_form_id: str | None = None  # of a form return (entries written before it existed lack it)
    unreadable_fields: list[str] | None = None  # names of our documented fields, kept as received in the answers
    received_at: str


class OrderItem(_ItemModel):
    """Times are ISO 8601 text as written (UTC); `expiresAt` is the table's TTL (epoch seconds)."""

    form_order_id: str
    # the placer's write (OrderStore.record_placed)
    order_reference: str | None = None
    order_fingerprint: str | None = None
    form_id: str | None = None
    login_url: str | None = None
    preferred_notification_channel: str | None = None
    single_use_code: str | None = None
    placed_at: str | None = None
    # the status by rank (Placed from the placer, the rest from ePROM's callbacks)
    status: str | None = None
    status_error_code: str | None = None
    notification_channel: str | None = None
    status_timestamp_utc: str | None = None
    status_history: list[HistoryEntry] = []
    history_keys: set[str] = set()  # a digest of each entry, so a replayed callback is not appended again
    # the first form return (a later, different one is only noted in statusHistory)
    answers: ResultPointer | None = None
    signed_form_id: str | None = None
    is_patient_initiated: bool | None = None
    signed_document: ResultPointer | None = None  # the document of `signedFormId`
    later_signed_documents: list[SignedDocumentPointer] = []  # those of later returns' other signedFormIds
    created_at: str | None = None
    updated_at: str | None = None
    expires_at: int | None = None

    def as_attributes(self) -> dict[str, Any]:
        """The item as DynamoDB holds it: attribute names, and only the attributes it has."""
        return self.model_dump(by_alias=True, exclude_unset=True, exclude_none=True)

    def signed_form_ids(self) -> set[str]:
        """Every non-zero signedFormId the item's form returns carried (GUIDs as Python writes them)."""
        carried = [self.signed_form_id, *(entry.signed_form_id for entry in self.status_history)]
        return {guid for guid in map(as_guid, carried) if guid is not None and guid != str(uuid.UUID(int=0))}

    def signed_document_of(self, signed_form_id: str) -> ResultPointer | None:
        """The stored document of this signedFormId, if any."""
        if as_guid(signed_form_id) == as_guid(self.signed_form_id):
            return self.signed_document
        return next((document for document in self.later_signed_documents
                     if as_guid(document.signed_form_id) == as_guid(signed_form_id)), None)  # fmt: skip

    def without_personal_data(self) -> "OrderItem":
        """Without what lets someone reach the patient's form (the single-use code, the login URL) and the order's
        fingerprint (of its content, the national id included)."""
        return self.model_copy(update={"single_use_code": None, "login_url": None, "order_fingerprint": None})
