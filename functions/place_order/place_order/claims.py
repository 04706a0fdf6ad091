"""The placer's claims (eprom.claims): on orderReferences, in IdempotencyTable, keyed "orderReference#<reference>".

A placed claim keeps ePROM's answer (the formOrderId, loginUrl, channel and singleUseCode; never the national id
ePROM echoes), written before the order's item: the claim is the one record of what ePROM did, so an invocation
that stopped after it still has its item written by the next delivery of the reference.

Claims expire (TTL attribute `expiration`) at the order's expiryDate + ResultRetentionDays, when its item does, and
never sooner than IDEMPOTENCY_EXPIRY_SECONDS after they were taken.

Upgrading from a version that kept Powertools' idempotency records beside the claims: those records (ids
"<function name>.place_order.app.place_once#<md5>") are no longer written and expire by their TTL. The one state
only such a record settled, an invocation that stopped after ePROM's answer and before the order's item, is read
from it once (`legacy_answer`), so that order still ends recorded instead of parked.
"""

import hashlib
import json
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from eprom.claims import Claim, Claims
from eprom.orders import OrderAnswer, read_order_answer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PLACED = "Placed"


class OrderClaims:
    def __init__(
        self, table_name: str, client: "DynamoDBClient", *, retention: timedelta, shortest_life: timedelta
    ) -> None:
        self._claims = Claims(table_name, client, key_prefix="orderReference#")
        self._client = client
        self._table = table_name
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
        return self._claims.take(
            order_reference,
            attempt_id=attempt_id,
            fingerprint=fingerprint,
            sending_until=sending_until,
            expires_at=self._expiration(order_expiry),
            replacing=replacing,
        )

    def current(self, order_reference: str) -> Claim | None:
        """The claim on the reference as it is now (a strongly consistent read); None when there is none."""
        return self._claims.current(order_reference)

    def settle_placed(
        self,
        order_reference: str,
        *,
        fingerprint: str,
        form_order_id: str,
        order_expiry: datetime,
        answer: OrderAnswer | None = None,
    ) -> None:
        """ePROM created `form_order_id` for this reference (`answer`: what it answered): that is final, whoever
        holds the claim."""
        attributes = {"formOrderId": form_order_id, "fingerprint": fingerprint}
        if answer is not None:
            attributes["answer"] = answer.as_json().decode()
        self._claims.settle(order_reference, PLACED, attributes, expires_at=self._expiration(order_expiry))

    def settle_ambiguous(self, order_reference: str, attempt_id: str, reason: str) -> bool:
        """The attempt (still Sending) may have created the order: parked. False when the claim moved on."""
        return self._claims.settle_ambiguous(order_reference, attempt_id, reason)

    def release(self, order_reference: str, attempt_id: str) -> None:
        """The attempt ordered nothing: the next message of the reference tries afresh."""
        self._claims.release(order_reference, attempt_id)

    def legacy_answer(self, order_reference: str, function_name: str) -> OrderAnswer | None:
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
        return read_order_answer(json.dumps(response)) if response else None

    def _expiration(self, order_expiry: datetime) -> int:
        at_least = time.time() + self._shortest_life.total_seconds()
        return int(max((order_expiry + self._retention).timestamp(), at_least))


def placed_form_order_id(claim: Claim) -> str | None:
    """The formOrderId of a Placed claim."""
    value = claim.attributes.get("formOrderId")
    return str(value) if claim.state == PLACED and value else None


def placed_answer(claim: Claim) -> OrderAnswer | None:
    """What ePROM answered, on a Placed claim written since it is kept."""
    answer = claim.attributes.get("answer")
    return read_order_answer(answer) if claim.state == PLACED and answer else None
