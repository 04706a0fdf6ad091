"""MessagesTable (architecture.md, "Messages to citizens"): a message's item, which is also the claim on its
messageReference (eprom.claims), and the status ePROM's callbacks report for a letter.

A callback names the letter by ePROM's messageToCitizenId, and the item is keyed by the messageReference, so the
callback must find the item. The messageToCitizenId-index finds it for people, but it cannot decide a callback: a
GSI is eventually consistent (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Reads),
and a callback that comes within its lag after the sender's write, or before it (ePROM calls back when it likes),
would find nothing and leave the item at Accepted for good. So each letter also has a link item keyed
"messageToCitizenId#<id>", read and written strongly consistent by key:

- the sender, once ePROM answered, writes the item, then the link's `linkedReference` (returning the link as it was:
  callbacks noted there before are applied to the item);
- a callback is noted on the link (returning it as it is: with `linkedReference`, it is applied to the item too).

Writes to one item are serialised, so of the two at least one sees the other's: the item ends with every callback,
whichever came first. A callback for an id never linked stays on its link ("unknown ids are kept"). Each write is a
conditional UpdateItem: the status only moves up (Accepted < Delivered, NotDelivered), a callback already noted
(ePROM re-sends until acknowledged) changes nothing, and nothing is read before it is written.

The writes decide on the few attributes they need as DynamoDB returns them; the item's model (eprom.message_item,
pydantic) and the callback's (eprom.messages) are imported where a method reads an item for people or takes a
callback, not with this module: the sender starts without pydantic (docs/performance.md).
"""

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from eprom.aws_clients import aws_client, condition_failed_item
from eprom.claims import Claim, Claims
from eprom.order_store import _wire_text, update_request

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from eprom.message_item import MessageItem
    from eprom.messages import MessageToCitizenCallback

ACCEPTED, DELIVERED, NOT_DELIVERED = "Accepted", "Delivered", "NotDelivered"
# Accepted, then the letter's fate; a letter ePROM could send on no channel is NotDelivered at once.
STATUS_RANK = {ACCEPTED: 0, DELIVERED: 1, NOT_DELIVERED: 1}
SENT = "Sent"  # the claim's state once ePROM has answered
LINK_PREFIX = "messageToCitizenId#"  # never a messageReference: "#" is not among its characters
MESSAGE_TO_CITIZEN_ID_INDEX = "messageToCitizenId-index"
MAX_HISTORY_ENTRIES = 50
_STATUS_OF = {"Sent": DELIVERED, "Error": NOT_DELIVERED}  # by the callback's sentStatus (messages.SentStatus)

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


class MessageStore:
    def __init__(self, table_name: str, client: "DynamoDBClient | None" = None, *, retention_days: int = 180) -> None:
        self._table = table_name
        self.client = client or aws_client("dynamodb")
        self._retention = timedelta(days=retention_days)
        self.claims = Claims(table_name, self.client, key_attribute="messageReference", expiry_attribute="expiresAt")

    def expires_at(self) -> int:
        """When an item written now is deleted: ResultRetentionDays on."""
        return int((datetime.now(UTC) + self._retention).timestamp())

    def record_sent(
        self, reference: str, *, status: str, notification_channel: str | None, message_to_citizen_id: str | None
    ) -> None:
        """ePROM took the message: its answer is final on the item (the claim, settled `Sent`); a letter is linked."""
        now = datetime.now(UTC).isoformat()
        attributes = {"status": status, "sentAt": now, "updatedAt": now}
        if notification_channel is not None:
            attributes["notificationChannel"] = notification_channel
        if message_to_citizen_id is not None:
            attributes["messageToCitizenId"] = message_to_citizen_id
        self.claims.settle(reference, SENT, attributes, expires_at=self.expires_at())
        if message_to_citizen_id is not None:
            self.link(message_to_citizen_id, reference)

    def link(self, message_to_citizen_id: str, message_reference: str) -> bool:
        """The letter `message_to_citizen_id` is `message_reference`'s: callbacks noted for it before are applied to
        the message's item. True when one of them changed it."""
        answer = self.client.update_item(
            TableName=self._table,
            Key=_key(LINK_PREFIX + message_to_citizen_id),
            UpdateExpression="SET #linked = :reference, #expiresAt = if_not_exists(#expiresAt, :expiresAt)",
            ExpressionAttributeNames={"#linked": "linkedReference", "#expiresAt": "expiresAt"},
            ExpressionAttributeValues={
                ":reference": _serialize(message_reference),
                ":expiresAt": _serialize(self.expires_at()),
            },
            ReturnValues="ALL_OLD",
        )
        noted = [_Change(entry) for entry in _attributes(answer.get("Attributes", {})).get("statusHistory", [])]
        return any([self._note(message_reference, change, create=False)[1] for change in noted])

    def apply_callback(self, callback: "MessageToCitizenCallback") -> bool:
        """Note ePROM's callback on the letter's link and, once linked, on its message's item. False when it changed
        nothing (a replay)."""
        change = _Change(
            {"sentStatus": _wire_text(callback.sent_status),
             "notificationChannel": _wire_text(callback.notification_channel),
             "receivedAt": datetime.now(UTC).isoformat()}
        )  # fmt: skip
        linked, noted = self._note(LINK_PREFIX + str(callback.message_to_citizen_id), change, create=True)
        if linked is None:
            return noted
        return self._note(linked, change, create=False)[1] or noted

    def item(self, message_reference: str) -> "MessageItem | None":
        answer = self.client.get_item(TableName=self._table, Key=_key(message_reference), ConsistentRead=True)
        return parse_item(answer["Item"]) if "Item" in answer else None

    def find_by_message_to_citizen_id(self, message_to_citizen_id: str) -> list[str]:
        """The messageReferences of a letter, by the index (eventually consistent: for people, not for decisions)."""
        answer = self.client.query(
            TableName=self._table,
            IndexName=MESSAGE_TO_CITIZEN_ID_INDEX,
            KeyConditionExpression="messageToCitizenId = :id",
            ExpressionAttributeValues={":id": {"S": message_to_citizen_id}},
        )
        return [parse_item(item).message_reference for item in answer["Items"]]

    def all_items(self) -> "Iterator[MessageItem]":
        """Every item, links too (a Scan: for the local stack's report, never in a function)."""
        for page in self.client.get_paginator("scan").paginate(TableName=self._table, ConsistentRead=True):
            yield from (parse_item(item) for item in page["Items"])

    def _note(self, key: str, change: "_Change", *, create: bool) -> tuple[str | None, bool]:
        """Write the change on item `key` (made if `create`): (the item's linkedReference, whether it changed)."""
        move_status, append = change.status is not None, True
        for _ in range(3):
            try:
                answer = self.client.update_item(
                    **change.request(self._table, key, move_status=move_status, append=append, create=create,
                                     expires_at=self.expires_at()),
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )  # fmt: skip
                return _attributes(answer["Attributes"]).get("linkedReference"), True
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                found = condition_failed_item(error)
            if found is None and not create:
                return None, False  # the message's item is gone (its retention ended)
            before = _attributes(found or {})
            move_status, append = change.can_move_status(before), change.can_append(before)
            if not (move_status or append):
                return before.get("linkedReference"), False
        raise RuntimeError(f"item {key} changed under three conditional writes")


class _Change:
    """One callback as the UpdateItem that notes it."""

    def __init__(self, entry: dict[str, Any]) -> None:
        self.entry = {name: value for name, value in entry.items() if value is not None}
        self.status = _STATUS_OF.get(str(entry.get("sentStatus")))
        fact = {name: entry.get(name) for name in ("sentStatus", "notificationChannel")}
        self.key = hashlib.sha256(json.dumps(fact, sort_keys=True).encode()).hexdigest()[:32]

    def can_move_status(self, before: dict[str, Any]) -> bool:
        return self.status is not None and STATUS_RANK[self.status] > STATUS_RANK.get(before.get("status") or "", -1)

    def can_append(self, before: dict[str, Any]) -> bool:
        return (self.key not in before.get("historyKeys", set())
                and len(before.get("statusHistory", [])) < MAX_HISTORY_ENTRIES)  # fmt: skip

    def request(
        self, table: str, key: str, *, move_status: bool, append: bool, create: bool, expires_at: int
    ) -> dict[str, Any]:
        sets = {"#updatedAt": ":now"}
        values: dict[str, Any] = {":now": self.entry["receivedAt"]}
        names = {"#updatedAt": "updatedAt"}
        conditions = [] if create else ["attribute_exists(#key)"]
        names |= {} if create else {"#key": "messageReference"}
        if create:
            sets["#expiresAt"] = "if_not_exists(#expiresAt, :expiresAt)"
            names["#expiresAt"], values[":expiresAt"] = "expiresAt", expires_at
        adds = []
        if move_status and self.status is not None:
            lower = {f":lower{index}": status for index, (status, rank) in enumerate(STATUS_RANK.items())
                     if rank < STATUS_RANK[self.status]}  # fmt: skip
            values |= lower
            conditions.append(f"(attribute_not_exists(#status) OR #status IN ({', '.join(lower)}))")
            sets["#status"], names["#status"], values[":status"] = ":status", "status", self.status
            if "notificationChannel" in self.entry:
                sets["#channel"], names["#channel"] = ":channel", "notificationChannel"
                values[":channel"] = self.entry["notificationChannel"]
        if append:
            conditions.append("(attribute_not_exists(#keys) OR NOT contains(#keys, :entryKey))"
                              " AND (attribute_not_exists(#history) OR size(#history) < :maxHistory)")  # fmt: skip
            sets["#history"] = "list_append(if_not_exists(#history, :noHistory), :entries)"
            names |= {"#history": "statusHistory", "#keys": "historyKeys"}
            values |= {":entryKey": self.key, ":maxHistory": MAX_HISTORY_ENTRIES, ":noHistory": [],
                       ":entries": [self.entry], ":entryKeys": {self.key}}  # fmt: skip
            adds.append("#keys :entryKeys")
        return update_request(table, _key(key), sets=sets, adds=adds, names=names, values=values, conditions=conditions)


def parse_item(attribute_values: dict[str, Any]) -> "MessageItem":
    """An item as DynamoDB's API returns it (a typed value per attribute: {"S": ...})."""
    from eprom.message_item import MessageItem  # see the module's docstring

    return MessageItem.model_validate(_attributes(attribute_values))


def _attributes(attribute_values: dict[str, Any]) -> dict[str, Any]:
    """An item as DynamoDB's API returns it, as plain values (the writes' decisions: no model)."""
    return {name: _deserialize(value) for name, value in attribute_values.items()}


def _key(message_reference: str) -> dict[str, Any]:
    return {"messageReference": {"S": message_reference}}


def sent_letter(claim: Claim) -> str | None:
    """The messageToCitizenId of a message's claim settled Sent, for a letter ePROM gave one."""
    value = claim.attributes.get("messageToCitizenId")
    return str(value) if claim.state == SENT and value else None
