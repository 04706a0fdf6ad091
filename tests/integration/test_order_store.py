"""The order store on moto's DynamoDB over HTTP: upserts, status by rank, a history of every distinct callback,
an answers pointer that never moves, and no lost write under concurrency."""

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from eprom.models import EpromCallback
from eprom.order_item import STATUS_RANK, ResultPointer
from eprom.order_store import MAX_HISTORY_ENTRIES, OrderStore
from eprom.orders import OrderAnswer, read_order_answer

EXPIRY = datetime(2099, 12, 31, tzinfo=UTC)


@pytest.fixture
def store(aws) -> OrderStore:
    return OrderStore(aws["FORM_ORDERS_TABLE"], retention_days=30)


def callback(form_order_id: str, status: object, **fields: object) -> EpromCallback:
    return EpromCallback.model_validate({"formOrderId": form_order_id, "formOrderStatus": status} | fields)


def response(form_order_id: str, **fields: object) -> OrderAnswer:
    return read_order_answer(json.dumps({"id": form_order_id, "loginUrl": "https://x/login"} | fields))


def answers(sha: str = "a" * 64, version: str = "v1") -> ResultPointer:
    return ResultPointer(key="answers/x.json", version_id=version, sha256=sha, bytes=123)


def record_placed(store: OrderStore, form_order_id: str, reference: str = "r", fingerprint: str = "x") -> None:
    store.record_placed(
        form_order_id,
        order_reference=reference,
        order_fingerprint=fingerprint,
        form_id="f",
        response=response(form_order_id, singleUseCode="12345678", notificationChannel=0),
        order_expiry=EXPIRY,
    )


def get(orders_table, form_order_id: str) -> dict:
    return orders_table.get_item(Key={"formOrderId": form_order_id}, ConsistentRead=True).get("Item")


@pytest.mark.slow
def test_record_placed_writes_the_item(store, orders_table) -> None:
    form_order_id, reference = str(uuid.uuid4()), f"ref-{uuid.uuid4()}"
    record_placed(store, form_order_id, reference, "abc")
    item = get(orders_table, form_order_id)
    assert item["status"] == "Placed"
    assert item["singleUseCode"] == "12345678"
    assert item["preferredNotificationChannel"] == "None"
    assert item["orderFingerprint"] == "abc"
    assert item["createdAt"] == item["placedAt"]
    assert item["expiresAt"] == int(datetime(2100, 1, 30, tzinfo=UTC).timestamp())  # expiry + 30 days
    deadline = time.monotonic() + 30  # the index is eventually consistent (local/aws_limits.py)
    while not (found_items := store.find_by_order_reference(reference)) and time.monotonic() < deadline:
        time.sleep(0.2)
    [found] = found_items
    assert (found.form_order_id, found.order_reference, found.order_fingerprint) == (form_order_id, reference, "abc")


def test_record_placed_twice_changes_nothing_that_matters(store, orders_table) -> None:
    form_order_id = str(uuid.uuid4())
    for _ in range(2):
        record_placed(store, form_order_id)
    assert get(orders_table, form_order_id)["status"] == "Placed"


def test_a_callback_before_placement_keeps_its_status(store, orders_table) -> None:
    form_order_id = str(uuid.uuid4())
    assert store.apply_callback(callback(form_order_id, "Completed", formData='{"a":1}'), answers=answers())
    record_placed(store, form_order_id)
    item = get(orders_table, form_order_id)
    assert item["status"] == "Completed"
    assert item["answers"]["sha256"] == "a" * 64
    assert item["orderReference"] == "r"
    assert "formData" not in item


@pytest.mark.parametrize(
    ("first", "then", "final"),
    [
        ("Ordered", "Completed", "Completed"),
        ("Completed", "Ordered", "Completed"),
        ("Expired", "Completed", "Completed"),  # a paper answer after expiry
        ("Completed", "Expired", "Completed"),
        ("Error", "Ordered", "Error"),
        ("DigipostDelivered", "Expired", "Expired"),
        ("PhysicalMailReturned", "Ordered", "PhysicalMailReturned"),
    ],
)
def test_status_only_moves_up_its_ranks_and_history_keeps_both(store, orders_table, first, then, final) -> None:
    form_order_id = str(uuid.uuid4())
    assert store.apply_callback(callback(form_order_id, first))
    assert store.apply_callback(callback(form_order_id, then))  # changed: at least the history
    item = get(orders_table, form_order_id)
    assert item["status"] == final
    assert [entry["status"] for entry in item["statusHistory"]] == [first, then]
    assert STATUS_RANK["Completed"] > STATUS_RANK["Expired"]


def test_a_replay_changes_nothing(store, orders_table) -> None:
    form_order_id = str(uuid.uuid4())
    assert store.apply_callback(callback(form_order_id, "Ordered", timestampUtc="2026-01-01T10:00:00Z"))
    before = get(orders_table, form_order_id)
    assert not store.apply_callback(callback(form_order_id, "Ordered", timestampUtc="2026-01-01T10:00:00Z"))
    assert get(orders_table, form_order_id) == before


def test_an_unknown_status_goes_to_history_only(store, orders_table) -> None:
    form_order_id = str(uuid.uuid4())
    assert store.apply_callback(callback(form_order_id, "Completed", notificationChannel="Helsenorge"))
    before = get(orders_table, form_order_id)
    assert store.apply_callback(callback(form_order_id, "Archived", notificationChannel="DigitalMailbox"))
    assert store.apply_callback(callback(form_order_id, None, statusErrorCode=1))  # no status at all
    item = get(orders_table, form_order_id)
    assert {name: item[name] for name in ("status", "notificationChannel", "statusTimestampUtc") if name in item} == {
        name: before[name] for name in ("status", "notificationChannel", "statusTimestampUtc") if name in before
    }
    assert [entry.get("status") for entry in item["statusHistory"]] == ["Completed", "Archived", None]


def test_a_later_callback_never_moves_the_answers_pointer(store, orders_table) -> None:
    form_order_id = str(uuid.uuid4())
    first, other = answers("a" * 64, "v1"), answers("b" * 64, "v2")
    assert store.apply_callback(callback(form_order_id, "Completed", formData="{}"), answers=first)
    assert store.apply_callback(callback(form_order_id, "Completed", formData='{"x":1}'), answers=other)
    item = get(orders_table, form_order_id)
    assert item["answers"]["versionId"] == "v1"
    assert [entry.get("answersVersionId") for entry in item["statusHistory"]] == ["v1", "v2"]  # noted, not moved


def test_a_form_return_after_expiry_is_stored(store, orders_table) -> None:
    form_order_id = str(uuid.uuid4())
    assert store.apply_callback(callback(form_order_id, "Expired"))
    assert store.apply_callback(callback(form_order_id, "Completed", formData="{}"), answers=answers())
    item = get(orders_table, form_order_id)
    assert (item["status"], item["answers"]["versionId"]) == ("Completed", "v1")


def test_the_final_status_sets_when_the_item_expires(store, orders_table) -> None:
    form_order_id = str(uuid.uuid4())
    store.apply_callback(callback(form_order_id, "Ordered"))
    assert "expiresAt" not in get(orders_table, form_order_id)
    started = datetime.now(UTC).timestamp()
    store.apply_callback(callback(form_order_id, "Completed"))
    expires_at = int(get(orders_table, form_order_id)["expiresAt"])
    assert started + 30 * 86400 - 5 <= expires_at <= datetime.now(UTC).timestamp() + 30 * 86400


@pytest.mark.slow
def test_history_is_bounded_but_status_and_answers_still_land(store, orders_table) -> None:
    """Status callbacks stop at the cap; a form return new to the item is noted beyond it (the publisher announces a
    later return by its entry), a replay of one is not."""
    form_order_id = str(uuid.uuid4())
    for minute in range(MAX_HISTORY_ENTRIES + 5):
        store.apply_callback(callback(form_order_id, "Ordered", timestampUtc=f"2026-01-01T10:{minute % 60:02d}:00Z",
                                      notificationChannel=minute // 60))  # fmt: skip
    assert len(get(orders_table, form_order_id)["statusHistory"]) == MAX_HISTORY_ENTRIES
    assert store.apply_callback(callback(form_order_id, "Completed", formData="{}"), answers=answers())
    item = get(orders_table, form_order_id)
    assert (item["status"], item["answers"]["versionId"]) == ("Completed", "v1")
    assert len(item["statusHistory"]) == MAX_HISTORY_ENTRIES + 1
    later = ResultPointer(key="answers/x.json", version_id="v2", sha256="b" * 64, bytes=3)
    for timestamp in ("2026-01-02T10:00:00Z", "2026-01-02T11:00:00Z"):  # a different return, then sent again
        store.apply_callback(callback(form_order_id, "Completed", formData="{}", timestampUtc=timestamp), answers=later)
    store.apply_callback(callback(form_order_id, "Expired", timestampUtc="2026-01-03T10:00:00Z"))
    history = get(orders_table, form_order_id)["statusHistory"]
    assert len(history) == MAX_HISTORY_ENTRIES + 2 and history[-1]["answersVersionId"] == "v2"


def test_wire_text_is_short_and_storable(store, orders_table) -> None:
    form_order_id = str(uuid.uuid4())
    assert store.apply_callback(callback(form_order_id, "x" * 300_000 + "\ud800"))
    [entry] = get(orders_table, form_order_id)["statusHistory"]
    assert len(entry["status"]) == 64


@pytest.mark.slow
def test_a_callback_racing_the_placement_write_keeps_both(store, orders_table) -> None:
    """ePROM's first callback can reach DynamoDB while the placer writes the new item. DynamoDB applies writes to
    one item one at a time, in either order; both writes must survive (and the local stack must behave the same)."""
    form_order_ids = [str(uuid.uuid4()) for _ in range(200)]
    barrier = threading.Barrier(2)

    def place(form_order_id: str) -> None:
        barrier.wait()
        record_placed(store, form_order_id)

    def report_ordered(form_order_id: str) -> None:
        barrier.wait()
        store.apply_callback(callback(form_order_id, "Ordered", notificationChannel="Helsenorge"))

    with ThreadPoolExecutor(max_workers=2) as pool:
        for form_order_id in form_order_ids:
            list(pool.map(lambda write, key=form_order_id: write(key), (place, report_ordered)))

    items = [get(orders_table, form_order_id) for form_order_id in form_order_ids]
    lost = [item["formOrderId"] for item in items if item["status"] != "Ordered" or "loginUrl" not in item]
    assert lost == []


@pytest.mark.slow
def test_concurrent_callbacks_of_one_order_all_reach_the_history(store, orders_table) -> None:
    """Out-of-order and simultaneous callbacks: no read-modify-write, so none is lost and status ends highest."""
    statuses = ["Ordered", "DigipostDelivered", "Expired", "Completed", "Error", "Archived"]
    for _ in range(20):
        form_order_id = str(uuid.uuid4())
        barrier = threading.Barrier(len(statuses))

        def send(status: str, form_order_id: str = form_order_id, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            store.apply_callback(
                callback(form_order_id, status, **({"formData": "{}"} if status == "Completed" else {})),
                answers=answers() if status == "Completed" else None,
            )

        with ThreadPoolExecutor(max_workers=len(statuses)) as pool:
            list(pool.map(send, statuses))
        item = get(orders_table, form_order_id)
        assert item["status"] == "Completed"
        assert sorted(entry["status"] for entry in item["statusHistory"]) == sorted(statuses)
        assert item["answers"]["versionId"] == "v1"


def test_items_that_exist_only_through_callbacks_are_listed_with_their_first_time(store, orders_table) -> None:
    orphan, placed = str(uuid.uuid4()), str(uuid.uuid4())
    assert store.apply_callback(callback(orphan, "Ordered"))
    first_seen = get(orders_table, orphan)["createdAt"]
    assert store.apply_callback(callback(orphan, "Completed"))
    record_placed(store, placed)

    orphans = {item.form_order_id: item for item in store.callback_only_items()}
    assert orphan in orphans and placed not in orphans
    assert orphans[orphan].created_at == first_seen  # the first callback's time, kept by later ones
    assert orphans[orphan].status == "Completed"
