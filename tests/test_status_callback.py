"""StatusCallbackFunction: REST v1 proxy events (as in events/) -> handler -> moto DynamoDB over HTTP."""

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from conftest import API_KEY, EVENTS, PREVIOUS_API_KEY

from local.aws_resources import create_table

HEMIT_EXAMPLE_ID = "184738d0-3c39-e611-9c2a-34e6d72e03c7"


def event_from(name: str, **changes: Any) -> tuple[dict[str, Any], str]:
    """An event from events/ for a fresh formOrderId, with body fields changed (None removes one)."""
    event = json.loads((EVENTS / name).read_text())
    form_order_id = str(uuid.uuid4())
    body = json.loads(event["body"]) | {"formOrderId": form_order_id} | changes
    event["body"] = json.dumps({key: value for key, value in body.items() if value is not None})
    return event, form_order_id


def with_body(body: str | None, name: str = "callback-ordered.json") -> dict[str, Any]:
    event = json.loads((EVENTS / name).read_text())
    event["body"] = body
    return event


def put(callback_app: Any, event: dict[str, Any], context: Any) -> tuple[int, dict[str, Any]]:
    response = callback_app.lambda_handler(event, context)
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]
    return response["statusCode"], json.loads(response["body"])


def item(table: Any, form_order_id: str) -> dict[str, Any] | None:
    return table.get_item(Key={"formOrderId": form_order_id}, ConsistentRead=True).get("Item")


def test_hemits_documented_ordered_example_verbatim_is_stored(callback_app, orders_table, lambda_context) -> None:
    event = json.loads((EVENTS / "callback-ordered.json").read_text())  # the body exactly as Hemit documents it
    assert put(callback_app, event, lambda_context) == (200, {"success": True})
    stored = item(orders_table, HEMIT_EXAMPLE_ID)
    assert stored is not None
    assert stored["status"] in ("Ordered", "Completed")  # another test may have completed this id already
    assert stored["notificationChannel"] == "Helsenorge"
    assert "apiKey" not in stored


def test_ordered_status_is_stored_with_all_its_fields(callback_app, orders_table, lambda_context) -> None:
    event, form_order_id = event_from("callback-ordered.json")
    assert put(callback_app, event, lambda_context) == (200, {"success": True})
    stored = item(orders_table, form_order_id)
    assert stored["status"] == "Ordered"
    assert stored["notificationChannel"] == "Helsenorge"
    assert stored["statusErrorCode"] == "None"
    assert stored["statusTimestampUtc"] == "2023-03-29T08:20:10.180433+00:00"
    assert stored["updatedAt"]
    assert "apiKey" not in stored


def test_hemits_error_example_on_the_trailing_slash_path(callback_app, orders_table, lambda_context) -> None:
    event, form_order_id = event_from("callback-error.json")
    assert event["path"].endswith("/api/PromsFormOrder/")
    assert put(callback_app, event, lambda_context) == (200, {"success": True})
    stored = item(orders_table, form_order_id)
    assert stored["status"] == "Error"
    assert stored["statusErrorCode"] == "PatientUnreachable"
    assert stored["notificationChannel"] == "None"
    assert "statusTimestampUtc" not in stored  # Hemit's Error example has no timestamps


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"notificationChannel": 1}, {"notificationChannel": "Helsenorge"}),
        ({"notificationChannel": "2"}, {"notificationChannel": "DigitalMailbox"}),
        ({"notificationChannel": "helsenorge"}, {"notificationChannel": "Helsenorge"}),
        ({"formOrderStatus": "2", "formOrderStatusErrorCode": 0}, {"status": "Ordered", "statusErrorCode": "None"}),
        ({"notificationChannel": 42}, {"notificationChannel": "42"}),  # unknown: kept as given
        (
            {"timestamp": "2023-03-29T10:20:10.1804332", "timestampUtc": None},
            {"statusTimestampUtc": "2023-03-29T08:20:10.180433+00:00"},
        ),
        ({"timestampUtc": "2021-05-07 09:17:51.220"}, {"statusTimestampUtc": "2021-05-07T09:17:51.220000+00:00"}),
    ],
)
def test_every_wire_shape_is_stored_the_same_way(changes, expected, callback_app, orders_table, lambda_context) -> None:
    event, form_order_id = event_from("callback-ordered.json", **changes)
    assert put(callback_app, event, lambda_context) == (200, {"success": True})
    stored = item(orders_table, form_order_id)
    assert {key: stored.get(key) for key in expected} == expected


def test_a_form_return_keeps_form_data_byte_for_byte(callback_app, orders_table, lambda_context) -> None:
    form_data = '{ "q1":"Ja",  "q2":3,\n "fritekst":"Vondt i kneet, «verre» om natta", "tall": 1.50 }'
    event, form_order_id = event_from("callback-completed.json", formData=form_data)
    assert put(callback_app, event, lambda_context) == (200, {"success": True})
    stored = item(orders_table, form_order_id)
    assert stored["formData"] == form_data
    assert stored["status"] == "Completed"
    assert stored["notificationChannel"] == "Helsenorge"
    assert stored["signedFormId"] == "00000000-0000-0000-0000-000000000000"
    assert stored["formDataWarnings"] == [{"fieldName": "q2", "warning": "Out of range"}]
    assert stored["formOrderEventLog"][0]["eventType"] == "Opened"
    assert stored["filledOutBy"]["filledOutByActType"] == "Patient"
    assert stored["isPatientInitiated"] is False
    assert stored["patientInitiatedValues"]["orderTimestampUtc"] == "2021-05-07T09:17:51.220000Z"
    assert stored["statusTimestampUtc"] == "2019-05-02T22:00:00+00:00"


@pytest.mark.parametrize("api_key", ["wrong-key", "", None, API_KEY + " ", API_KEY[:-1]])
def test_a_wrong_or_missing_key_is_refused_and_nothing_is_written(
    api_key, callback_app, orders_table, lambda_context
) -> None:
    event, form_order_id = event_from("callback-ordered.json", apiKey=api_key)
    assert put(callback_app, event, lambda_context) == (401, {"success": False})
    assert item(orders_table, form_order_id) is None


def test_the_previous_key_is_accepted_during_rotation(callback_app, orders_table, lambda_context) -> None:
    event, form_order_id = event_from("callback-ordered.json", apiKey=PREVIOUS_API_KEY)
    assert put(callback_app, event, lambda_context) == (200, {"success": True})
    assert item(orders_table, form_order_id)["status"] == "Ordered"


def test_status_never_moves_backwards(callback_app, orders_table, lambda_context) -> None:
    completed, form_order_id = event_from("callback-completed.json")
    assert put(callback_app, completed, lambda_context)[0] == 200
    before = item(orders_table, form_order_id)

    late_ordered, _ = event_from("callback-ordered.json")
    late_ordered["body"] = json.dumps(json.loads(late_ordered["body"]) | {"formOrderId": form_order_id})
    assert put(callback_app, late_ordered, lambda_context) == (200, {"success": True})  # acknowledged ...
    assert item(orders_table, form_order_id) == before  # ... and changes nothing


def test_a_replayed_callback_leaves_one_state(callback_app, orders_table, lambda_context) -> None:
    event, form_order_id = event_from("callback-ordered.json")
    assert put(callback_app, event, lambda_context)[0] == 200
    first = item(orders_table, form_order_id)
    for _ in range(3):
        assert put(callback_app, event, lambda_context) == (200, {"success": True})
    assert item(orders_table, form_order_id) == first


def test_a_status_for_an_unknown_order_creates_it(callback_app, orders_table, lambda_context) -> None:
    event, form_order_id = event_from("callback-completed.json", isPatientInitiated=True)
    assert put(callback_app, event, lambda_context)[0] == 200
    stored = item(orders_table, form_order_id)
    assert stored["status"] == "Completed"
    assert stored["isPatientInitiated"] is True
    assert "orderReference" not in stored


def test_an_unknown_status_is_kept_without_moving_status(callback_app, orders_table, lambda_context) -> None:
    event, form_order_id = event_from("callback-ordered.json")
    put(callback_app, event, lambda_context)
    newer, _ = event_from("callback-ordered.json", formOrderStatus="Archived")
    newer["body"] = json.dumps(json.loads(newer["body"]) | {"formOrderId": form_order_id})
    assert put(callback_app, newer, lambda_context) == (200, {"success": True})
    stored = item(orders_table, form_order_id)
    assert stored["status"] == "Ordered"
    assert stored["unrecognisedStatus"] == "Archived"


@pytest.mark.parametrize(
    "body",
    [None, "", "not json", "[1, 2]", '"text"', "{}", '{"formOrderId": "not-a-guid", "apiKey": "x"}', '{"apiKey": 1'],
)
def test_unreadable_bodies_get_400_and_nothing_is_written(body, callback_app, orders_table, lambda_context) -> None:
    count = orders_table.scan(Select="COUNT")["Count"]
    status, reply = put(callback_app, with_body(body), lambda_context)
    assert status == 400
    assert reply["success"] is False
    assert reply["reason"]
    assert orders_table.scan(Select="COUNT")["Count"] == count


def test_a_400_reason_does_not_echo_the_input(callback_app, lambda_context) -> None:
    body = json.dumps({"apiKey": API_KEY, "formOrderId": "26073941651", "formData": "svar-som-er-hemmelig"})
    status, reply = put(callback_app, with_body(body), lambda_context)
    assert status == 400
    assert "26073941651" not in reply["reason"] and API_KEY not in reply["reason"]
    assert "svar-som-er-hemmelig" not in json.dumps(reply)


def test_answers_too_large_for_one_item_are_not_acknowledged(callback_app, orders_table, lambda_context) -> None:
    event, form_order_id = event_from("callback-completed.json", formData=json.dumps({"text": "x" * 390_000}))
    assert put(callback_app, event, lambda_context) == (500, {"success": False})  # ePROM keeps it and retries
    assert item(orders_table, form_order_id) is None


@pytest.fixture
def orders_table_unavailable(aws: dict[str, str]) -> Iterator[None]:
    boto3.client("dynamodb").delete_table(TableName=aws["FORM_ORDERS_TABLE"])
    yield
    create_table("FormOrdersTable", aws["FORM_ORDERS_TABLE"])


def test_storage_failure_is_a_5xx_so_eprom_retries(callback_app, orders_table_unavailable, lambda_context) -> None:
    event, _ = event_from("callback-ordered.json")
    status, reply = put(callback_app, event, lambda_context)
    assert status == 500
    assert reply == {"success": False}


def test_no_personal_data_in_logs(callback_app, lambda_context, captured_output) -> None:
    secret_answer = "hemmelig-helsesvar-4711"
    events = [
        event_from("callback-completed.json", formData=json.dumps({"svar": secret_answer}))[0],
        event_from("callback-ordered.json", apiKey="wrong-" + API_KEY)[0],
        with_body(json.dumps({"apiKey": API_KEY, "formOrderId": "x", "formData": secret_answer})),
        with_body("{" + secret_answer),
    ]
    for event in events:
        callback_app.lambda_handler(event, lambda_context)
    output = captured_output.text()
    assert "callback stored" in output and "callback refused" in output
    assert "CallbacksStored" in output and "CallbacksUnauthorized" in output and "CallbacksUnreadable" in output
    for secret in (API_KEY, secret_answer, "26073941651"):
        assert secret not in output


def test_text_dynamodb_cannot_store_is_a_400_not_a_5xx(callback_app, orders_table, lambda_context) -> None:
    body = '{"apiKey": "%s", "formOrderId": "%s", "formOrderStatus": "Completed", "formData": "\\ud800"}'
    form_order_id = str(uuid.uuid4())
    status, reply = put(callback_app, with_body(body % (API_KEY, form_order_id)), lambda_context)
    assert status == 400
    assert reply["reason"] == "body: text must be valid Unicode"
    assert item(orders_table, form_order_id) is None


def test_any_content_type_is_read_as_json(callback_app, orders_table, lambda_context) -> None:
    event, form_order_id = event_from("callback-ordered.json")
    event["headers"]["Content-Type"] = "multipart/form-data"  # no boundary: the resolver alone would fail on it
    event["multiValueHeaders"]["Content-Type"] = ["multipart/form-data"]
    assert put(callback_app, event, lambda_context) == (200, {"success": True})
    assert item(orders_table, form_order_id)["status"] == "Ordered"


def test_other_methods_and_paths(callback_app, lambda_context) -> None:
    event, _ = event_from("callback-ordered.json")
    event["httpMethod"] = "POST"
    response = callback_app.lambda_handler(event, lambda_context)
    assert response["statusCode"] == 405
    assert response["multiValueHeaders"]["Allow"] == ["PUT"]
    event["httpMethod"], event["path"] = "PUT", "/api/Other"
    assert put(callback_app, event, lambda_context)[0] == 404
