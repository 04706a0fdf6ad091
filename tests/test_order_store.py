"""The order store on moto's DynamoDB over HTTP: upserts, forward-only status, idempotent callbacks."""

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from eprom.models import EpromCallback, EpromOrderResponse
from eprom.order_store import CallbackTooLarge, OrderStore


@pytest.fixture
def store(aws) -> OrderStore:
    return OrderStore(aws["FORM_ORDERS_TABLE"])


def callback(form_order_id: str, status: str, **fields: object) -> EpromCallback:
    return EpromCallback.model_validate({"formOrderId": form_order_id, "formOrderStatus": status} | fields)


def response(form_order_id: str, **fields: object) -> EpromOrderResponse:
    return EpromOrderResponse.model_validate({"id": form_order_id, "loginUrl": "https://x/login"} | fields)


def record_placed(store: OrderStore, form_order_id: str) -> None:
    store.record_placed(
        form_order_id, order_reference="r", order_fingerprint="x", form_id="f", response=response(form_order_id)
    )


def get(orders_table, form_order_id: str) -> dict:
    return orders_table.get_item(Key={"formOrderId": form_order_id}, ConsistentRead=True).get("Item")


def test_record_placed_writes_the_item(store, orders_table) -> None:
    form_order_id, reference = str(uuid.uuid4()), f"ref-{uuid.uuid4()}"
    store.record_placed(
        form_order_id,
        order_reference=reference,
        order_fingerprint="abc",
        form_id="f",
        response=response(form_order_id, singleUseCode="12345678", notificationChannel=0),
    )
    item = get(orders_table, form_order_id)
    assert item["status"] == "Placed"
    assert item["singleUseCode"] == "12345678"
    assert item["preferredNotificationChannel"] == "None"
    assert item["orderFingerprint"] == "abc"
    assert item["createdAt"] == item["placedAt"]
    [found] = store.find_by_order_reference(reference)
    assert (found["formOrderId"], found["orderFingerprint"]) == (form_order_id, "abc")


def test_record_placed_twice_changes_nothing_that_matters(store, orders_table) -> None:
    form_order_id = str(uuid.uuid4())
    for _ in range(2):
        store.record_placed(
            form_order_id, order_reference="r", order_fingerprint="x", form_id="f", response=response(form_order_id)
        )
    assert get(orders_table, form_order_id)["status"] == "Placed"


def test_a_callback_before_placement_keeps_its_status(store, orders_table) -> None:
    form_order_id = str(uuid.uuid4())
    assert store.apply_callback(callback(form_order_id, "Completed", formData='{"a":1}'))
    store.record_placed(
        form_order_id, order_reference="r", order_fingerprint="x", form_id="f", response=response(form_order_id)
    )
    item = get(orders_table, form_order_id)
    assert item["status"] == "Completed"
    assert item["formData"] == '{"a":1}'
    assert item["orderReference"] == "r"


@pytest.mark.parametrize(
    ("first", "then", "final"),
    [
        ("Ordered", "Completed", "Completed"),
        ("Completed", "Ordered", "Completed"),
        ("Expired", "Completed", "Expired"),  # same rank: the first terminal status stands
        ("Error", "Ordered", "Error"),
        ("DigipostDelivered", "Expired", "Expired"),
        ("PhysicalMailReturned", "Ordered", "PhysicalMailReturned"),
    ],
)
def test_status_only_moves_forward(store, orders_table, first: str, then: str, final: str) -> None:
    form_order_id = str(uuid.uuid4())
    assert store.apply_callback(callback(form_order_id, first))
    moved = store.apply_callback(callback(form_order_id, then))
    assert moved == (final == then and final != first)
    assert get(orders_table, form_order_id)["status"] == final


def test_a_replay_returns_false_and_leaves_the_item(store, orders_table) -> None:
    form_order_id = str(uuid.uuid4())
    assert store.apply_callback(callback(form_order_id, "Ordered"))
    before = get(orders_table, form_order_id)
    assert not store.apply_callback(callback(form_order_id, "Ordered"))
    assert get(orders_table, form_order_id) == before


def test_nested_numbers_are_stored_as_text(store, orders_table) -> None:
    form_order_id = str(uuid.uuid4())
    store.apply_callback(callback(form_order_id, "Completed", formOrderEventLog=[{"eventType": 3, "questionId": 1.5}]))
    assert get(orders_table, form_order_id)["formOrderEventLog"] == [{"eventType": "3", "questionId": "1.5"}]


def test_too_large_is_refused_before_writing(store, orders_table) -> None:
    form_order_id = str(uuid.uuid4())
    with pytest.raises(CallbackTooLarge) as caught:
        store.apply_callback(callback(form_order_id, "Completed", formData=json.dumps(["æ" * 200_000])))
    assert "æ" not in str(caught.value)
    assert get(orders_table, form_order_id) is None


def test_a_callback_racing_the_placement_write_keeps_both(store, orders_table) -> None:
    """ePROM's first callback can reach DynamoDB while the placer writes the new item. DynamoDB applies writes to
    one item one at a time, in either order; both writes must survive (and the local stack must behave the same)."""
    form_order_ids = [str(uuid.uuid4()) for _ in range(200)]
    barrier = threading.Barrier(2)

    def place(form_order_id: str) -> None:
        barrier.wait()
        store.record_placed(
            form_order_id, order_reference="r", order_fingerprint="x", form_id="f", response=response(form_order_id)
        )

    def report_ordered(form_order_id: str) -> None:
        barrier.wait()
        store.apply_callback(callback(form_order_id, "Ordered", notificationChannel="Helsenorge"))

    with ThreadPoolExecutor(max_workers=2) as pool:
        for form_order_id in form_order_ids:
            list(pool.map(lambda write, key=form_order_id: write(key), (place, report_ordered)))

    items = [get(orders_table, form_order_id) for form_order_id in form_order_ids]
    lost = [item["formOrderId"] for item in items if item["status"] != "Ordered" or "loginUrl" not in item]
    assert lost == []


def test_items_that_exist_only_through_callbacks_are_listed_with_their_first_time(store, orders_table) -> None:
    orphan, placed = str(uuid.uuid4()), str(uuid.uuid4())
    assert store.apply_callback(callback(orphan, "Ordered"))
    first_seen = get(orders_table, orphan)["createdAt"]
    assert store.apply_callback(callback(orphan, "Completed"))
    record_placed(store, placed)

    orphans = {item["formOrderId"]: item for item in store.callback_only_items()}
    assert orphan in orphans and placed not in orphans
    assert orphans[orphan]["createdAt"] == first_seen  # the first callback's time, kept by later ones
    assert orphans[orphan]["status"] == "Completed"
