"""FormOrdersTable: placed orders and the status ePROM reports for them (architecture.md, "FormOrdersTable item").

Status only moves up its ranks; every distinct callback is appended to `statusHistory`; the `answers` pointer,
once set, never moves. Every write is a conditional UpdateItem (no read-then-write), so replays, late callbacks
and a callback that beats our own write all end in the same item.

The item's model (eprom.order_item, pydantic) is imported where a method needs it, not with this module: the
signed-document fetcher uses only `signed_documents` and the two writes of a document, and starts without pydantic
(docs/performance.md).
"""

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from eprom.aws_clients import aws_client, condition_failed_item
from eprom.results_store import ResultPointer, SignedDocumentPointer, as_guid

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import ScanInputPaginateTypeDef

    from eprom.models import EpromCallback
    from eprom.order_item import OrderItem
    from eprom.orders import OrderAnswer

ORDER_REFERENCE_INDEX = "orderReference-index"
# statusHistory stays far below DynamoDB's 400 KB item: ePROM sends a handful of callbacks per order, and text
# of ours from the wire is cut (a status name ePROM adds later is short; anything longer is not a status). A form
# return new to the item is noted beyond the cap: its announcement rests on its entry.
MAX_HISTORY_ENTRIES = 50
MAX_WIRE_TEXT = 64

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


_NO_DOCUMENT = str(uuid.UUID(int=0))  # ePROM's signedFormId of a form that was not signed


@dataclass(frozen=True)
class SignedDocuments:
    """What an item says of its signed documents (GUIDs as Python writes them)."""

    first: str | None  # the first form return's signedFormId: its document is `signedDocument`
    carried: set[str]  # every signedFormId of a signed form the order's returns carried
    stored: set[str]  # those whose document is stored
    later_count: int  # documents in `laterSignedDocuments`


class ConcurrentChanges(Exception):
    """The item changed under every conditional write we tried; the callback is not acknowledged (ePROM retries)."""


PLACED = "Placed"  # our own status for an order ePROM accepted, before its first callback


@dataclass(frozen=True)
class IndexedOrder:
    """An item as orderReference-index projects it."""

    form_order_id: str
    order_reference: str
    order_fingerprint: str | None


class OrderStore:
    def __init__(self, table_name: str, client: "DynamoDBClient | None" = None, *, retention_days: int = 180) -> None:
        self._table = table_name
        self.client = client or aws_client("dynamodb")
        self._retention = timedelta(days=retention_days)

    def record_placed(
        self,
        form_order_id: str,
        *,
        order_reference: str,
        order_fingerprint: str,
        form_id: str,
        response: "OrderAnswer",
        order_expiry: datetime,
    ) -> bool:
        """Write the order onto its item (made now, or by a callback that came first: a status it wrote stays).
        Once only: False when the item has its orderReference already (a later delivery of a placed order)."""
        now = _now()
        values = {
            "orderReference": order_reference,
            "orderFingerprint": order_fingerprint,
            "formId": form_id,
            "loginUrl": response.login_url,
            "preferredNotificationChannel": _wire_value(response.notification_channel),
            "singleUseCode": response.single_use_code,
            "placedAt": now,
        }
        present = {name: value for name, value in values.items() if value is not None}
        assignments = [f"#{name} = :{name}" for name in present]
        assignments += [
            "#status = if_not_exists(#status, :placed)",
            "#updatedAt = if_not_exists(#updatedAt, :now)",
            "#createdAt = if_not_exists(#createdAt, :now)",
            # the order's life ends at its expiry at the latest (a final status callback may set an earlier time)
            "#expiresAt = if_not_exists(#expiresAt, :expiresAt)",
        ]
        names = {f"#{name}": name for name in present} | {
            "#status": "status",
            "#updatedAt": "updatedAt",
            "#createdAt": "createdAt",
            "#expiresAt": "expiresAt",
        }
        attribute_values = {f":{name}": value for name, value in present.items()} | {
            ":placed": PLACED,
            ":now": now,
            ":expiresAt": int((order_expiry + self._retention).timestamp()),
        }
        try:
            self.client.update_item(
                TableName=self._table,
                Key={"formOrderId": {"S": form_order_id}},
                UpdateExpression="SET " + ", ".join(assignments),
                ConditionExpression="attribute_not_exists(#orderReference)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={key: _serialize(value) for key, value in attribute_values.items()},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def apply_callback(self, callback: "EpromCallback", *, answers: ResultPointer | None = None) -> bool:
        """Store what the callback says (`answers`: where its form return was stored). False when it changed
        nothing: a replay, or history full and status unable to move.

        The first write assumes the common case (status moves, a new history entry). When its condition fails,
        the item as it was (returned by DynamoDB with the failure) says which write still applies, and that
        write is conditional too, so a concurrent change is never overwritten.
        """
        change = _CallbackChange(callback, answers, now=datetime.now(UTC), retention=self._retention)
        move_status, append, history_size = change.rank is not None, True, None
        for _ in range(3):
            try:
                self.client.update_item(
                    **change.request(self._table, move_status=move_status, append=append, history_size=history_size),
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return True
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                found = condition_failed_item(error)
                old = parse_item(found or {"formOrderId": {"S": str(callback.form_order_id)}})
            move_status, append = change.can_move_status(old), change.can_append(old)
            # beyond the cap (a return new to the item): only onto the history as it was read
            history_size = len(old.status_history) if len(old.status_history) >= MAX_HISTORY_ENTRIES else None
            if not (move_status or append or (answers is not None and old.answers is None)):
                return False
        raise ConcurrentChanges(f"item {callback.form_order_id} changed under three conditional writes")

    def record_later_signed_document(self, form_order_id: str, document: SignedDocumentPointer) -> bool:
        """Add the document of a later return's other signedFormId to `laterSignedDocuments` (once). False when the
        item is gone (its retention ended)."""
        for _ in range(3):
            known = self.signed_documents(form_order_id)
            if known is None:
                return False
            if as_guid(document.signed_form_id) in known.stored:
                return True  # recorded by another delivery of the job
            values = {":none": [], ":document": [document.as_attribute()], ":now": _now(), ":known": known.later_count}
            try:
                self.client.update_item(
                    TableName=self._table,
                    Key={"formOrderId": {"S": form_order_id}},
                    UpdateExpression="SET #documents = list_append(if_not_exists(#documents, :none), :document), "
                    "#updatedAt = :now",
                    # onto the list as it was read: a document added meanwhile is seen on the next read
                    ConditionExpression="attribute_exists(#formOrderId) AND "
                    "(attribute_not_exists(#documents) OR size(#documents) = :known)",
                    ExpressionAttributeNames={
                        "#documents": "laterSignedDocuments",
                        "#updatedAt": "updatedAt",
                        "#formOrderId": "formOrderId",
                    },
                    ExpressionAttributeValues={key: _serialize(value) for key, value in values.items()},
                )
                return True
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        raise ConcurrentChanges(f"item {form_order_id} changed under three conditional writes")

    def record_signed_document(self, form_order_id: str, document: ResultPointer) -> bool:
        """Point the item at its signed document (once). False when the item is gone (its retention ended)."""
        try:
            self.client.update_item(
                TableName=self._table,
                Key={"formOrderId": {"S": form_order_id}},
                UpdateExpression="SET #signedDocument = if_not_exists(#signedDocument, :document), #updatedAt = :now",
                ConditionExpression="attribute_exists(#formOrderId)",
                ExpressionAttributeNames={
                    "#signedDocument": "signedDocument",
                    "#updatedAt": "updatedAt",
                    "#formOrderId": "formOrderId",
                },
                ExpressionAttributeValues={
                    ":document": _serialize(document.as_attribute()),
                    ":now": _serialize(_now()),
                },
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def adopt_orphan(
        self, form_order_id: str, *, order_reference: str, order_fingerprint: str, form_id: str | None, placed_at: str
    ) -> bool:
        """Link an item that exists only through callbacks to the order it is (a person found it in ePROM Admin
        for an Ambiguous attempt): its orderReference and fingerprint, as the placer's write would have set them. The
        stream then announces FormOrderPlaced. False when the item is gone or has an orderReference already."""
        values = {"orderReference": order_reference, "orderFingerprint": order_fingerprint, "placedAt": placed_at,
                  "updatedAt": _now()} | ({"formId": form_id} if form_id else {})  # fmt: skip
        try:
            self.client.update_item(
                TableName=self._table,
                Key={"formOrderId": {"S": form_order_id}},
                UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in values),
                ConditionExpression="attribute_exists(#formOrderId) AND attribute_not_exists(#orderReference)",
                ExpressionAttributeNames={f"#{name}": name for name in [*values, "formOrderId"]},
                ExpressionAttributeValues={f":{name}": _serialize(value) for name, value in values.items()},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def signed_documents(self, form_order_id: str) -> "SignedDocuments | None":
        """What the item says of its signed documents (None when it is gone): a strongly consistent read of those
        attributes alone, parsed without the item's model (the fetcher imports no pydantic)."""
        answer = self.client.get_item(
            TableName=self._table,
            Key={"formOrderId": {"S": form_order_id}},
            ConsistentRead=True,
            ProjectionExpression="#id, #signedFormId, #signedDocument, #later, #history",
            ExpressionAttributeNames={
                "#id": "formOrderId",
                "#signedFormId": "signedFormId",
                "#signedDocument": "signedDocument",
                "#later": "laterSignedDocuments",
                "#history": "statusHistory",
            },
        )
        if "Item" not in answer:
            return None
        item = {name: _deserialize(value) for name, value in answer["Item"].items()}
        first = as_guid(item.get("signedFormId"))
        later = item.get("laterSignedDocuments") or []
        carried = [first, *(as_guid(entry.get("signedFormId")) for entry in item.get("statusHistory") or [])]
        stored = [as_guid(document.get("signedFormId")) for document in later]
        stored += [first] if "signedDocument" in item else []
        return SignedDocuments(first=first, carried={guid for guid in carried if guid and guid != _NO_DOCUMENT},
                               stored={guid for guid in stored if guid}, later_count=len(later))  # fmt: skip

    def find_by_order_reference(self, order_reference: str) -> list[IndexedOrder]:
        """The items placed for this orderReference, as the index projects them (formOrderId, orderReference and
        orderFingerprint only; read without the item model: the placer asks for every new reference). The index is
        eventually consistent: a write of the last second may be missing; the placer's claims cover that window."""
        answer = self.client.query(
            TableName=self._table,
            IndexName=ORDER_REFERENCE_INDEX,
            KeyConditionExpression="orderReference = :ref",
            ExpressionAttributeValues={":ref": {"S": order_reference}},
        )
        return [
            IndexedOrder(
                item["formOrderId"]["S"], item["orderReference"]["S"], item.get("orderFingerprint", {}).get("S")
            )
            for item in answer["Items"]
        ]

    def item(self, form_order_id: str) -> "OrderItem | None":
        answer = self.client.get_item(
            TableName=self._table, Key={"formOrderId": {"S": form_order_id}}, ConsistentRead=True
        )
        return parse_item(answer["Item"]) if "Item" in answer else None

    def callback_only_items(self) -> "Iterator[OrderItem]":
        """Items that exist only through ePROM's callbacks (no orderReference): patient-initiated forms, or an
        order of ours whose answer was lost (an Ambiguous attempt). `createdAt` is when the first callback came,
        to reconcile with the time in a parked message's reason. A Scan: an operator's tool, not a hot path."""
        return self._scan("attribute_not_exists(orderReference)")

    def all_items(self) -> "Iterator[OrderItem]":
        """Every item (a Scan: for the local stack's report and the build check, never in a function)."""
        return self._scan()

    def _scan(self, filter_expression: str | None = None) -> "Iterator[OrderItem]":
        scan: ScanInputPaginateTypeDef = {"TableName": self._table, "ConsistentRead": True}
        if filter_expression:
            scan["FilterExpression"] = filter_expression
        for page in self.client.get_paginator("scan").paginate(**scan):
            yield from (parse_item(item) for item in page["Items"])


class _CallbackChange:
    """One callback as the UpdateItem requests that store it."""

    def __init__(
        self, callback: "EpromCallback", answers: ResultPointer | None, *, now: datetime, retention: timedelta
    ) -> None:
        from eprom.order_item import FINAL_STATUSES, STATUS_RANK

        self.ranks = STATUS_RANK  # imported here: see the module's docstring
        self.callback, self.answers, self.now = callback, answers, now.isoformat()
        self.status = _wire_text(callback.form_order_status)
        self.rank = self.ranks.get(self.status) if self.status else None
        status_time = callback.status_time_utc
        self.entry: dict[str, str | int | list[str] | None] = {
            "status": self.status,
            "statusErrorCode": _wire_text(callback.form_order_status_error_code),
            "notificationChannel": _wire_text(callback.notification_channel),
            "statusTimestampUtc": status_time.isoformat() if status_time else None,
        }
        if answers is not None:  # a form return: which one (never the answers themselves); the publisher announces
            # a version first noted here that is not the item's `answers` (a later, different return)
            self.entry |= {"answersSha256": answers.sha256, "answersVersionId": answers.version_id,
                           "answersBytes": answers.bytes}  # fmt: skip
            if callback.signed_form_id is not None:  # its document may differ from the first return's
                self.entry["signedFormId"] = _short(callback.signed_form_id)
        if callback.unreadable_fields:  # names of our documented fields, kept as received in the answers object
            self.entry["unreadableFields"] = list(callback.unreadable_fields)
        self.entry_key = hashlib.sha256(json.dumps(self.entry, sort_keys=True).encode()).hexdigest()[:32]
        self.expires_at = int((now + retention).timestamp()) if self.status in FINAL_STATUSES else None

    def can_move_status(self, old: "OrderItem") -> bool:
        return self.rank is not None and self.rank > self.ranks.get(old.status or "", -1)

    def can_append(self, old: "OrderItem") -> bool:
        """A new entry, while the history has room; a form return new to the item always (its announcement rests on
        its entry, and returns are few: each one's content is new)."""
        if self.entry_key in old.history_keys:
            return False
        return len(old.status_history) < MAX_HISTORY_ENTRIES or self._is_new_return(old)

    def _is_new_return(self, old: "OrderItem") -> bool:
        known = {old.answers.sha256 if old.answers else None} | {entry.answers_sha256 for entry in old.status_history}
        return self.answers is not None and self.answers.sha256 not in known

    def request(
        self, table: str, *, move_status: bool, append: bool, history_size: int | None = None
    ) -> dict[str, Any]:
        """`history_size`: append beyond the cap, onto a history of exactly this many entries (as it was read)."""
        sets = {"updatedAt": ":now", "createdAt": "if_not_exists(#createdAt, :now)"}
        values: dict[str, Any] = {":now": self.now}
        conditions = []
        adds = []
        if move_status:
            lower = [name for name, rank in self.ranks.items() if rank < (self.rank or 0)]
            values |= {f":lower{i}": name for i, name in enumerate(lower)}
            in_lower = ", ".join(f":lower{i}" for i in range(len(lower)))
            conditions.append(f"(attribute_not_exists(#status) OR #status IN ({in_lower}))")
            for name in ("status", "statusErrorCode", "notificationChannel", "statusTimestampUtc"):
                if self.entry[name] is not None:
                    sets[name] = f":{name}"
                    values[f":{name}"] = self.entry[name]
            if self.expires_at:
                sets["expiresAt"] = ":expiresAt"
                values[":expiresAt"] = self.expires_at
        if append:
            room = (
                "size(#statusHistory) < :maxHistory" if history_size is None else "size(#statusHistory) = :maxHistory"
            )
            conditions.append(
                "(attribute_not_exists(#historyKeys) OR NOT contains(#historyKeys, :entryKey))"
                f" AND (attribute_not_exists(#statusHistory) OR {room})"
            )
            sets["statusHistory"] = "list_append(if_not_exists(#statusHistory, :noHistory), :entries)"
            entry = {name: value for name, value in self.entry.items() if value is not None} | {"receivedAt": self.now}
            values |= {":entryKey": self.entry_key, ":maxHistory": history_size or MAX_HISTORY_ENTRIES,
                       ":noHistory": [], ":entries": [entry], ":entryKeys": {self.entry_key}}  # fmt: skip
            adds.append("#historyKeys :entryKeys")
        if self.answers is not None:
            if not (move_status or append):
                conditions.append("attribute_not_exists(#answers)")
            sets["answers"] = "if_not_exists(#answers, :answers)"
            values[":answers"] = self.answers.as_attribute()
            for name, value in (
                ("signedFormId", self.callback.signed_form_id),
                ("isPatientInitiated", self.callback.is_patient_initiated),
            ):
                if value is not None:
                    sets[name] = f"if_not_exists(#{name}, :{name})"
                    values[f":{name}"] = value if isinstance(value, bool) else _short(str(value))
        names = {f"#{name}": name for name in sets} | {"#createdAt": "createdAt"}
        names |= {"#status": "status"} if move_status else {}
        names |= {"#historyKeys": "historyKeys", "#statusHistory": "statusHistory"} if append else {}
        names |= {"#answers": "answers"} if self.answers is not None else {}
        key = {"formOrderId": {"S": str(self.callback.form_order_id)}}
        sets = {f"#{name}": value for name, value in sets.items()}
        return update_request(table, key, sets=sets, adds=adds, names=names, values=values, conditions=conditions)


def update_request(
    table: str,
    key: dict[str, Any],
    *,
    sets: dict[str, str],
    adds: list[str],
    names: dict[str, str],
    values: dict[str, Any],
    conditions: list[str],
) -> dict[str, Any]:
    """One UpdateItem request of SET (and ADD) clauses under all the conditions (none: unconditional)."""
    expression = "SET " + ", ".join(f"{name} = {value}" for name, value in sets.items())
    if adds:
        expression += " ADD " + ", ".join(adds)
    request: dict[str, Any] = {
        "TableName": table,
        "Key": key,
        "UpdateExpression": expression,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {name: _serialize(value) for name, value in values.items()},
    }
    if conditions:
        request["ConditionExpression"] = " AND ".join(conditions)
    return request


def parse_item(attribute_values: dict[str, Any]) -> "OrderItem":
    """An item as DynamoDB's API returns it (a typed value per attribute: {"S": ...})."""
    from eprom.order_item import OrderItem

    return OrderItem.model_validate({name: _deserialize(value) for name, value in attribute_values.items()})


def _wire_value(value: object) -> str | None:
    """Enums are stored by name; a value ePROM added later is stored as the text it came as."""
    if value is None:
        return None
    return value.name if isinstance(value, IntEnum) else str(value)


def _wire_text(value: object) -> str | None:
    """A wire value as an item holds it: short, and valid UTF-8 (JSON may carry lone surrogates; DynamoDB not)."""
    text = _wire_value(value)
    return None if text is None else _short(text)


def _short(text: str) -> str:
    return text[:MAX_WIRE_TEXT].encode("utf-8", errors="replace").decode()


def _now() -> str:
    return datetime.now(UTC).isoformat()
