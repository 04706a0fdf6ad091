"""ePROM's shared pace (eprom/pacer.py) on IdempotencyTable in moto over HTTP: slots one interval apart across
environments, an idle pace restarting at now, no slot past the caller's latest start, a 429 slowing it down once and
the rate coming back step by step. Time is a clock the test moves (the slots are epoch seconds written to DynamoDB,
so a fake clock is the whole story) and nobody sleeps."""

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from eprom.pacer import CATCH_UP_SECONDS, MAX_SLOWDOWN, PACE_KEY, RECOVERY_STEP_SECONDS, SLOWER, Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def table(aws: dict[str, str]) -> Iterator[str]:
    name = aws["IDEMPOTENCY_TABLE"]
    boto3.client("dynamodb").delete_item(TableName=name, Key={"id": {"S": PACE_KEY}})
    yield name
    boto3.client("dynamodb").delete_item(TableName=name, Key={"id": {"S": PACE_KEY}})


def pacer(table: str, clock: Clock, rate: float = 10) -> Pacer:
    """One function environment's pacer (each makes its own client, as each Lambda environment does)."""
    return Pacer(table, boto3.client("dynamodb"), requests_per_second=rate, clock=clock, sleep=clock.sleep)


def pace_item(table: str) -> dict[str, Any]:
    item = boto3.client("dynamodb").get_item(TableName=table, Key={"id": {"S": PACE_KEY}}, ConsistentRead=True)
    return {name: float(value["N"]) for name, value in item["Item"].items() if "N" in value}


def test_concurrent_callers_in_several_environments_get_slots_one_interval_apart(table, clock) -> None:
    environments = [pacer(table, clock) for _ in range(3)]
    slots: list[float] = []
    lock = threading.Lock()

    def take(environment: Pacer) -> None:
        for _ in range(8):
            slot = environment.wait_for_slot(latest=clock.now + 60)
            assert slot.granted
            with lock:
                slots.append(slot.at)

    threads = [threading.Thread(target=take, args=(environment,)) for environment in environments for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(slots) == pytest.approx([clock.now + k * 0.1 for k in range(48)], abs=1e-5)
    assert sorted(clock.slept)[-1] == pytest.approx(4.7, abs=1e-5)  # each waited until its own slot


def test_an_idle_pace_restarts_at_now_with_a_catch_up_of_half_a_second_at_most(table, clock) -> None:
    environment = pacer(table, clock)
    assert environment.wait_for_slot(latest=clock.now + 60).at == clock.now
    clock.now += CATCH_UP_SECONDS / 2  # a short gap: the slot that passed in it is still given, at once
    assert environment.wait_for_slot(latest=clock.now + 60).at == pytest.approx(clock.now - 0.15, abs=1e-5)
    clock.now += 3600  # idle for an hour: no burst of an hour's slots
    first, second = (environment.wait_for_slot(latest=clock.now + 60) for _ in range(2))
    assert (first.at, second.at) == pytest.approx((clock.now, clock.now + 0.1), abs=1e-5)


def test_no_slot_is_taken_that_starts_after_the_callers_latest_start(table, clock) -> None:
    environment = pacer(table, clock, rate=1)
    for _ in range(5):
        assert environment.wait_for_slot(latest=clock.now + 60).granted
    before = pace_item(table)

    slot = environment.wait_for_slot(latest=clock.now + 2)

    assert not slot.granted and slot.at == pytest.approx(clock.now + 5, abs=1e-5)  # when the next one is
    assert pace_item(table) == before  # nothing reserved


def test_a_429_pushes_the_next_slot_past_retry_after_and_slows_the_pace_once(table, clock) -> None:
    environments = [pacer(table, clock) for _ in range(4)]
    for environment in environments:
        environment.wait_for_slot(latest=clock.now + 60)

    threads = [threading.Thread(target=environment.slow_down, args=(2,)) for environment in environments]
    for thread in threads:  # a burst of 429s answered at once
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    item = pace_item(table)
    assert item["interval"] == pytest.approx(0.1 * SLOWER)  # slowed once, not four times
    assert item["nextSlotAt"] == pytest.approx(clock.now + 2)
    assert environments[0].wait_for_slot(latest=clock.now + 60).at == pytest.approx(clock.now + 2)


def test_the_pace_comes_back_to_the_configured_rate_step_by_step(table, clock) -> None:
    environment = pacer(table, clock)
    environment.wait_for_slot(latest=clock.now + 60)
    for _ in range(20):  # 429s again and again: the interval grows to its bound and no further
        clock.now += 1
        environment.wait_for_slot(latest=clock.now + 60)
        environment.slow_down(0.5)
    assert pace_item(table)["interval"] == pytest.approx(0.1 * MAX_SLOWDOWN)

    intervals = []
    for _ in range(30):  # no 429 any more
        clock.now += RECOVERY_STEP_SECONDS
        environment.wait_for_slot(latest=clock.now + 60)
        intervals.append(pace_item(table)["interval"])
    assert intervals == sorted(intervals, reverse=True) and intervals[0] < 0.1 * MAX_SLOWDOWN
    assert intervals[-1] == pytest.approx(0.1)


def test_a_lower_rate_configured_by_a_redeploy_takes_effect_at_once(table, clock) -> None:
    pacer(table, clock, rate=50).wait_for_slot(latest=clock.now + 60)
    slower = pacer(table, clock, rate=2)
    slower.wait_for_slot(latest=clock.now + 60)
    assert pace_item(table)["interval"] == pytest.approx(0.5)
