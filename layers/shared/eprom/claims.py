"""Claims on references: the strongly consistent conditional write that makes a call to ePROM happen once per
reference. Its users: the placer's orderReferences (IdempotencyTable, key "orderReference#<reference>") and the
sender's messageReferences (MessagesTable, whose item per reference is the claim).

Before a request is sent to ePROM, its attempt claims the reference with a conditional PutItem, and only the holder
sends. The claim then tells every later message of that reference what became of it, however many copies arrive at
once and however late: settled (ePROM answered; the user's own state and attributes, e.g. the formOrderId),
`Ambiguous` (ePROM may have carried it out: parked for a person), or `Sending` while the attempt runs. A `Sending`
claim whose invocation has ended (crashed or timed out, perhaps after the request reached ePROM) is as good as
`Ambiguous`. A claim is let go only when its attempt knows that ePROM did nothing, so that the next message tries
afresh.

A person who found nothing in ePROM Admin redrives a parked message. It carries the id of the attempt it was parked
for (message attribute ambiguousAttemptId), and takes the claim over only while that attempt is the one on record:
of any number of redriven copies one takes over, and a copy parked for an older attempt is parked again for the
newer one.

The claim keeps a fingerprint of the content it was taken for, so that a later message of the reference can tell
"the same again" (its outcome is the claim's) from "the reference reused with other content" (refused): an
HMAC-SHA256 keyed with a secret of the stack, as a plain hash of an order or a message could be reversed to its
national id by trying every candidate of a birth date.

Claims expire by the table's TTL attribute at the time their user gives. (TTL deletes an expired item within days,
not at once; a claim read meanwhile still holds, which errs on the safe side:
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html)
"""

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from eprom.aws_clients import condition_failed_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

SENDING, AMBIGUOUS = "Sending", "Ambiguous"
FINGERPRINT_VERSION = "hmac-sha256:"
# The attributes the mechanism itself keeps on a claim; the rest of the item is its user's.
_OWN = frozenset({"attemptId", "state", "fingerprint", "takenAt", "sendingUntil", "ambiguousReason"})

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


@dataclass(frozen=True)
class Claim:
    attempt_id: str
    state: str  # SENDING, AMBIGUOUS, or the state its user settled it in
    fingerprint: str
    taken_at: float  # epoch seconds
    sending_until: float  # the holder's invocation ends by then: SENDING after it means the holder is gone
    ambiguous_reason: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)  # the item's other attributes (its user's)

    def holder_gone(self) -> bool:
        return self.state == SENDING and time.time() > self.sending_until


def fingerprint(content: bytes, key: bytes) -> str:
    """The claim's fingerprint of `content`, keyed with `key` (the stack's fingerprint secret)."""
    return FINGERPRINT_VERSION + hmac.new(key, content, hashlib.sha256).hexdigest()


class Claims:
    """The claims of one table: keyed by `key_attribute` = `key_prefix` + the reference, expiring at
    `expiry_attribute` (epoch seconds)."""

    def __init__(
        self,
        table_name: str,
        client: "DynamoDBClient",
        *,
        key_attribute: str = "id",
        key_prefix: str = "",
        expiry_attribute: str = "expiration",
    ) -> None:
        self._table = table_name
        self._client = client
        self._key_attribute = key_attribute
        self._key_prefix = key_prefix
        self._expiry_attribute = expiry_attribute

    def take(
        self,
        reference: str,
        *,
        attempt_id: str,
        fingerprint: str,
        sending_until: float,
        expires_at: int,
        replacing: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Claim | None:
        """Claim the reference for this attempt: None when it holds the claim now, else the claim as it is.
        `replacing`: the Ambiguous attempt a person's redrive takes over from (the same content only);
        `attributes`: the user's own attributes of a new claim."""
        condition: dict[str, Any] = {
            "ConditionExpression": "attribute_not_exists(#key)",
            "ExpressionAttributeNames": {"#key": self._key_attribute},
        }
        if replacing:
            condition = {
                "ConditionExpression": "attribute_not_exists(#key) OR "
                "(#state = :ambiguous AND #attemptId = :replacing AND #fingerprint = :fingerprint)",
                "ExpressionAttributeNames": {"#key": self._key_attribute, "#state": "state", "#attemptId": "attemptId",
                                             "#fingerprint": "fingerprint"},
                "ExpressionAttributeValues": {":ambiguous": {"S": AMBIGUOUS}, ":replacing": {"S": replacing},
                                              ":fingerprint": {"S": fingerprint}},
            }  # fmt: skip
        item = {name: _serialize(value) for name, value in (attributes or {}).items()} | {
            **self._key(reference),
            "attemptId": {"S": attempt_id},
            "state": {"S": SENDING},
            "fingerprint": {"S": fingerprint},
            "takenAt": {"N": str(time.time())},
            "sendingUntil": {"N": str(sending_until)},
            self._expiry_attribute: {"N": str(expires_at)},
        }
        try:
            # ALL_OLD: the item that failed the condition comes with the error, as it was (no second read):
            # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_PutItem.html
            self._client.put_item(
                TableName=self._table, Item=item, ReturnValuesOnConditionCheckFailure="ALL_OLD", **condition
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            found = condition_failed_item(error)
            assert found is not None  # the condition fails only on an item that is there
            return _claim(found)
        return None

    def settle(self, reference: str, state: str, attributes: Mapping[str, Any], *, expires_at: int) -> None:
        """ePROM answered: `state` and the user's `attributes` are final, whoever holds the claim (made if it is gone).
        A claim that has its expiry keeps it."""
        names = {"#state": "state", "#expiry": self._expiry_attribute, "#sendingUntil": "sendingUntil"}
        values: dict[str, AttributeValueTypeDef] = {":state": {"S": state}, ":expiry": {"N": str(expires_at)}}
        assignments = ["#state = :state", "#expiry = if_not_exists(#expiry, :expiry)"]
        for index, (name, value) in enumerate(attributes.items()):
            names[f"#a{index}"], values[f":a{index}"] = name, _serialize(value)
            assignments.append(f"#a{index} = :a{index}")
        self._client.update_item(
            TableName=self._table,
            Key=self._key(reference),
            UpdateExpression=f"SET {', '.join(assignments)} REMOVE #sendingUntil",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def settle_ambiguous(self, reference: str, attempt_id: str, reason: str) -> bool:
        """The attempt (still Sending) may have been carried out by ePROM: parked. False when the claim moved on."""
        return self._update_sending(
            reference,
            attempt_id,
            UpdateExpression="SET #state = :ambiguous, #reason = :reason",
            names={"#reason": "ambiguousReason"},
            values={":ambiguous": {"S": AMBIGUOUS}, ":reason": {"S": reason}},
        )

    def current(self, reference: str) -> Claim | None:
        """The claim on the reference as it is now (a strongly consistent read); None when there is none."""
        answer = self._client.get_item(TableName=self._table, Key=self._key(reference), ConsistentRead=True)
        return _claim(answer["Item"]) if "Item" in answer else None

    def release(self, reference: str, attempt_id: str) -> None:
        """ePROM did nothing for the attempt: the next message of the reference tries afresh."""
        self._update_sending(reference, attempt_id)

    def _update_sending(self, reference: str, attempt_id: str, **update: Any) -> bool:
        """Update (or, with no update, delete) the claim if this attempt still holds it Sending."""
        names = {"#attemptId": "attemptId", "#state": "state"} | update.pop("names", {})
        values = {":attemptId": {"S": attempt_id}, ":sending": {"S": SENDING}} | update.pop("values", {})
        request = {
            "TableName": self._table,
            "Key": self._key(reference),
            "ConditionExpression": "#attemptId = :attemptId AND #state = :sending",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        try:
            if update:
                self._client.update_item(**request, **update)
            else:
                self._client.delete_item(**request)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def _key(self, reference: str) -> dict[str, Any]:
        return {self._key_attribute: {"S": self._key_prefix + reference}}


def _claim(item: dict[str, Any]) -> Claim:
    return Claim(
        attempt_id=item.get("attemptId", {}).get("S", ""),  # settle may have made the item
        state=item["state"]["S"],
        fingerprint=item["fingerprint"]["S"],
        taken_at=float(item.get("takenAt", {}).get("N", 0)),
        sending_until=float(item.get("sendingUntil", {}).get("N", 0)),
        ambiguous_reason=item.get("ambiguousReason", {}).get("S"),
        attributes={name: _deserialize(value) for name, value in item.items() if name not in _OWN},
    )
