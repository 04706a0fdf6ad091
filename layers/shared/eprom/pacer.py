"""ePROM's pace, shared by every environment of every function that calls it: one DynamoDB item (in
IdempotencyTable, beside the claims) holds when the next request may start and how far apart requests are.

ePROM publishes no rate limit, but it is one national service that answers 429 when pushed. Each request takes a
slot first: one conditional UpdateItem moves the item's `nextSlotAt` on by `interval` and the caller waits until
the slot it got. A pace idle for longer than CATCH_UP_SECONDS (next slot that far in the past) restarts at now, so
idle time builds up a burst of at most that many seconds' requests, as a token bucket of that size would. A 429
that still gets through means ePROM's rate is lower than ours: `slow_down` pushes the next slot past ePROM's
Retry-After and widens the interval (at most once per Retry-After, so a burst of 429s slows it once); it narrows
back to the configured rate step by step while no 429 comes.

One item takes far more writes than any rate ePROM would take (1,000 writes per second per partition key:
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html), and each request
costs one write.
"""

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from eprom.aws_clients import condition_failed_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.literals import ReturnValueType

PACE_KEY = "pace#eprom"
SLOWER, FASTER = 1.5, 0.8  # the interval's change on a 429, and per recovery step
MAX_SLOWDOWN = 16  # the interval never grows beyond this many times the configured one
RECOVERY_STEP_SECONDS = 10.0
# A slot this far in the past is still given (at once): callers that meet on an idle pace take their slots one after
# the other instead of racing to restart it, however long a DynamoDB round trip is against the interval.
CATCH_UP_SECONDS = 0.5


@dataclass(frozen=True)
class Slot:
    """`at`: epoch seconds; `granted`: the caller's slot starts then; else none was free by the caller's latest
    start, and `at` is when the next one is."""

    at: float
    granted: bool


class Pacer:
    def __init__(
        self,
        table_name: str,
        client: "DynamoDBClient",
        *,
        requests_per_second: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._table = table_name
        self._client = client
        self._interval = 1 / requests_per_second
        self._clock = clock
        self._sleep = sleep
        self._seen_interval = self._interval  # the shared interval as this environment last saw it

    def wait_for_slot(self, latest: float) -> Slot:
        """Take the next slot and wait until it starts, if it starts by `latest` (epoch seconds); else take nothing."""
        slot = self._reserve(latest)
        if slot.granted:
            self._sleep(max(0.0, slot.at - self._clock()))
        return slot

    def slow_down(self, retry_after_seconds: float) -> None:
        """ePROM answered 429 although paced: no slot before its Retry-After, and a wider interval."""
        now = self._clock()
        resume = _number(now + retry_after_seconds)
        try:
            self._update(
                "SET #next = :resume, #interval = :slower, #changedAt = :now",
                "#interval = :seen AND (attribute_not_exists(#changedAt) OR #changedAt < :recently)",
                {
                    ":resume": resume,
                    ":seen": _number(self._seen_interval),
                    ":now": _number(now),
                    ":slower": _number(min(self._seen_interval * SLOWER, self._interval * MAX_SLOWDOWN)),
                    ":recently": _number(now - max(retry_after_seconds, self._seen_interval)),
                },
            )
        except _ConditionFailed:  # slowed down by another caller just now: only keep its slots past Retry-After
            with contextlib.suppress(_ConditionFailed):
                self._update("SET #next = :resume", "#next < :resume", {":resume": resume})

    def _reserve(self, latest: float) -> Slot:
        for _ in range(5):  # only a race with another caller restarting an idle pace repeats
            now = self._clock()
            try:
                # Busy: the next slot is recent or later; take it if it starts in time.
                old = self._update(
                    "SET #next = #next + #interval",
                    "#next >= :recent AND #next <= :latest",
                    {":recent": _number(now - CATCH_UP_SECONDS), ":latest": _number(latest)},
                    returns="ALL_OLD",
                )
                self._seen(old, now)
                return Slot(float(old["nextSlotAt"]["N"]), granted=True)
            except _ConditionFailed as failed:
                old = failed.item
            if old and float(old["nextSlotAt"]["N"]) >= now - CATCH_UP_SECONDS:
                return Slot(float(old["nextSlotAt"]["N"]), granted=False)  # not free by `latest`
            interval = float(old["interval"]["N"]) if old else self._interval
            try:  # idle: this slot is now
                self._update(
                    "SET #next = :after, #interval = if_not_exists(#interval, :interval)",
                    "attribute_not_exists(#next) OR #next < :recent",
                    {
                        ":after": _number(now + interval),
                        ":recent": _number(now - CATCH_UP_SECONDS),
                        ":interval": _number(self._interval),
                    },
                )
                self._seen(old, now)
                return Slot(now, granted=True)
            except _ConditionFailed:
                continue
        raise RuntimeError("the pace item kept changing under five conditional writes")

    def _seen(self, item: dict[str, Any] | None, now: float) -> None:
        """Note the shared interval, and narrow it back to the configured one (a step per RECOVERY_STEP_SECONDS
        without a 429), or to a configured interval that was made wider since (a redeploy with a lower rate)."""
        if not item or "interval" not in item:
            return
        seen = float(item["interval"]["N"])
        self._seen_interval = seen
        changed_at = float(item.get("changedAt", {}).get("N", 0))
        if seen < self._interval:
            target = self._interval
        elif seen > self._interval and now - changed_at >= RECOVERY_STEP_SECONDS:
            target = max(self._interval, seen * FASTER)
        else:
            return
        with contextlib.suppress(_ConditionFailed):  # another caller changed it first
            values = {":target": _number(target), ":now": _number(now), ":seen": item["interval"]["N"]}
            self._update("SET #interval = :target, #changedAt = :now", "#interval = :seen", values)
            self._seen_interval = target

    def _update(
        self, expression: str, condition: str, values: dict[str, str], returns: "ReturnValueType" = "NONE"
    ) -> Any:
        names = {"#next": "nextSlotAt", "#interval": "interval", "#changedAt": "changedAt"}
        used = {name: attribute for name, attribute in names.items() if name in expression or name in condition}
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key={"id": {"S": PACE_KEY}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=used,
                ExpressionAttributeValues={name: {"N": value} for name, value in values.items()},
                ReturnValues=returns,
                # the item as it was comes with a failed condition: no second read
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            raise _ConditionFailed(condition_failed_item(error)) from None
        return answer.get("Attributes")


class _ConditionFailed(Exception):
    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.item = item


def _number(value: float) -> str:
    return str(Decimal(value).quantize(Decimal("0.000001")))
