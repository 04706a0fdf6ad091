"""PrivacySettingsFunction (get, set, list) against the ePROM simulator over HTTP and moto over HTTP: typed replies,
ePROM's answers classified, `set` safe to repeat, a list paged into one NDJSON object, nothing personal out."""

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from conftest import API_KEY, CapturedOutput, handler_module

from buildtools.schemas import privacy_reply_errors
from local.eprom_simulator import EpromSimulator
from local.invoke_front import InvokeFront
from local.lambda_runtime import LambdaContext
from local.stack import CONSENT_PVK_ID, RESERVATION_PVK_ID

PERSON = "26073941651"
OTHER_PERSON = "17048522718"
SET_PATH, GET_PATH = "/api/v2/setpersonverninnstilling", "/api/v2/getpersonverninnstilling"
LIST_PATH = "/api/v2/get-residents-active-pi-for-definition"


@pytest.fixture
def privacy(aws: dict[str, str]) -> Any:
    return handler_module("PrivacySettingsFunction")


def ask(privacy: Any, request: Any, timeout_seconds: float = 60) -> dict[str, Any]:
    """The function's reply, which the published schema must describe."""
    reply = privacy.lambda_handler(request, LambdaContext("PrivacySettingsFunction", timeout_seconds=timeout_seconds))
    assert privacy_reply_errors(reply) == []
    return reply


def about(operation: str, national_id: str = PERSON, pvk_id: str = RESERVATION_PVK_ID, **fields: Any) -> dict:
    return {"operation": operation, "nationalId": national_id, "type": "Reservasjon", "pvkId": pvk_id} | fields


def sent(eprom: EpromSimulator, path: str) -> list[dict[str, Any]]:
    return [body for called, body in eprom.pvk_requests if called == path]


def stored(reply: dict[str, Any]) -> bytes:
    answer = boto3.client("s3").get_object(Bucket=reply["bucket"], Key=reply["key"], VersionId=reply["versionId"])
    return answer["Body"].read()


def with_residents(eprom: EpromSimulator, count: int, pvk_id: str = RESERVATION_PVK_ID) -> None:
    eprom.config.pvk_definitions = eprom.config.pvk_definitions | {
        pvk_id: replace(eprom.config.pvk_definitions[pvk_id], generated_residents=count)
    }


# --- get and set ----------------------------------------------------------------------------------------------------


def test_get_answers_the_setting_and_never_the_national_id(privacy, eprom) -> None:
    reply = ask(privacy, about("get"))
    assert reply == {"type": "Reservasjon", "pvkId": RESERVATION_PVK_ID, "name": "Reservasjon mot registrering",
                     "status": "IkkeAktiv", "sequenceNumber": 0, "createdDateTimeOffset": None,
                     "lastChangedDateTimeOffset": None}  # fmt: skip
    assert sent(eprom, GET_PATH) == [{"nationalId": PERSON, "type": 0, "pvkId": RESERVATION_PVK_ID}]
    assert eprom.order_headers[-1]["Authorization"] == f"Basic {API_KEY}"


def test_a_set_is_read_back_and_the_same_set_again_changes_nothing(privacy, eprom) -> None:
    assert ask(privacy, about("set", status="Aktiv")) == {"changed": True}
    setting = ask(privacy, about("get"))
    assert (setting["status"], setting["sequenceNumber"]) == ("Aktiv", 1)
    assert setting["lastChangedDateTimeOffset"] is not None
    assert ask(privacy, about("set", status="Aktiv")) == {"changed": False}
    assert ask(privacy, about("get"))["sequenceNumber"] == 1
    assert ask(privacy, about("set", status="IkkeAktiv")) == {"changed": True}
    assert ask(privacy, about("get"))["status"] == "IkkeAktiv"


@pytest.mark.parametrize(
    ("given_type", "given_status"), [("Samtykke", "Aktiv"), (1, 1), ("1", "1"), ("samtykke", "aktiv")]
)
def test_codes_by_name_or_number_reach_eprom_as_its_numbers(given_type, given_status, privacy, eprom) -> None:
    request = about("set", pvk_id=CONSENT_PVK_ID, type=given_type, status=given_status)
    assert ask(privacy, request) == {"changed": True}
    assert sent(eprom, SET_PATH) == [{"nationalId": PERSON, "type": 1, "pvkId": CONSENT_PVK_ID, "status": 1}]


@pytest.mark.parametrize("fault", ["rate_lost_answer", "rate_late_answer"])
@pytest.mark.parametrize(("before", "wanted"), [(None, "Aktiv"), ("Aktiv", "IkkeAktiv")])
def test_a_set_whose_answer_was_lost_is_sent_again_unchanged_and_never_flips(fault, before, wanted, privacy, eprom):
    """ePROM carried out the first attempt and its answer was lost (a gateway's 504, or no answer in time): the same
    state is asked for again, which leaves it as asked (ePROM then says IkkeEndret)."""
    if before:
        assert ask(privacy, about("set", status=before)) == {"changed": True}
    eprom.pvk_requests.clear()
    setattr(eprom.config, fault, 1.0)
    eprom.config.max_faults_per_order, eprom.config.timeout_seconds = 1, 2.0  # one fault; a stall beyond the read
    assert ask(privacy, about("set", status=wanted)) == {"changed": False}  # the retry found it done
    status = {"Aktiv": 1, "IkkeAktiv": 0}[wanted]
    assert (
        sent(eprom, SET_PATH) == [{"nationalId": PERSON, "type": 0, "pvkId": RESERVATION_PVK_ID, "status": status}] * 2
    )
    setattr(eprom.config, fault, 0.0)
    setting = ask(privacy, about("get"))
    assert setting["status"] == wanted
    assert setting["sequenceNumber"] == (2 if before else 1)  # changed once by this request, never back and forth


def test_timeouts_and_5xx_are_tried_again_within_the_call(privacy, eprom) -> None:
    eprom.config.rate_500, eprom.config.max_faults_per_order = 1.0, 2
    assert ask(privacy, about("get"))["status"] == "IkkeAktiv"
    eprom.config.rate_500, eprom.config.rate_timeout, eprom.config.timeout_seconds = 0.0, 1.0, 2.0
    eprom.config.max_faults_per_order = 1  # a read timeout (1 s here) takes most of a test's call time (6 s)
    assert ask(privacy, about("set", status="Aktiv")) == {"changed": True}
    assert eprom.faults["500"] == 2 and eprom.faults["timeout"] == 1


@pytest.mark.slow
@pytest.mark.parametrize(("fault", "error_class"), [("rate_pvk_502", "PvkUnavailable"), ("rate_500", "Transient")])
def test_a_failure_that_lasts_ends_the_call_with_its_class(fault, error_class, privacy, eprom) -> None:
    setattr(eprom.config, fault, 1.0)
    reply = ask(privacy, about("get"))
    assert reply["error"]["class"] == error_class
    assert sum(eprom.faults.values()) > 1  # tried again until PRIVACY_CALL_SECONDS ran out


@pytest.mark.slow
def test_retries_end_before_the_invocation_does(privacy, eprom) -> None:
    eprom.config.rate_500 = 1.0
    context = LambdaContext("PrivacySettingsFunction", timeout_seconds=4.5)  # shorter than PRIVACY_CALL_SECONDS
    reply = privacy.lambda_handler(about("get"), context)
    assert reply["error"]["class"] == "Transient"
    assert context.get_remaining_time_in_millis() > 0  # answered, not cut off by Lambda


def test_eproms_400_is_refused_by_eprom_with_its_message(privacy, eprom) -> None:
    eprom.config.pvk_part_code = None
    reply = ask(privacy, {"operation": "list", "pvkId": RESERVATION_PVK_ID})
    assert reply["error"]["class"] == "RefusedByEprom"
    assert "PvkPart" in reply["error"]["reason"]


def test_a_key_ePROM_refuses_is_unauthorized(privacy, eprom) -> None:
    eprom.config.api_key = "a-key-the-secret-does-not-hold"
    assert ask(privacy, about("get"))["error"]["class"] == "Unauthorized"


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ("get", "the request must be a JSON object"),
        ([PERSON], "the request must be a JSON object"),
        (None, "the request must be a JSON object"),
        ({"nationalId": PERSON}, "operation"),
        ({"operation": PERSON}, "operation"),
        (about("get", national_id="15499923810"), "nationalId"),  # H-nummer
        (about("get", national_id="26073941652"), "nationalId"),  # control digits
        (about("get", type=PERSON), "type"),
        (about("set"), "status"),
        (about("get", pvk_id=PERSON), "pvkId"),
        (about("get") | {"nationalID": PERSON}, "an unknown field"),  # a typo of nationalId
        (about("get") | {PERSON: "x"}, "an unknown field"),
    ],
)
def test_a_bad_request_names_the_field_never_the_value(request_, field, privacy, eprom) -> None:
    reply = ask(privacy, request_)
    assert reply["error"]["class"] == "InvalidRequest"
    assert field in reply["error"]["reason"]
    assert PERSON not in reply["error"]["reason"] and "15499923810" not in reply["error"]["reason"]
    assert eprom.pvk_requests == []


# --- list -------------------------------------------------------------------------------------------------------------


def test_a_list_is_every_page_until_the_reference_is_0_in_one_ndjson_object(privacy, eprom, aws) -> None:
    with_residents(eprom, 2500)
    assert ask(privacy, about("set", national_id=OTHER_PERSON, status="Aktiv")) == {"changed": True}
    reply = ask(privacy, {"operation": "list", "pvkId": RESERVATION_PVK_ID})
    assert set(reply) == {"bucket", "key", "versionId", "sha256", "count"}
    assert reply["bucket"] == aws["FORM_RESULTS_BUCKET"] and reply["key"].startswith(
        f"privacy/lists/{RESERVATION_PVK_ID}/"
    )
    content = stored(reply)
    assert hashlib.sha256(content).hexdigest() == reply["sha256"]
    lines = [json.loads(line) for line in content.splitlines()]
    assert reply["count"] == len(lines) == 2501
    assert lines[0]["nationalId"] == OTHER_PERSON and lines[0]["sequenceNumber"] == 1
    assert set(lines[1]) == {"nationalId", "sequenceNumber", "createdDateTimeOffset", "lastChangedDateTimeOffset"}
    assert len({line["nationalId"] for line in lines}) == 2501
    assert [body["pagingReference"] for body in sent(eprom, LIST_PATH)] == [0, 1, 2]


def test_a_list_without_residents_is_an_empty_object(privacy, eprom) -> None:
    reply = ask(privacy, {"operation": "list", "pvkId": CONSENT_PVK_ID})
    assert reply["count"] == 0 and stored(reply) == b"" and reply["sha256"] == hashlib.sha256(b"").hexdigest()


def test_a_list_that_would_never_end_stops_and_leaves_nothing(privacy, eprom, aws) -> None:
    with_residents(eprom, 2500)
    eprom.config.pvk_list_fault = "repeated_reference"
    reply = ask(privacy, {"operation": "list", "pvkId": RESERVATION_PVK_ID})
    assert reply["error"]["class"] == "PvkUnavailable"
    assert nothing_left_of_lists(aws)


@pytest.mark.slow
def test_a_list_whose_page_fails_until_the_deadline_leaves_nothing(privacy, eprom, aws) -> None:
    with_residents(eprom, 2500)
    eprom.config.pvk_list_fault = "502"
    reply = ask(privacy, {"operation": "list", "pvkId": RESERVATION_PVK_ID}, timeout_seconds=26)
    assert reply["error"]["class"] == "PvkUnavailable" and "after 1000 residents in 1 pages" in reply["error"]["reason"]
    assert nothing_left_of_lists(aws)


def nothing_left_of_lists(aws: dict[str, str]) -> bool:
    """No list object of the definition (a test before may have left whole ones), and no upload left open."""
    s3 = boto3.client("s3")
    uploads = s3.list_multipart_uploads(Bucket=aws["FORM_RESULTS_BUCKET"], Prefix="privacy/lists/").get("Uploads", [])
    return uploads == []


# --- through Lambda's Invoke, and what reaches logs -------------------------------------------------------------------


def test_invoked_through_lambda_a_request_over_6_mb_is_refused_and_a_list_reply_stays_small(privacy, eprom) -> None:
    with_residents(eprom, 5000)
    with InvokeFront({"PrivacySettingsFunction": privacy.lambda_handler}) as front:
        client = boto3.client("lambda", endpoint_url=front.base_url)
        with pytest.raises(ClientError) as refused:
            client.invoke(
                FunctionName="PrivacySettingsFunction", Payload=json.dumps(about("get") | {"x": "y" * 6_300_000})
            )
        assert refused.value.response["Error"]["Code"] == "RequestTooLargeException"
        with pytest.raises(ClientError) as unreadable:
            client.invoke(FunctionName="PrivacySettingsFunction", Payload=b'{"operation": "get", ')
        assert unreadable.value.response["Error"]["Code"] == "InvalidRequestContentException"
        answer = client.invoke(FunctionName="PrivacySettingsFunction",
                               Payload=json.dumps({"operation": "list", "pvkId": RESERVATION_PVK_ID}))  # fmt: skip
    assert "FunctionError" not in answer
    payload = answer["Payload"].read()
    assert json.loads(payload)["count"] == 5000 and len(payload) < 1000


def test_no_national_id_or_key_reaches_logs_metrics_or_replies(privacy, eprom, capfd) -> None:
    captured = CapturedOutput(capfd)
    try:
        with_residents(eprom, 10)
        requests = [about("set", status="Aktiv"), about("get"), {"operation": "list", "pvkId": RESERVATION_PVK_ID},
                    about("get", national_id="26073941652"), about("get") | {PERSON: 1}]  # fmt: skip
        replies = [ask(privacy, request) for request in requests]
        eprom.config.api_key = "wrong"
        replies.append(ask(privacy, about("get")))
        text = captured.text() + json.dumps(replies)
    finally:
        captured.restore()
    assert "privacy request answered" in text
    assert PERSON not in text and "26073941652" not in text and API_KEY not in text
    listed = stored(replies[2]).decode()
    assert all(line.split('"')[3] not in text for line in listed.splitlines())


def test_the_privacy_contract_imports_no_pydantic() -> None:
    """eprom.privacy is read by hand: pydantic's import alone is about a quarter of a cold start's baseline
    (docs/performance.md)."""
    code = "import sys, eprom.privacy; assert 'pydantic' not in sys.modules, 'pydantic imported'"
    layer = Path(__file__).resolve().parents[2] / "layers" / "shared"
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(layer)})  # noqa: S603
