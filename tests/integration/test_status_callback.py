"""StatusCallbackFunction: REST v1 proxy events (as in events/) -> handler -> moto S3 and DynamoDB over HTTP."""

import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from conftest import API_KEY, EVENTS, PREVIOUS_API_KEY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


def stored_answers(aws: dict[str, str], pointer: dict[str, Any]) -> bytes:
    """The answers object the item points at, that exact version."""
    answer = boto3.client("s3").get_object(
        Bucket=aws["FORM_RESULTS_BUCKET"], Key=pointer["key"], VersionId=pointer["versionId"]
    )
    return answer["Body"].read()


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


def test_a_form_return_is_stored_in_s3_as_received_minus_the_key(
    callback_app, orders_table, aws, lambda_context
) -> None:
    form_data = '{ "q1":"Ja",  "q2":3,\n "fritekst":"Vondt i kneet, «verre» om natta", "tall": 1.50 }'
    event, form_order_id = event_from("callback-completed.json", formData=form_data)
    assert put(callback_app, event, lambda_context) == (200, {"success": True})
    stored = item(orders_table, form_order_id)
    document = stored_answers(aws, stored["answers"])
    assert document == event["body"].replace(f'"apiKey": "{API_KEY}", ', "").encode()
    received = json.loads(event["body"])
    assert json.loads(document) == {key: value for key, value in received.items() if key != "apiKey"}
    assert json.loads(document)["formData"] == form_data  # byte for byte
    assert stored["answers"]["key"] == f"answers/{form_order_id}.json"
    assert stored["answers"]["sha256"] == hashlib.sha256(document).hexdigest()
    assert stored["answers"]["bytes"] == len(document)
    assert stored["status"] == "Completed"
    assert stored["notificationChannel"] == "Helsenorge"
    assert stored["signedFormId"] == "00000000-0000-0000-0000-000000000000"
    assert stored["isPatientInitiated"] is False
    assert stored["statusTimestampUtc"] == "2019-05-02T22:00:00+00:00"
    for answers_field in ("formData", "formDataWarnings", "formOrderEventLog", "filledOutBy", "patientInitiatedValues"):
        assert answers_field not in stored  # in S3 only
    assert "apiKey" not in stored and API_KEY.encode() not in document


def test_a_form_return_is_stored_as_the_received_text(callback_app, orders_table, aws, lambda_context) -> None:
    """Numbers as written (1e400 is not Infinity, 0.1000000000000000055511151231257827 not 0.1), escapes as written,
    the layout as sent: only the key member is cut, with its comma."""
    form_order_id = str(uuid.uuid4())
    key_member = f'"apiKey" : "{API_KEY}" ,\n  '
    body = (
        f'{{\n  "formOrderId": "{form_order_id}",\t{key_member}"formOrderStatus": "Completed",\n'
        '  "formData": "{\\"tall\\": 1e400, \\"andel\\": 0.1000000000000000055511151231257827}",\n'
        '  "vekt": 1e400, "andel": 0.1000000000000000055511151231257827, "navn": "\\u00e6\\/", "rå": "æ«»"\n}'
    )
    assert put(callback_app, with_body(body), lambda_context) == (200, {"success": True})
    stored = item(orders_table, form_order_id)
    document = stored_answers(aws, stored["answers"])
    assert document == body.replace(key_member, "").encode()
    assert stored["answers"]["sha256"] == hashlib.sha256(document).hexdigest()
    assert stored["answers"]["bytes"] == len(document)


@pytest.mark.parametrize("spelling", ["api_key", "API_KEY", "api-key", "Api-Key", "APIKEY", "apikey", "api key"])
def test_every_spelling_of_the_key_is_left_out_of_the_answers(
    spelling, callback_app, orders_table, aws, lambda_context
) -> None:
    event, form_order_id = event_from("callback-completed.json", **{spelling: API_KEY})
    assert put(callback_app, event, lambda_context) == (200, {"success": True})
    document = stored_answers(aws, item(orders_table, form_order_id)["answers"])
    assert API_KEY.encode() not in document
    assert spelling.encode() not in document and b"apiKey" not in document


@pytest.mark.parametrize("spelling", ["api_key", "API_KEY", "api-key", "Api Key"])
def test_only_apikey_in_any_case_authenticates(spelling, callback_app, orders_table, lambda_context) -> None:
    event, form_order_id = event_from("callback-completed.json", apiKey=None, **{spelling: API_KEY})
    assert put(callback_app, event, lambda_context) == (401, {"success": False})
    assert item(orders_table, form_order_id) is None


# One side field in a shape we cannot read, each seen refusing a form return (issue 19, item 7)
ODD_SIDE_FIELDS = [
    ("signedFormId", 0),
    ("isPatientInitiated", "x"),
    ("formDataWarnings", {}),
    ("formOrderEventLog", True),
    ("filledOutBy", []),
    ("scannedPaperId", 1.5),
    ("formOrderStatus", []),
]


@pytest.mark.parametrize(("field", "value"), ODD_SIDE_FIELDS)
def test_a_form_return_with_a_side_field_we_cannot_read_is_stored(
    field, value, callback_app, orders_table, aws, lambda_context
) -> None:
    event, form_order_id = event_from("callback-completed.json", **{field: value})
    assert put(callback_app, event, lambda_context) == (200, {"success": True})
    stored = item(orders_table, form_order_id)
    document = stored_answers(aws, stored["answers"])
    assert json.loads(document)[field] == value  # kept as received
    assert stored["statusHistory"][-1]["unreadableFields"] == [field]  # and noted
    # An unreadable formOrderStatus moves no status: the answers are stored and announced, the status is not guessed
    assert stored.get("status") == (None if field == "formOrderStatus" else "Completed")


@pytest.mark.parametrize(("field", "value"), [("notificationChannel", []), ("timestamp", {"a": 1})])
def test_a_status_with_a_side_field_we_cannot_read_is_stored(
    field, value, callback_app, orders_table, lambda_context
) -> None:
    event, form_order_id = event_from("callback-ordered.json", **{field: value})
    assert put(callback_app, event, lambda_context) == (200, {"success": True})
    stored = item(orders_table, form_order_id)
    assert stored["status"] == "Ordered"
    assert stored["statusHistory"][-1]["unreadableFields"] == [field]


def test_unreadable_fields_are_named_by_our_names_never_by_input_keys(
    callback_app, orders_table, lambda_context, captured_output
) -> None:
    event, form_order_id = event_from("callback-completed.json", SIGNEDFORMID=0, **{"26073941651": []})
    assert put(callback_app, event, lambda_context) == (200, {"success": True})
    stored = item(orders_table, form_order_id)
    assert stored["statusHistory"][-1]["unreadableFields"] == ["signedFormId"]
    assert "26073941651" not in json.dumps(stored, default=str)
    assert "26073941651" not in captured_output.text()


side_fields = st.sampled_from(
    ["formOrderStatus", "formOrderStatusErrorCode", "notificationChannel", "timestamp", "timestampUtc",
     "formDataWarnings", "signedFormId", "scannedPaperId", "isPatientInitiated", "patientInitiatedValues",
     "formOrderEventLog", "filledOutBy"]
)  # fmt: skip
any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)


@pytest.mark.slow
@given(fields=st.dictionaries(side_fields, any_json, min_size=1, max_size=4))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_an_authenticated_form_return_is_stored_whatever_its_side_fields(
    fields, callback_app, orders_table, aws, lambda_context
) -> None:
    event, form_order_id = event_from("callback-completed.json", **fields)
    event["body"] = json.dumps(json.loads(event["body"]) | fields)  # null too: given, not removed
    assert put(callback_app, event, lambda_context) == (200, {"success": True})
    stored = item(orders_table, form_order_id)
    assert stored_answers(aws, stored["answers"]) == event["body"].replace(f'"apiKey": "{API_KEY}", ', "").encode()
    assert set(stored["statusHistory"][-1].get("unreadableFields", [])) <= set(fields)


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
    after = item(orders_table, form_order_id)
    unchanged = ("status", "notificationChannel", "statusErrorCode", "statusTimestampUtc", "answers")
    assert {name: after.get(name) for name in unchanged} == {name: before.get(name) for name in unchanged}
    assert [entry["status"] for entry in after["statusHistory"]] == ["Completed", "Ordered"]  # ... and noted


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
    assert stored["statusHistory"][-1]["status"] == "Archived"


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


def test_answers_of_any_size_are_stored(callback_app, orders_table, aws, lambda_context) -> None:
    event, form_order_id = event_from("callback-completed.json", formData=json.dumps({"text": "æ" * 1_000_000}))
    assert put(callback_app, event, lambda_context) == (200, {"success": True})
    stored = item(orders_table, form_order_id)
    assert json.loads(json.loads(stored_answers(aws, stored["answers"]))["formData"])["text"] == "æ" * 1_000_000


def test_big_warnings_then_big_answers_never_outgrow_the_item(callback_app, orders_table, lambda_context) -> None:
    warnings = [{"fieldName": "q", "warning": "w" * 300_000}]
    ordered, form_order_id = event_from("callback-ordered.json", formDataWarnings=warnings)
    assert put(callback_app, ordered, lambda_context) == (200, {"success": True})
    completed, _ = event_from("callback-completed.json", formData=json.dumps({"a": "x" * 300_000}))
    completed["body"] = json.dumps(json.loads(completed["body"]) | {"formOrderId": form_order_id})
    assert put(callback_app, completed, lambda_context) == (200, {"success": True})
    stored = item(orders_table, form_order_id)
    assert stored["status"] == "Completed"
    assert len(json.dumps(stored, default=str)) < 10_000


def test_a_net_unset_timestamp_does_not_cost_the_answers(callback_app, orders_table, aws, lambda_context) -> None:
    event, form_order_id = event_from(
        "callback-completed.json", timestamp="0001-01-01T00:00:00", timestampUtc=None
    )  # Oslo time of year 1 is before year 1 in UTC: Python cannot convert it
    assert put(callback_app, event, lambda_context) == (200, {"success": True})
    stored = item(orders_table, form_order_id)
    assert stored["status"] == "Completed" and "statusTimestampUtc" not in stored
    assert stored_answers(aws, stored["answers"])


def test_a_callback_without_status_after_completed_moves_nothing_back(
    callback_app, orders_table, lambda_context
) -> None:
    completed, form_order_id = event_from("callback-completed.json")
    assert put(callback_app, completed, lambda_context)[0] == 200
    before = item(orders_table, form_order_id)
    later, _ = event_from("callback-completed.json", formOrderStatus=None, timestamp="2019-01-01T00:00:00",
                          formData='{"other": "answers"}')  # fmt: skip
    later["body"] = json.dumps(json.loads(later["body"]) | {"formOrderId": form_order_id})
    assert put(callback_app, later, lambda_context) == (200, {"success": True})
    after = item(orders_table, form_order_id)
    for name in ("status", "statusTimestampUtc", "answers", "notificationChannel"):
        assert after[name] == before[name], name
    assert after["statusHistory"][-1]["answersVersionId"] != before["answers"]["versionId"]  # kept, as a version


@pytest.mark.parametrize(
    "body",
    ["[" * 10_000 + "]" * 10_000, '{"formOrderId": ' + "9" * 5_000 + "}", '{"a": ' * 5_000 + "1" + "}" * 5_000],
)
def test_json_too_deep_or_numbers_too_long_get_400_without_a_key(body, callback_app, lambda_context) -> None:
    status, reply = put(callback_app, with_body(body), lambda_context)
    assert status == 400 and reply["success"] is False
    assert "999" not in reply["reason"]


@pytest.mark.parametrize("status_text", ["\u0662", "\u00b2"])  # Arabic-Indic two, superscript two
def test_non_ascii_digits_are_not_a_status_and_never_echoed(
    status_text, callback_app, orders_table, lambda_context
) -> None:
    event, form_order_id = event_from("callback-ordered.json", formOrderStatus=status_text)
    status, reply = put(callback_app, event, lambda_context)
    assert (status, reply) == (200, {"success": True})
    stored = item(orders_table, form_order_id)
    assert "status" not in stored  # not read as Ordered
    assert stored["statusHistory"][0]["status"] == status_text


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


@pytest.fixture
def results_bucket_unavailable(aws: dict[str, str]) -> Iterator[None]:
    bucket = boto3.resource("s3").Bucket(aws["FORM_RESULTS_BUCKET"])
    bucket.object_versions.delete()
    bucket.delete()
    yield
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket.name, CreateBucketConfiguration={"LocationConstraint": s3.meta.region_name})
    s3.put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"})


def test_a_form_return_is_not_acknowledged_before_its_answers_are_stored(
    callback_app, orders_table, results_bucket_unavailable, lambda_context
) -> None:
    event, form_order_id = event_from("callback-completed.json")
    assert put(callback_app, event, lambda_context) == (500, {"success": False})  # ePROM sends it again
    assert item(orders_table, form_order_id) is None


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


def test_lone_surrogates_in_answers_survive(callback_app, orders_table, aws, lambda_context) -> None:
    body = '{"apiKey": "%s", "formOrderId": "%s", "formOrderStatus": "Completed", "formData": "\\ud800"}'
    form_order_id = str(uuid.uuid4())
    assert put(callback_app, with_body(body % (API_KEY, form_order_id)), lambda_context) == (200, {"success": True})
    document = stored_answers(aws, item(orders_table, form_order_id)["answers"])
    assert json.loads(document)["formData"] == "\ud800"


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
