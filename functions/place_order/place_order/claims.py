"""Claims on orderReferences, in IdempotencyTable: the strongly consistent write that makes placement exactly once.

Before an order is sent to ePROM, its attempt claims the orderReference with a conditional PutItem, and only the
holder sends. The claim then tells every later message of that reference what became of it, however many copies
arrive at once and however late: `Placed` (with the formOrderId), `Ambiguous` (ePROM may have created it: parked
for a person), or `Sending` while the attempt runs. A `Sending` claim whose invocation has ended (crashed or timed
out, perhaps after the request reached ePROM) is as good as `Ambiguous`. A claim is let go only when its attempt
knows that nothing was ordered, so that the next message tries afresh.

A person who found no such order in ePROM Admin redrives a parked message. It carries the id of the attempt it
was parked for, and takes the claim over only while that attempt is the one on record: of any number of redriven
copies one takes over, and a copy parked for an older attempt is parked again for the newer one.

A placed claim keeps ePROM's answer (the formOrderId, loginUrl, channel and singleUseCode; never the national id
ePROM echoes), written before the order's item: the claim is the one record of what ePROM did, so an invocation
that stopped after it still has its item written by the next delivery of the reference.

Claims expire (TTL attribute `expiration`) at the order's expiryDate + ResultRetentionDays, when its item does, and
never sooner than IDEMPOTENCY_EXPIRY_SECONDS after they were taken. (TTL deletes an expired item within days, not
at once; a claim read meanwhile still holds, which errs on the safe side:
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html)

Upgrading from a version that kept Powertools' idempotency records beside the claims: those records (ids
"<function name>.place_order.app.place_once#<md5>") are no longer written and expire by their TTL. The one state
only such a record settled, an invocation that stopped after ePROM's answer and before the order's item, is read
from it once (`legacy_answer`), so that order still ends recorded instead of parked.
"""

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from eprom.models import EpromOrderResponse

SENDING, PLACED, AMBIGUOUS = "Sending", "Placed", "Ambiguous"
_KEY_PREFIX = "orderReference#"


@dataclass(frozen=True)
class Claim:
    attempt_id: str
    state: str  # SENDING, PLACED or AMBIGUOUS
    fingerprint: str
    taken_at: float  # epoch seconds
    sending_until: float  # the holder's invocation ends by then: SENDING after it means the holder is gone
    form_order_id: str | None = None
    ambiguous_reason: str | None = None
    answer: EpromOrderResponse | None = None  # what ePROM answered, on a Placed claim written since it is kept

    def holder_gone(self) -> bool:
        return self.state == SENDING and time.time() > self.sending_until


class OrderClaims:
    def __init__(self, table_name: str, client: Any, *, retention: timedelta, shortest_life: timedelta) -> None:
        self._table = table_name
        self._client = client
        self._retention = retention
        self._shortest_life = shortest_life

    def take(
        self,
        order_reference: str,
        *,
        attempt_id: str,
        fingerprint: str,
        sending_until: float,
        order_expiry: datetime,
        replacing: str | None = None,
    ) -> Claim | None:
        """Claim the reference for this attempt: None when it holds the claim now, else the claim as it is.
        `replacing`: the Ambiguous attempt a person's redrive takes over from (the same order only)."""
        condition: dict[str, Any] = {
            "ConditionExpression": "attribute_not_exists(#id)",
            "ExpressionAttributeNames": {"#id": "id"},
        }
        if replacing:
            condition = {
                "ConditionExpression": "attribute_not_exists(#id) OR "
                "(#state = :ambiguous AND #attemptId = :replacing AND #fingerprint = :fingerprint)",
                "ExpressionAttributeNames": {"#id": "id", "#state": "state", "#attemptId": "attemptId",
                                             "#fingerprint": "fingerprint"},
                "ExpressionAttributeValues": {":ambiguous": {"S": AMBIGUOUS}, ":replacing": {"S": replacing},
                                              ":fingerprint": {"S": fingerprint}},
            }  # fmt: skip
        item = {
            "id": {"S": _KEY_PREFIX + order_reference},
            "attemptId": {"S": attempt_id},
            "state": {"S": SENDING},
            "fingerprint": {"S": fingerprint},
            "takenAt": {"N": str(time.time())},
            "sendingUntil": {"N": str(sending_until)},
            "expiration": {"N": str(self._expiration(order_expiry))},
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
            return _claim(error.response["Item"])
        return None

    def current(self, order_reference: str) -> Claim | None:
        """The claim on the reference as it is now (a strongly consistent read); None when there is none."""
        answer = self._client.get_item(
            TableName=self._table, Key={"id": {"S": _KEY_PREFIX + order_reference}}, ConsistentRead=True
        )
        return _claim(answer["Item"]) if "Item" in answer else None

    def settle_placed(
        self,
        order_reference: str,
        *,
        fingerprint: str,
        form_order_id: str,
        order_expiry: datetime,
        answer: EpromOrderResponse | None = None,
    ) -> None:
        """ePROM created `form_order_id` for this reference (`answer`: what it answered): that is final, whoever
        holds the claim."""
        values = {":placed": {"S": PLACED}, ":formOrderId": {"S": form_order_id}, ":fingerprint": {"S": fingerprint},
                  ":expiration": {"N": str(self._expiration(order_expiry))}}  # fmt: skip
        expression = ("SET #state = :placed, #formOrderId = :formOrderId, #fingerprint = :fingerprint, "
                      "#expiration = if_not_exists(#expiration, :expiration)")  # fmt: skip
        if answer is not None:
            expression += ", #answer = :answer"
            values[":answer"] = {"S": answer.model_dump_json(by_alias=True)}
        self._client.update_item(
            TableName=self._table,
            Key={"id": {"S": _KEY_PREFIX + order_reference}},
            UpdateExpression=expression + " REMOVE #sendingUntil",
            ExpressionAttributeNames={"#state": "state", "#formOrderId": "formOrderId", "#fingerprint": "fingerprint",
                                      "#expiration": "expiration", "#sendingUntil": "sendingUntil"}
            | ({"#answer": "answer"} if answer is not None else {}),
            ExpressionAttributeValues=values,
        )  # fmt: skip

    def settle_ambiguous(self, order_reference: str, attempt_id: str, reason: str) -> bool:
        """The attempt (still Sending) may have created the order: parked. False when the claim moved on."""
        return self._update_sending(
            order_reference,
            attempt_id,
            UpdateExpression="SET #state = :ambiguous, #reason = :reason",
            names={"#reason": "ambiguousReason"},
            values={":ambiguous": {"S": AMBIGUOUS}, ":reason": {"S": reason}},
        )

    def release(self, order_reference: str, attempt_id: str) -> None:
        """The attempt ordered nothing: the next message of the reference tries afresh."""
        self._update_sending(order_reference, attempt_id)

    def _update_sending(self, order_reference: str, attempt_id: str, **update: Any) -> bool:
        """Update (or, with no update, delete) the claim if this attempt still holds it Sending."""
        names = {"#attemptId": "attemptId", "#state": "state"} | update.pop("names", {})
        values = {":attemptId": {"S": attempt_id}, ":sending": {"S": SENDING}} | update.pop("values", {})
        request = {
            "TableName": self._table,
            "Key": {"id": {"S": _KEY_PREFIX + order_reference}},
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

    def legacy_answer(self, order_reference: str, function_name: str) -> EpromOrderResponse | None:
        """ePROM's answer as an earlier version's Powertools idempotency record kept it (see the module's docstring):
        its id is "<function name>.place_order.app.place_once#" + the md5 of the orderReference as JSON, and its
        `data` the placement as JSON ({"response": {...}, "placed_before": ...}) once COMPLETED."""
        digest = hashlib.md5(json.dumps(order_reference).encode(), usedforsecurity=False).hexdigest()
        record_id = f"{function_name}.place_order.app.place_once#{digest}"
        record = self._client.get_item(TableName=self._table, Key={"id": {"S": record_id}}, ConsistentRead=True)
        item = record.get("Item", {})
        if item.get("status", {}).get("S") != "COMPLETED" or "data" not in item:
            return None
        response = json.loads(item["data"]["S"]).get("response")
        return EpromOrderResponse.model_validate(response) if response else None

    def _expiration(self, order_expiry: datetime) -> int:
        at_least = time.time() + self._shortest_life.total_seconds()
        return int(max((order_expiry + self._retention).timestamp(), at_least))


def _claim(item: dict[str, Any]) -> Claim:
    return Claim(
        attempt_id=item.get("attemptId", {}).get("S", ""),  # settle_placed may have made the item
        state=item["state"]["S"],
        fingerprint=item["fingerprint"]["S"],
        taken_at=float(item.get("takenAt", {}).get("N", 0)),
        sending_until=float(item.get("sendingUntil", {}).get("N", 0)),
        form_order_id=item.get("formOrderId", {}).get("S"),
        ambiguous_reason=item.get("ambiguousReason", {}).get("S"),
        answer=EpromOrderResponse.model_validate_json(item["answer"]["S"]) if "answer" in item else None,
    )
