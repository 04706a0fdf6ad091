"""The replication callback, PUT /api/PersonvernInnstilling on StatusCallbackFunction: REST v1 proxy events -> the
handler -> moto's S3 and EventBridge over HTTP. The key in each place ePROM may put it, the change stored as received
(the key cut out) before it is announced and acknowledged, the same change twice one event, no national id out."""

import hashlib
import json
import time
import uuid
from typing import Any

import boto3
import pytest
import requests
from conftest import API_KEY, PREVIOUS_API_KEY, CapturedOutput

from local import iam
from local.callback_front import CallbackFront
from local.lambda_runtime import LambdaContext, rest_api_event
from local.stack import CONSENT_PVK_ID, RESERVATION_PVK_ID

PERSON = "26073941651"
PATH = "/api/PersonvernInnstilling"


def change(**fields: Any) -> dict[str, Any]:
    """Hemit's example of the callback, for a definition of its own (a fresh one per test: its objects are its own)."""
    return {
        "nationalId": PERSON,
        "id": str(uuid.uuid4()),
        "name": "Reservasjon mot registrering",
        "status": "RES",
    } | fields


def put(callback_app: Any, body: str | None, headers: dict[str, str] | None = None, path: str = PATH,
        method: str = "PUT") -> tuple[int, dict[str, Any]]:  # fmt: skip
    event = rest_api_event(method, path, {"Content-Type": "application/json"} | (headers or {}), body)
    response = callback_app.lambda_handler(event, LambdaContext("StatusCallbackFunction"))
    return response["statusCode"], json.loads(response["body"])


def stored_changes(aws: dict[str, str], pvk_id: str) -> list[dict[str, Any]]:
    s3 = boto3.client("s3")
    listed = s3.list_object_versions(Bucket=aws["FORM_RESULTS_BUCKET"], Prefix=f"privacy/changes/{pvk_id}/")
    return listed.get("Versions", [])


def content(aws: dict[str, str], key: str, version_id: str) -> bytes:
    answer = boto3.client("s3").get_object(Bucket=aws["FORM_RESULTS_BUCKET"], Key=key, VersionId=version_id)
    return answer["Body"].read()


KEY_PLACES = {
    "Authorization header": lambda key, body: ({"Authorization": f"Basic {key}"}, body),
    "ApiKey header": lambda key, body: ({"ApiKey": key}, body),
    "apikey header, lower case": lambda key, body: ({"apikey": key}, body),
    "apiKey in the body": lambda key, body: ({}, f'{{"apiKey": "{key}", {body[1:]}'),
}


@pytest.mark.parametrize("place", list(KEY_PLACES))
@pytest.mark.parametrize("key", [API_KEY, PREVIOUS_API_KEY])
def test_a_change_with_the_key_in_any_place_is_stored_as_received_and_announced(
    place, key, callback_app, aws, outcome_events
) -> None:
    sent = change()
    body = json.dumps(sent, ensure_ascii=False)  # as ePROM writes it, byte for byte
    headers, received = KEY_PLACES[place](key, body)
    assert put(callback_app, received, headers) == (200, {"success": True})
    [version] = stored_changes(aws, sent["id"])
    document = content(aws, version["Key"], version["VersionId"])
    assert document == body.encode()  # the received text, with the key's member cut out
    [event] = outcome_events.received()
    assert event["detailType"] == "PrivacySettingChanged" and event["source"] == "eprom.integration"
    assert {name: event[name] for name in ("pvkId", "name", "status")} == {
        "pvkId": sent["id"], "name": "Reservasjon mot registrering", "status": "RES"}  # fmt: skip
    sha256 = hashlib.sha256(document).hexdigest()
    assert event["change"] == {"bucket": aws["FORM_RESULTS_BUCKET"], "key": version["Key"],
                               "versionId": version["VersionId"], "sha256": sha256}  # fmt: skip
    assert PERSON not in json.dumps(event)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic wrong-key"},
        {"ApiKey": "wrong-key"},
        {"Authorization": API_KEY},
        {"Authorization": f"Bearer {API_KEY}"},
    ],
    ids=["no key", "wrong Authorization", "wrong ApiKey", "no Basic", "another scheme"],
)
def test_without_an_accepted_key_nothing_is_stored_or_announced(headers, callback_app, aws, outcome_events) -> None:
    sent = change()
    assert put(callback_app, json.dumps(sent), headers) == (401, {"success": False})
    assert put(callback_app, json.dumps(sent | {"apiKey": "wrong-key"}), headers)[0] == 401
    assert stored_changes(aws, sent["id"]) == []
    assert outcome_events.received() == []


def test_one_right_key_among_several_places_is_enough(callback_app, aws) -> None:
    sent = change()
    headers = {"Authorization": "Basic not-ours", "ApiKey": API_KEY}
    assert put(callback_app, json.dumps(sent | {"apiKey": "not-ours-either"}), headers)[0] == 200


def test_the_same_change_twice_is_one_object_and_one_event_id(callback_app, aws, outcome_events) -> None:
    sent = json.dumps(change())
    for _ in range(2):  # ePROM sends again until acknowledged; a reply of ours may have been lost
        assert put(callback_app, sent, {"ApiKey": API_KEY})[0] == 200
    assert len(stored_changes(aws, json.loads(sent)["id"])) == 1
    first, again = outcome_events.received()
    assert first == again  # the same id, and the same content (occurredAt: when it was first stored)


def test_another_change_of_the_same_person_is_another_event(callback_app, aws, outcome_events) -> None:
    reserved = change(id=RESERVATION_PVK_ID)
    for status in ("RES", "IRES"):
        assert put(callback_app, json.dumps(reserved | {"status": status}), {"ApiKey": API_KEY})[0] == 200
    events = outcome_events.received()
    assert [event["status"] for event in events] == ["RES", "IRES"]
    assert len({event["eventId"] for event in events}) == 2


def test_the_trailing_slash_path_is_the_same_and_other_methods_are_refused(callback_app, aws) -> None:
    assert put(callback_app, json.dumps(change(id=CONSENT_PVK_ID, status="SAM")), {"ApiKey": API_KEY},
               path=PATH + "/")[0] == 200  # fmt: skip
    status, reply = put(callback_app, None, method="GET")
    assert status == 405 and reply["success"] is False


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps(change(status="26073941651")), "status"),
        (json.dumps(change(status="res")), "status"),
        (json.dumps(change(id="26073941651")), "id"),
        (json.dumps(change(nationalId="2607394165")), "nationalId"),
        (json.dumps({key: v for key, v in change().items() if key != "nationalId"}), "nationalId"),
    ],
)
def test_an_unreadable_change_is_refused_naming_the_field_never_the_value(body, named, callback_app, aws) -> None:
    status, reply = put(callback_app, body, {"ApiKey": API_KEY})
    assert status == 400 and reply["success"] is False
    assert named in reply["reason"] and "26073941651" not in reply["reason"] and "2607394165" not in reply["reason"]


def test_a_change_that_cannot_be_stored_is_not_acknowledged_nor_announced(callback_app, aws, outcome_events) -> None:
    sent = change()
    with iam.current().without("StatusCallbackFunction", "s3:PutObject", "PrivacyChanges"):
        assert put(callback_app, json.dumps(sent), {"ApiKey": API_KEY})[0] == 500
    assert stored_changes(aws, sent["id"]) == [] and outcome_events.received() == []


def test_a_change_that_cannot_be_announced_is_not_acknowledged_and_its_retry_is_the_same_event(
    callback_app, aws, outcome_events
) -> None:
    sent = json.dumps(change())
    with iam.current().without("StatusCallbackFunction", "events:PutEvents", "PrivacySettingChangedEvents"):
        assert put(callback_app, sent, {"ApiKey": API_KEY})[0] == 500  # stored, not announced: ePROM sends again
    [version] = stored_changes(aws, json.loads(sent)["id"])
    assert put(callback_app, sent, {"ApiKey": API_KEY})[0] == 200
    [event] = outcome_events.received()
    assert event["change"]["versionId"] == version["VersionId"]
    assert len(stored_changes(aws, json.loads(sent)["id"])) == 1


def test_no_national_id_or_key_reaches_logs_metrics_or_replies(callback_app, aws, capfd) -> None:
    captured = CapturedOutput(capfd)
    try:
        replies = [put(callback_app, json.dumps(change()), {"Authorization": f"Basic {API_KEY}"}),
                   put(callback_app, json.dumps(change() | {"apiKey": API_KEY})),
                   put(callback_app, json.dumps(change(status=PERSON)), {"ApiKey": API_KEY}),
                   put(callback_app, json.dumps(change()), {"ApiKey": "wrong-key"})]  # fmt: skip
        text = captured.text() + json.dumps(replies)
    finally:
        captured.restore()
    assert "privacy change stored and announced" in text
    assert PERSON not in text and API_KEY not in text and "wrong-key" not in text


@pytest.mark.slow
@pytest.mark.parametrize("where", ["authorization", "apikey", "body"])
def test_a_change_made_on_helsenorge_reaches_upstream_as_an_event(where, callback_app, eprom, outcome_events) -> None:
    """The simulator plays Helsenorge and ePROM; the callback comes through the HTTP front as API Gateway's events."""
    with CallbackFront(callback_app.lambda_handler) as front:
        eprom.config.callback_base_url, eprom.config.privacy_callback_key_in = front.base_url, where
        answer = requests.post(f"{eprom.base_url}/_simulator/privacy-change", timeout=5,
                               json={"nationalId": PERSON, "pvkId": RESERVATION_PVK_ID, "status": "IRES"})  # fmt: skip
        assert answer.status_code == 202
        forwarded = [callback for callback in eprom.callbacks if callback.path == "/api/PersonvernInnstilling"][-1]
        deadline = time.monotonic() + 30  # (the session's simulator may hold other tests' unacknowledged callbacks)
        while not forwarded.acknowledged:
            assert time.monotonic() < deadline, "the change was never acknowledged"
            time.sleep(0.05)
    [event] = [event for event in outcome_events.received() if event["status"] == "IRES"]  # (not other tests')
    assert (event["detailType"], event["pvkId"]) == ("PrivacySettingChanged", RESERVATION_PVK_ID)
