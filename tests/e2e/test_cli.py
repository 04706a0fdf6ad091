"""The `eprom` command against the local stack of `make serve` (moto + the ePROM simulator + the functions, in a
process of its own), asserting on what each command changed: queues, table, secret, files."""

import json
import os
import re
import stat
import tempfile
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import typer
from conftest import ANY_INPUT, STATE_VARIABLES, DeadLetters, serving, unique_reference, wait_until_indexed
from eprom.order_store import OrderStore
from eprom.orders import OrderAnswer
from eprom_cli import smoke
from eprom_cli.app import app
from eprom_cli.target import LocalState, LocalTarget
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner

from local import iam
from local.aws_resources import load_template
from local.eprom_simulator import signed_pdf
from local.stack import API_KEY, FORM_ID, PAPER_FORM_ID, RESERVATION_PVK_ID

ROOT = Path(__file__).resolve().parents[2]
ORDERS = ROOT / "events" / "orders"
TEMPLATE = load_template()


class ServedStack:
    """The stack `make serve` runs, as the operator's command and a caller of the callback reach it."""

    def __init__(self, state: dict[str, Any], stack_name: str) -> None:
        self.state = state["target"]
        self.stack_name = stack_name
        session = boto3.Session(region_name=state["region"], aws_access_key_id="testing",
                                aws_secret_access_key="testing")  # fmt: skip
        self.endpoint = self.state["endpoint_url"]
        self.sqs = session.client("sqs", endpoint_url=self.endpoint)
        self.s3 = session.client("s3", endpoint_url=self.endpoint)
        self.secrets = session.client("secretsmanager", endpoint_url=self.endpoint)
        self.cloudformation = session.client("cloudformation", endpoint_url=self.endpoint)

    def callback(self, api_key: str, form_order_id: str | None = None) -> requests.Response:
        body = {"apiKey": api_key, "formOrderId": form_order_id or str(uuid.uuid4()), "formOrderStatus": "Ordered"}
        return requests.put(f"{self.state['api_base_url']}/api/PromsFormOrder", json=body, timeout=10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedStack]:
    state_file = tmp_path_factory.mktemp("serve") / "stack.json"
    with serving(state_file, "--form-return", "Completed") as state:
        # `eprom` runs in this process: under OperatorPolicy on that stack, once the template has it (local/iam.py)
        # (named as the CloudFormation stack that test_a_deployed_stack_is_found_through_cloudformation makes)
        stack_name = f"eprom-{uuid.uuid4().hex[:8]}"
        iam.enforce({variable: state["target"][name] for name, variable in STATE_VARIABLES.items()},
                    state["region"], state["target"]["endpoint_url"], stack_name)  # fmt: skip
        yield ServedStack(state, stack_name)
    assert not state_file.exists(), "the stopped stack left its state file behind"


def eprom(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=stdin, env={"COLUMNS": "250"})  # rich wraps at 80 otherwise


def until(condition: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)
    return result


def order_file(tmp_path: Path, sample: str, **changes: Any) -> tuple[Path, dict[str, Any]]:
    body = json.loads((ORDERS / sample).read_text()) | {"orderReference": unique_reference("cli")} | changes
    path = tmp_path / f"{body['orderReference']}.json"
    path.write_text(json.dumps(body))
    return path, body


def shown(reference: str) -> list[dict[str, Any]]:
    result = eprom("--local", "orders", "show", reference, "--json")
    return json.loads(result.stdout) if result.exit_code == 0 else []


def dead_letters(queue: str = "orders") -> list[dict[str, Any]]:
    result = eprom("--local", "dead-letters", "list", "--queue", queue, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_every_command_and_option_explains_itself() -> None:
    def walk(command: Any, path: str) -> Iterator[tuple[str, Any]]:  # typer's own click: duck-typed
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, f"{path} {name}")

    root = typer.main.get_command(app)
    commands = dict(walk(root, "eprom"))
    assert {"eprom orders send", "eprom orders show", "eprom orders orphans", "eprom orders answers",
            "eprom dead-letters list", "eprom dead-letters redrive", "eprom dead-letters export",
            "eprom api-key rotate", "eprom smoke", "eprom messages send", "eprom messages show",
            "eprom privacy get", "eprom privacy set", "eprom privacy list"} <= set(commands)  # fmt: skip
    for path, command in commands.items():
        assert command.help, f"{path} has no help"
        for parameter in command.params:
            if parameter.param_type_name == "option" and parameter.name != "help":
                assert parameter.help, f"{path} {parameter.name} has no help"
        result = eprom(*path.split()[1:], "--help")
        assert result.exit_code == 0, result.output


def test_privacy_set_get_and_list_through_the_function_masked_unless_revealed(stack: ServedStack) -> None:
    """`eprom privacy` invokes PrivacySettingsFunction (under OperatorPolicy) as upstream does; the national id
    typed is shown masked, and the residents of a list too, unless --reveal."""
    person, pvk = "17048522718", RESERVATION_PVK_ID
    result = eprom("--local", "privacy", "set", person, "--pvk-id", pvk, "--status", "Aktiv")
    assert result.exit_code == 0, result.output
    assert f"Reservasjon {pvk} of *********** is Aktiv: changed" in result.output and person not in result.output
    again = eprom("--local", "privacy", "set", person, "--pvk-id", pvk, "--status", "1")
    assert "it was so already (nothing changed)" in again.output
    got = eprom("--local", "privacy", "get", person, "--pvk-id", pvk)
    assert got.exit_code == 0 and " status                     Aktiv" in got.output and person not in got.output
    assert person in eprom("--local", "privacy", "get", person, "--pvk-id", pvk, "--reveal").output
    as_json = json.loads(eprom("--local", "privacy", "get", person, "--pvk-id", pvk, "--json").stdout)
    assert as_json["status"] == "Aktiv" and person not in json.dumps(as_json)
    listed = eprom("--local", "privacy", "list", "--pvk-id", pvk)
    assert listed.exit_code == 0 and "residents with an active setting" in listed.output
    assert "***********" in listed.output and person not in listed.output
    assert person in eprom("--local", "privacy", "list", "--pvk-id", pvk, "--reveal").output
    bad = eprom("--local", "privacy", "get", "12345678901", "--pvk-id", pvk)
    assert bad.exit_code == 1 and "InvalidRequest: nationalId" in bad.output and "12345678901" not in bad.output


def test_without_a_target_one_line_and_exit_1() -> None:
    result = eprom("orders", "orphans")
    assert result.exit_code == 1
    assert "choose the stack: --stage NAME, --stack NAME or --local" in result.output
    assert "Traceback" not in result.output


def test_a_malformed_order_file_stops_the_whole_send(stack: ServedStack, tmp_path: Path) -> None:
    valid, body = order_file(tmp_path, "basic.json")
    malformed = tmp_path / "malformed.json"
    malformed.write_text('{"orderReference": "x", "formId": ')
    unknown_field, _ = order_file(tmp_path, "basic.json", distribusjonRule="Basic")
    result = eprom("--local", "orders", "send", str(valid), str(malformed), str(unknown_field))
    assert result.exit_code == 1
    assert "2 of 3 files invalid: nothing sent" in result.output
    assert "an unknown field at the top level" in result.output  # per field, no value (nor key name) quoted
    assert body["nationalId"] not in result.output

    later, later_body = order_file(tmp_path, "basic.json")
    result = eprom("--local", "orders", "send", "--skip-invalid", str(later), str(malformed))
    assert result.exit_code == 0, result.output
    assert "skipped 1 invalid file(s)" in result.output
    assert until(lambda: shown(later_body["orderReference"]))[0]["orderReference"] == later_body["orderReference"]
    # The poller takes messages in the order they were sent: had the first send sent `valid`, it was placed by now
    assert shown(body["orderReference"]) == []


def test_show_hides_the_single_use_code_unless_revealed_and_answers_download(
    stack: ServedStack, tmp_path: Path
) -> None:
    path, body = order_file(tmp_path, "no-distribution.json")
    assert eprom("--local", "orders", "send", str(path)).exit_code == 0
    [item] = until(lambda: [i for i in shown(body["orderReference"]) if "answers" in i])
    assert item["status"] == "Completed"

    plain = eprom("--local", "orders", "show", body["orderReference"])
    assert plain.exit_code == 0 and item["formOrderId"] in plain.output and "Completed" in plain.output
    assert f"s3 key answers/{item['formOrderId']}.json" in plain.output
    revealed = eprom("--local", "orders", "show", body["orderReference"], "--reveal", "--json")
    [full] = json.loads(revealed.stdout)
    assert full["singleUseCode"] and full["singleUseCode"] not in plain.output
    assert "singleUseCode" not in item  # the --json of plain show filters it too
    assert full["orderFingerprint"].startswith("hmac-sha256:") and "orderFingerprint" not in item
    assert "recorded by CloudTrail" in revealed.stderr

    out = tmp_path / "export"
    result = eprom("--local", "orders", "answers", body["orderReference"], "--out", str(out))
    assert result.exit_code == 0, result.output
    written = out / f"{item['formOrderId']}-answers.json"
    stored = stack.s3.get_object(Bucket=stack.state["bucket"], Key=item["answers"]["key"])["Body"].read()
    assert written.read_bytes() == stored
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    again = eprom("--local", "orders", "answers", body["orderReference"], "--out", str(out))
    assert (
        again.exit_code == 1 and "exists already: not overwritten" in again.stderr and "Traceback" not in again.output
    )
    assert written.read_bytes() == stored


def test_an_unknown_reference_is_one_line_and_exit_1(stack: ServedStack, tmp_path: Path) -> None:
    for command in ("show", "answers"):
        extra = ["--out", str(tmp_path / "never")] if command == "answers" else []
        result = eprom("--local", "orders", command, "no-such-reference", *extra)
        assert result.exit_code == 1
        assert "no order with orderReference no-such-reference" in result.output
    assert not (tmp_path / "never").exists()


def test_orphans_are_the_items_only_callbacks_made(stack: ServedStack) -> None:
    form_order_id = str(uuid.uuid4())
    assert stack.callback(API_KEY, form_order_id).status_code == 200
    result = eprom("--local", "orders", "orphans", "--json")
    assert result.exit_code == 0, result.output
    orphans = {item["formOrderId"]: item for item in json.loads(result.stdout)}
    assert orphans[form_order_id]["status"] == "Ordered"
    assert all("orderReference" not in item for item in orphans.values())


def test_dead_letters_list_redrive_and_export(stack: ServedStack, tmp_path: Path) -> None:
    path, body = order_file(tmp_path, "refused-unknown-form.json")
    reference = body["orderReference"]
    assert eprom("--local", "orders", "send", str(path)).exit_code == 0
    [letter] = until(lambda: [d for d in dead_letters() if d["reference"] == reference])
    assert letter["rejectionClass"] == "RefusedByEprom" and "No form with id=" in letter["rejectionReason"]
    assert dead_letters("documents") == []

    dry = eprom("--local", "dead-letters", "redrive", "--reference", reference, "--dry-run")
    assert dry.exit_code == 0 and "1 would be sent back" in dry.output
    assert [d["messageId"] for d in dead_letters() if d["reference"] == reference] == [letter["messageId"]]

    moved = eprom("--local", "dead-letters", "redrive", "--reference", reference)
    assert moved.exit_code == 0, moved.output
    # Back through the placer, which refuses it again (the form is still unknown): a new dead letter, the old gone.
    [again] = until(lambda: [d for d in dead_letters() if d["reference"] == reference and
                             d["messageId"] != letter["messageId"]])  # fmt: skip
    assert letter["messageId"] not in {d["messageId"] for d in dead_letters()}
    assert again["rejectionClass"] == "RefusedByEprom"

    out = tmp_path / "dead"
    exported = eprom("--local", "dead-letters", "export", "--reference", reference, "--out", str(out), "--delete")
    assert exported.exit_code == 0, exported.output
    assert json.loads((out / f"{reference}.{again['messageId']}.json").read_text()) == body
    assert reference not in {d["reference"] for d in dead_letters()}

    nothing = eprom("--local", "dead-letters", "redrive", "--reference", reference)
    assert nothing.exit_code == 1
    assert "no dead letters match" in nothing.output or "empty" in nothing.output


def test_messages_send_uploads_the_pdf_and_show_finds_the_letter_by_reference_and_by_its_id(
    stack: ServedStack, tmp_path: Path
) -> None:
    body = json.loads((ROOT / "events" / "messages" / "letter.json").read_text())
    reference = unique_reference("cli-letter")
    body |= {"messageReference": reference, "documents": [{"key": f"documents/{reference}.pdf", "title": "A",
                                                             "main": True}]}  # fmt: skip
    path, pdf = tmp_path / "letter.json", tmp_path / "brev.pdf"
    path.write_text(json.dumps(body))
    pdf.write_bytes(signed_pdf(reference, 5_000))
    result = eprom("--local", "messages", "send", str(path), "--document", f"documents/{reference}.pdf={pdf}")
    assert result.exit_code == 0, result.output
    assert f"uploaded {pdf} as documents/{reference}.pdf" in result.output

    def delivered() -> dict[str, Any] | None:
        shown = eprom("--local", "messages", "show", reference, "--json")
        item = json.loads(shown.stdout) if shown.exit_code == 0 else None
        return item if item and item.get("status") == "Delivered" else None

    item = until(delivered)
    assert (item["kind"], item["notificationChannel"]) == ("letter", "Helsenorge")
    assert body["nationalId"] not in json.dumps(item)
    by_id = until(lambda: (r := eprom("--local", "messages", "show", item["messageToCitizenId"])).exit_code == 0 and r)
    assert reference in by_id.output and "Sent" in by_id.output


def test_a_refused_message_is_in_dead_letters_of_the_messages_queue(stack: ServedStack, tmp_path: Path) -> None:
    path = tmp_path / "sms.json"
    reference = unique_reference("cli-sms")
    path.write_text(json.dumps({"messageReference": reference, "kind": "sms", "text": "Hei",
                                "phoneNumber": "+4791234567", "typo": 1}))  # fmt: skip
    refused = eprom("--local", "messages", "send", str(path))
    assert refused.exit_code == 1 and "is not a valid message" in refused.output
    assert "an unknown field" in refused.output
    assert "+4791234567" not in refused.output
    stack.sqs.send_message(QueueUrl=stack.state["message_queue_url"], MessageBody=path.read_text())  # as upstream
    [letter] = until(lambda: [d for d in dead_letters("messages") if d["reference"] == reference])
    assert letter["rejectionClass"] == "InvalidMessage" and letter["queue"] == "messages"
    assert reference not in {d["reference"] for d in dead_letters("orders")}
    out = tmp_path / "dead"
    exported = eprom("--local", "dead-letters", "export", "--queue", "messages", "--reference", reference,
                     "--out", str(out), "--delete")  # fmt: skip
    assert exported.exit_code == 0, exported.output
    assert reference not in {d["reference"] for d in dead_letters("messages")}


def test_a_message_reference_is_masked_as_an_order_reference_is(stack: ServedStack, tmp_path: Path) -> None:
    """A messageReference may hold a long digit run (not an id standing alone, so not refused): shown masked."""
    reference = f"{unique_reference('cli-sms')}-4260739416512"
    path = tmp_path / "sms.json"
    path.write_text(
        json.dumps({"messageReference": reference, "kind": "sms", "text": "Hei", "phoneNumber": "+4791234567"})
    )
    sent = eprom("--local", "messages", "send", str(path))
    assert sent.exit_code == 0 and "messageReference " in sent.output, sent.output
    assert "4260739416512" not in sent.output
    shown = until(lambda: (r := eprom("--local", "messages", "show", reference)).exit_code == 0 and r)
    assert "messageReference" in shown.output and "4260739416512" not in shown.output
    missing = eprom("--local", "messages", "show", reference + "0")
    assert missing.exit_code == 1 and "no message" in missing.output and "42607394165120" not in missing.output


def test_export_delete_keeps_every_letter_that_shares_a_reference(stack: ServedStack, tmp_path: Path) -> None:
    """Files are named per message, so letters of one reference do not overwrite each other before the delete."""
    reference = unique_reference("cli")
    bodies = [json.dumps({"orderReference": reference, "copy": copy}) for copy in range(3)]
    for body in bodies:
        stack.sqs.send_message(QueueUrl=stack.state["dead_letter_queue_url"], MessageBody=body,
                               MessageAttributes={"rejectionClass": {"DataType": "String",
                                                                     "StringValue": "InvalidMessage"}})  # fmt: skip
    out = tmp_path / "dead"
    exported = eprom("--local", "dead-letters", "export", "--reference", reference, "--out", str(out), "--delete")
    assert exported.exit_code == 0, exported.output
    files = sorted(out.iterdir())
    assert sorted(path.read_text() for path in files) == sorted(bodies)  # every letter, none overwritten
    assert all(path.name.startswith(f"{reference}.") for path in files)
    assert "deleted 3 from the dead-letter queue" in exported.output
    assert reference not in {d["reference"] for d in dead_letters()}


def test_redrive_sends_one_of_identical_copies_and_deletes_the_others_after_it(stack: ServedStack) -> None:
    reference = unique_reference("cli")
    body = json.dumps(json.loads((ORDERS / "basic.json").read_text()) | {"orderReference": reference})
    for attempt in ("first", "second", "third"):  # one order, parked three times
        stack.sqs.send_message(
            QueueUrl=stack.state["dead_letter_queue_url"], MessageBody=body,
            MessageAttributes={"rejectionClass": {"DataType": "String", "StringValue": "Ambiguous"},
                               "ambiguousAttemptId": {"DataType": "String", "StringValue": attempt}},
        )  # fmt: skip
    dry = eprom("--local", "dead-letters", "redrive", "--reference", reference, "--dry-run")
    assert dry.exit_code == 0 and "1 would be sent back and 2 older copies of them deleted" in dry.output, dry.output
    assert len([d for d in dead_letters() if d["reference"] == reference]) == 3

    moved = eprom("--local", "dead-letters", "redrive", "--class", "Ambiguous", "--reference", reference)
    assert moved.exit_code == 0, moved.output
    assert "sent 1 dead letter(s) back to their queue; deleted 2 older copies of them" in moved.output
    [item] = until(lambda: shown(reference))  # placed (no claim had that attempt: a fresh claim)
    assert item["formOrderId"]
    assert [d for d in dead_letters() if d["reference"] == reference] == []


def test_an_unknown_key_that_is_a_national_id_is_not_in_the_listed_reason(stack: ServedStack, tmp_path: Path) -> None:
    """Key names are input: the placer's reason (the DLQ attribute `dead-letters list` shows) says where, not what."""
    _, body = order_file(tmp_path, "basic.json", **{"01039494104": "x"})
    stack.sqs.send_message(QueueUrl=stack.state["order_queue_url"], MessageBody=json.dumps(body))
    [letter] = until(lambda: [d for d in dead_letters() if d["reference"] == body["orderReference"]])
    assert letter["rejectionReason"] == "invalid order message: an unknown field at the top level"
    listed = eprom("--local", "dead-letters", "list")
    assert listed.exit_code == 0 and "an unknown field at the top level" in listed.stdout
    assert "01039494104" not in listed.output


def test_a_redriven_ambiguous_message_keeps_its_class_for_the_placer(stack: ServedStack, tmp_path: Path) -> None:
    """The placer sends a redriven Ambiguous message past its remembered outcome only if the class came along."""
    _, body = order_file(tmp_path, "basic.json")
    stack.sqs.send_message(
        QueueUrl=stack.state["dead_letter_queue_url"], MessageBody=json.dumps(body),
        MessageAttributes={"rejectionClass": {"DataType": "String", "StringValue": "Ambiguous"},
                           "rejectionReason": {"DataType": "String", "StringValue": "read timeout"}},
    )  # fmt: skip
    result = eprom("--local", "dead-letters", "redrive", "--class", "Ambiguous", "--reference", body["orderReference"])
    assert result.exit_code == 0, result.output
    [item] = until(lambda: shown(body["orderReference"]))
    assert item["formOrderId"]


def test_a_reference_with_a_national_id_in_it_is_masked_but_still_found(stack: ServedStack) -> None:
    """--reference compares with the reference as sent."""
    reference = f"cli-{uuid.uuid4().hex[:8]}-pasient-26073941651"
    stack.sqs.send_message(
        QueueUrl=stack.state["dead_letter_queue_url"],
        MessageBody=json.dumps({"orderReference": reference}),
        MessageAttributes={"rejectionClass": {"DataType": "String", "StringValue": "Invalid"}},
    )
    listed = eprom("--local", "dead-letters", "list")
    assert listed.exit_code == 0 and reference[:21] + "***********" in listed.output
    assert "26073941651" not in listed.output
    dry = eprom("--local", "dead-letters", "redrive", "--reference", reference, "--dry-run")
    assert dry.exit_code == 0 and "1 would be sent back" in dry.output, dry.output
    assert "26073941651" not in dry.output


def test_api_key_rotation_keeps_both_keys_until_the_previous_is_dropped(stack: ServedStack) -> None:
    secret_id = stack.state["secret_id"]
    try:
        empty = eprom("--local", "api-key", "rotate", stdin="\n")
        assert empty.exit_code == 1 and "no usable ApiKey" in empty.output

        result = eprom("--local", "api-key", "rotate", stdin="rotated-key-1\n")
        assert result.exit_code == 0, result.output
        assert "rotated-key-1" not in result.output
        value = json.loads(stack.secrets.get_secret_value(SecretId=secret_id)["SecretString"])
        assert value == {"apiKey": "rotated-key-1", "previousApiKeys": [API_KEY]}
        assert stack.callback("rotated-key-1").status_code == 200
        assert stack.callback(API_KEY).status_code == 200  # ePROM still signing with the old one
        assert stack.callback("some-other-key").status_code == 401

        assert eprom("--local", "api-key", "rotate", "--drop-previous").exit_code == 0
        value = json.loads(stack.secrets.get_secret_value(SecretId=secret_id)["SecretString"])
        assert value == {"apiKey": "rotated-key-1", "previousApiKeys": []}
        # The functions drop it when their cached copy of the secret expires (API_KEY_MAX_AGE_SECONDS, 300 s).
        assert stack.callback("rotated-key-1").status_code == 200
    finally:
        stack.secrets.put_secret_value(SecretId=secret_id,
                                       SecretString=json.dumps({"apiKey": API_KEY, "previousApiKeys": []}))  # fmt: skip


def test_smoke_waits_for_ordered_and_names_the_api_base_url(stack: ServedStack) -> None:
    result = eprom("--local", "smoke", "--form-id", FORM_ID, "--timeout", "60")
    assert result.exit_code == 0, result.output
    assert f"ApiBaseUrl to register with Hemit: {stack.state['api_base_url']}" in result.output
    assert "Ordered" in result.output

    unknown_form_id = str(uuid.uuid4())
    for _ in range(2):  # run again after the refusal: the day's reference has two dead letters then
        unknown = eprom("--local", "smoke", "--form-id", unknown_form_id, "--timeout", "60")
        assert unknown.exit_code == 1, unknown.output
        assert "the order was refused (RefusedByEprom)" in unknown.output


def test_smoke_reports_its_own_runs_refusal_not_an_earlier_ones(stack: ServedStack) -> None:
    """An earlier run's refusal (the form was not published then) is no answer to this run's order."""
    reference = smoke.todays_reference(PAPER_FORM_ID, datetime.now(UTC).date())
    attributes = {"rejectionClass": {"DataType": "String", "StringValue": "RefusedByEprom"},
                  "rejectionReason": {"DataType": "String", "StringValue": "form is not published"}}  # fmt: skip
    stack.sqs.send_message(QueueUrl=stack.state["dead_letter_queue_url"], MessageAttributes=attributes,
                           MessageBody=json.dumps({"orderReference": reference, "formId": PAPER_FORM_ID}))  # fmt: skip

    result = eprom("--local", "smoke", "--form-id", PAPER_FORM_ID, "--timeout", "60")
    assert result.exit_code == 0, result.output
    assert "Ordered" in result.output


def test_a_deployed_stack_is_found_through_cloudformation(stack: ServedStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """--stack reads the outputs and parameters of a CloudFormation stack (here one in moto pointing at the
    local resources); a prod stage refuses the smoke test; a missing stack is one line."""
    outputs = {
        "OrderQueueUrl": stack.state["order_queue_url"],
        "OrderDeadLetterQueueUrl": stack.state["dead_letter_queue_url"],
        "SignedDocumentQueueUrl": stack.state["signed_document_queue_url"],
        "SignedDocumentDeadLetterQueueUrl": stack.state["signed_document_dead_letter_queue_url"],
        "FormOrdersTableName": stack.state["table"],
        "FormResultsBucketName": stack.state["bucket"],
        "EpromApiKeySecretArn": stack.state["secret_id"],
        "ApiBaseUrl": stack.state["api_base_url"],
    }
    template = {
        "Parameters": {"Stage": {"Type": "String"}},
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    name = stack.stack_name
    stack.cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template),
                                      Parameters=[{"ParameterKey": "Stage", "ParameterValue": "prod"}])  # fmt: skip
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    listed = eprom("--stack", name, "--region", "eu-north-1", "dead-letters", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert isinstance(json.loads(listed.stdout), list)
    refused = eprom("--stack", name, "--region", "eu-north-1", "smoke", "--form-id", FORM_ID)
    assert refused.exit_code == 1 and "refused against a prod stage" in refused.output

    missing = eprom("--stack", "no-such-stack", "--region", "eu-north-1", "orders", "orphans")
    assert missing.exit_code == 1  # OperatorPolicy reads only its own stack: another is AccessDenied, as in AWS
    assert "cannot read stack no-such-stack: AccessDenied" in missing.output
    assert "Traceback" not in missing.output


def test_a_redrive_sends_body_and_attributes_before_it_deletes(aws: dict[str, str], dead_letters) -> None:
    """What the placer needs from a redrive (rejectionClass=Ambiguous is a person's confirmation) arrives on the
    source queue, and the dead letter is gone only after the send; read on the test session's moto server."""
    from eprom_cli import dead_letters as letters
    from eprom_cli.target import Target

    sqs = boto3.client("sqs")
    source, dead = aws["ORDER_QUEUE_URL"], aws["DEAD_LETTER_QUEUE_URL"]  # the stack's: OperatorPolicy names them
    DeadLetters(source).messages()  # drained, as `dead_letters` drained the other
    attributes = {"rejectionClass": {"DataType": "String", "StringValue": "Ambiguous"},
                  "rejectionReason": {"DataType": "String", "StringValue": "read timeout after 20 s"}}  # fmt: skip
    sqs.send_message(QueueUrl=dead, MessageBody='{"orderReference": "r-1"}', MessageAttributes=attributes)
    target = Target(
        name="test", stage="qa", order_queue_url=source, dead_letter_queue_url=dead, signed_document_queue_url="",
        signed_document_dead_letter_queue_url="", table="", bucket="", secret_id="", api_base_url="",
        allow_synthetic_national_ids=True, allow_test_mode_orders=True, session=boto3.Session(),
        endpoint_url=aws["AWS_ENDPOINT_URL"],
    )  # fmt: skip
    with letters.held(target, "orders") as held:
        [letter] = held
        assert (letter.rejection_class, letter.reference) == ("Ambiguous", "r-1")
        letters.redrive(target, letter)
    [moved] = sqs.receive_message(QueueUrl=source, MessageAttributeNames=["All"])["Messages"]
    assert moved["Body"] == '{"orderReference": "r-1"}'
    # not the reason, which the source queue has no use for (up to 2 KB, it could make the message too large for it)
    assert {name: value["StringValue"] for name, value in moved["MessageAttributes"].items()} == {
        "rejectionClass": "Ambiguous"}  # fmt: skip
    assert sqs.receive_message(QueueUrl=dead, WaitTimeSeconds=0).get("Messages", []) == []


def test_a_reference_shaped_like_a_national_id_is_masked_in_listings() -> None:
    from datetime import UTC, datetime

    from eprom_cli.dead_letters import DeadLetter

    letter = DeadLetter("orders", "m", "h", '{"orderReference": "pasient-26073941651"}', {}, datetime.now(UTC), 1)
    assert letter.reference == "pasient-***********"


def test_redrive_picks_the_newest_copy_of_each_order() -> None:
    from datetime import UTC, datetime, timedelta

    from eprom_cli.dead_letters import DeadLetter, newest_per_order

    now = datetime.now(UTC)

    def letter(message_id: str, body: str, minutes_ago: int, rejection_class: str = "Ambiguous") -> DeadLetter:
        attributes = {"rejectionClass": {"DataType": "String", "StringValue": rejection_class}}
        return DeadLetter("orders", message_id, "h", body, attributes, now - timedelta(minutes=minutes_ago), 1)

    a, b = '{"orderReference": "a"}', '{"orderReference": "b"}'
    letters = [
        letter("a-old", a, 9),
        letter("a-new", a, 1),
        letter("a-mid", a, 5),
        letter("b", b, 3),
        letter("a-other-class", a, 7, "RetriesExhausted"),
        letter("a-other-body", a[:-1] + ', "x": 1}', 8),
    ]
    send, copies = newest_per_order(letters)
    assert sorted(x.message_id for x in send) == ["a-new", "a-other-body", "a-other-class", "b"]
    assert sorted(x.message_id for x in copies) == ["a-mid", "a-old"]


# --- against the test session's moto server (no `make serve`): what the command prints and writes ---------------


@pytest.fixture
def session_stack(aws: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """`--local` pointed at the test session's resources, with a secret of its own (the functions' stays as is)."""
    secret_id = boto3.client("secretsmanager").create_secret(
        Name=f"cli-{uuid.uuid4().hex[:8]}", SecretString=json.dumps({"apiKey": API_KEY, "previousApiKeys": []})
    )["ARN"]
    nowhere = "http://127.0.0.1:9"  # no callback front or simulator runs for these tests
    target = LocalTarget(
        endpoint_url=aws["AWS_ENDPOINT_URL"], api_base_url=nowhere, eprom_simulator_url=nowhere,
        **{name: aws[variable] for name, variable in STATE_VARIABLES.items()} | {"secret_id": secret_id},
    )  # fmt: skip
    state = tmp_path / "stack.json"
    LocalState(region=aws["AWS_DEFAULT_REGION"], target=target).write(state)
    monkeypatch.setenv("EPROM_LOCAL_STATE", str(state))
    # `eprom` runs under OperatorPolicy (local/iam.py): for it, this secret is the stack's
    iam.enforce(aws | {"EPROM_API_KEY_SECRET_ID": secret_id}, aws["AWS_DEFAULT_REGION"], aws["AWS_ENDPOINT_URL"])
    return target.model_dump()


@pytest.fixture
def parked(session_stack: dict[str, Any], dead_letters: Any) -> Iterator[Callable[..., None]]:
    """Puts dead letters into the session's order DLQ (emptied before and after)."""

    def park(body: str, **attributes: str) -> None:
        boto3.client("sqs").send_message(
            QueueUrl=session_stack["dead_letter_queue_url"], MessageBody=body,
            MessageAttributes={name: {"DataType": "String", "StringValue": value}
                               for name, value in attributes.items()},
        )  # fmt: skip

    yield park
    dead_letters.messages()


MARKUP = ("[/]", "[bold red]boom[/bold red]", "[link=http://x]y")


def test_data_is_never_rendered_as_markup(parked: Callable[..., None], callback_app: Any, lambda_context: Any,
                                          tmp_path: Path) -> None:  # fmt: skip
    """A "[/]" in stored data crashed orphans and dead-letters list/redrive on every run; "[bold red]" was rendered."""
    form_order_id = str(uuid.uuid4())
    event = json.loads((ROOT / "events" / "callback-ordered.json").read_text())
    event["body"] = json.dumps({"apiKey": API_KEY, "formOrderId": form_order_id, "formOrderStatus": "Ordered",
                                "notificationChannel": "[/]"})  # fmt: skip
    assert callback_app.lambda_handler(event, lambda_context)["statusCode"] == 200
    orphans = eprom("--local", "orders", "orphans")
    assert orphans.exit_code == 0, orphans.output
    [line] = [line for line in orphans.stdout.splitlines() if form_order_id in line]
    assert "[/]" in line

    reference = unique_reference("cli")
    for text in MARKUP:
        parked(json.dumps({"orderReference": reference}), rejectionClass=text, rejectionReason=text)
    listed = eprom("--local", "dead-letters", "list", "--queue", "orders")
    dry = eprom("--local", "dead-letters", "redrive", "--queue", "orders", "--class", "[/]", "--dry-run")
    exported = eprom("--local", "dead-letters", "export", "--class", "[/]", "--out", str(tmp_path / "out"))
    for result in (listed, dry, exported):
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output
    for text in MARKUP:
        assert text in listed.stdout  # shown as it is, not rendered
    assert "(RefusedByEprom)" not in dry.stdout and "([/])" in dry.stdout
    assert "([/]: [/])" in exported.stdout


# Terminal control from data: set the window's title and clear the screen (ESC, BEL), a C1 CSI, a bidi override that
# reorders what follows, a carriage return that overwrites the line, a line break that forges one.
CONTROLS = "x\x1b]0;pwned\x07\x1b[2J|\x9b31m|\u202egnp|a\rb|line\nPASS forged"


def _controls_in(output: str) -> list[str]:
    return [char for char in output if char != "\n" and unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")]


def test_control_characters_from_data_are_escaped_in_every_output(
    parked: Callable[..., None], session_stack: dict[str, Any], callback_app: Any, lambda_context: Any, tmp_path: Path
) -> None:
    """`dead-letters list` printed an orderReference of x ESC ]0;pwned BEL raw: it set the window's title."""
    reference = unique_reference("cli") + CONTROLS
    parked(json.dumps({"orderReference": reference}), rejectionClass="\u202eInvalid\x9b", rejectionReason="r\x9b")
    form_order_id, placed_reference = str(uuid.uuid4()), unique_reference("cli")
    store = OrderStore(session_stack["table"])
    store.record_placed(form_order_id, order_reference=placed_reference, order_fingerprint="f", form_id=FORM_ID,
                        response=OrderAnswer(id=uuid.UUID(form_order_id)),
                        order_expiry=datetime.now(UTC) + timedelta(days=1))  # fmt: skip
    event = json.loads((ROOT / "events" / "callback-ordered.json").read_text())
    for form_order in (form_order_id, str(uuid.uuid4())):  # the placed order, and a callback-only item
        event["body"] = json.dumps({"apiKey": API_KEY, "formOrderId": form_order, "formOrderStatus": CONTROLS,
                                    "notificationChannel": CONTROLS, "formOrderStatusErrorCode": CONTROLS})  # fmt: skip
        assert callback_app.lambda_handler(event, lambda_context)["statusCode"] == 200
    wait_until_indexed(placed_reference, session_stack["table"])
    order = tmp_path / f"order{CONTROLS.replace('/', '')}.json"
    order.write_text(json.dumps({"orderReference": reference}))

    outputs = {
        "list": eprom("--local", "dead-letters", "list", "--queue", "orders"),
        "list --json": eprom("--local", "dead-letters", "list", "--queue", "orders", "--json"),
        "redrive --dry-run": eprom("--local", "dead-letters", "redrive", "--reference", reference, "--dry-run"),
        "export": eprom("--local", "dead-letters", "export", "--reference", reference, "--out", str(tmp_path / "x")),
        "show": eprom("--local", "orders", "show", placed_reference),
        "show --json": eprom("--local", "orders", "show", placed_reference, "--json"),
        "orphans": eprom("--local", "orders", "orphans"),
        "orphans --json": eprom("--local", "orders", "orphans", "--json"),
        "send": eprom("--local", "orders", "send", str(order)),
        "show an unknown reference": eprom("--local", "orders", "show", reference),
    }
    for command, result in outputs.items():
        assert "Traceback" not in result.output, command
        assert _controls_in(result.output) == [], (command, result.output)
        assert "PASS forged" not in result.output.splitlines(), command
    assert "\\x1b]0;pwned\\x07" in outputs["list"].stdout  # shown escaped, not dropped
    assert "\\u202eInvalid\\x9b" in outputs["redrive --dry-run"].stdout
    assert "\\x1b[2J" in outputs["show"].stdout
    assert json.loads(outputs["list --json"].stdout)[0]["reference"].startswith(unique_reference("cli")[:4])


def test_show_finds_an_order_right_after_a_callback(
    session_stack: dict[str, Any], callback_app: Any, lambda_context: Any
) -> None:
    """A callback leaves the item's orderReference as it was, so DynamoDB keeps it in the index: the local stack
    hid it for a second after any write, and `orders show` said there was no such order."""
    form_order_id, reference = str(uuid.uuid4()), unique_reference("cli")
    OrderStore(session_stack["table"]).record_placed(
        form_order_id, order_reference=reference, order_fingerprint="f", form_id=FORM_ID,
        response=OrderAnswer(id=uuid.UUID(form_order_id)), order_expiry=datetime.now(UTC) + timedelta(days=1),
    )  # fmt: skip
    wait_until_indexed(reference, session_stack["table"])  # placed a while ago
    event = json.loads((ROOT / "events" / "callback-ordered.json").read_text())
    event["body"] = json.dumps({"apiKey": API_KEY, "formOrderId": form_order_id, "formOrderStatus": "Ordered"})
    assert callback_app.lambda_handler(event, lambda_context)["statusCode"] == 200
    shown_now = eprom("--local", "orders", "show", reference, "--json")
    assert shown_now.exit_code == 0, shown_now.output
    assert json.loads(shown_now.stdout)[0]["status"] == "Ordered"


def test_tables_never_wrap_off_a_terminal(parked: Callable[..., None]) -> None:
    """Piped, `dead-letters list` wrapped at 80 columns (`InvalidMessag|e`, references split over lines)."""
    reference = unique_reference("cli") + "-" + "r" * 200
    reason = "invalid order message: " + "; ".join(f"field{n}: Field required" for n in range(12))
    parked(json.dumps({"orderReference": reference}), rejectionClass="InvalidMessage", rejectionReason=reason)
    result = CliRunner().invoke(app, ["--local", "dead-letters", "list", "--queue", "orders"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    [row] = [line for line in result.stdout.splitlines() if reference in line]
    assert "InvalidMessage" in row and reason in row


def test_api_key_rotate_never_echoes_a_key_given_as_an_argument(session_stack: dict[str, Any]) -> None:
    before = boto3.client("secretsmanager").get_secret_value(SecretId=session_stack["secret_id"])["SecretString"]
    for args in (["new-key-Zq81x"], ["--drop-previous", "new-key-Zq81x"], ["--api-key=new-key-Zq81x"]):
        result = eprom("--local", "api-key", "rotate", *args, stdin="other-key\n")
        assert result.exit_code != 0
        assert "new-key-Zq81x" not in result.output
        assert "read from standard input, never from the command line" in result.output
    instead_of_rotate = eprom("--local", "api-key", "new-key-Zq81x")
    assert instead_of_rotate.exit_code == 1 and "new-key-Zq81x" not in instead_of_rotate.output
    assert "no such command" in instead_of_rotate.output and "rotate" in instead_of_rotate.output
    after = boto3.client("secretsmanager").get_secret_value(SecretId=session_stack["secret_id"])["SecretString"]
    assert after == before


@pytest.mark.parametrize("key", ["new-key-€", "nøkkel", "with\u00a0nbsp", "zero\u200bwidth"])
def test_api_key_rotate_refuses_a_key_the_authorization_header_cannot_carry(
    session_stack: dict[str, Any], key: str
) -> None:
    """With "new-key-€" in the secret every order failed with UnicodeEncodeError until RetriesExhausted."""
    before = boto3.client("secretsmanager").get_secret_value(SecretId=session_stack["secret_id"])["SecretString"]
    result = eprom("--local", "api-key", "rotate", stdin=f"{key}\n")
    assert result.exit_code == 1
    assert "is not printable ASCII without spaces" in result.output and key not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    after = boto3.client("secretsmanager").get_secret_value(SecretId=session_stack["secret_id"])["SecretString"]
    assert after == before


def test_export_creates_each_file_new_for_the_owner_only(parked: Callable[..., None], tmp_path: Path) -> None:
    """Never into an existing file (which kept its 0644), never through a symlink; one line and exit 1 instead
    of a traceback; a letter whose file was not written stays in the DLQ."""
    reference = unique_reference("cli")
    body = json.dumps({"orderReference": reference, "nationalId": "26073941651"})
    parked(body, rejectionClass="InvalidMessage", rejectionReason="r")
    out = tmp_path / "out"
    out.mkdir()
    [letter] = dead_letters_in_session()
    existing = out / f"{reference}.{letter['MessageId']}.json"
    existing.write_text("mine")
    existing.chmod(0o644)

    def export(directory: Path) -> Any:
        return eprom("--local", "dead-letters", "export", "--reference", reference, "--out", str(directory),
                     "--delete")  # fmt: skip

    refused = export(out)
    assert refused.exit_code == 1 and "exists already: not overwritten" in refused.stderr
    # the warning, the letter not written, the error
    assert "Traceback" not in refused.output and len(refused.stderr.strip().splitlines()) == 3
    assert existing.read_text() == "mine" and stat.S_IMODE(existing.stat().st_mode) == 0o644

    existing.unlink()
    elsewhere = tmp_path / "elsewhere"
    existing.symlink_to(elsewhere)  # dangling: it would be created through the link
    assert export(out).exit_code == 1 and not elsewhere.exists()
    existing.unlink()

    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for directory in (a_file, a_file / "below"):  # not a directory; cannot be created (also as root)
        result = export(directory)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert json.loads(dead_letters_in_session()[0]["Body"])["orderReference"] == reference  # never deleted

    written = export(out)
    assert written.exit_code == 0, written.output
    assert existing.read_text() == body and stat.S_IMODE(existing.stat().st_mode) == 0o600


def test_export_names_are_bounded_and_one_refused_file_stops_no_other(
    parked: Callable[..., None], tmp_path: Path
) -> None:
    """A 240-character reference made export fail with "File name too long" at that letter, every run: the ones
    behind it were never exported."""
    tag = unique_reference("cli")
    long_reference, superscripts = f"{tag}-{'r' * 240}", f"{tag}-\u00b2\u00b3x"
    references = (f"{tag}-a", long_reference, superscripts, f"{tag}-b", f"{tag}-c")
    bodies = [json.dumps({"orderReference": reference, "n": n}) for n, reference in enumerate(references)]
    for body in bodies:
        parked(body, rejectionClass="InvalidMessage", rejectionReason="r")
    out = tmp_path / "out"
    out.mkdir()
    messages = {message["Body"]: message["MessageId"] for message in dead_letters_in_session()}
    taken = out / f"{tag}-b.{messages[bodies[3]]}.json"
    taken.write_text("mine")  # this one letter cannot be written

    result = eprom("--local", "dead-letters", "export", "--class", "InvalidMessage", "--out", str(out), "--delete")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "1 of 5 not written" in result.stderr and "exists already" in result.stderr
    written = {path.read_text(): path.name for path in out.iterdir() if path != taken}
    assert sorted(written) == sorted(body for n, body in enumerate(bodies) if n != 3)  # every other letter
    assert all(len(name.encode()) <= 255 and name.isascii() for name in written.values())
    assert written[bodies[1]].startswith(long_reference[:60]) and written[bodies[1]].endswith(".json")
    assert [message["Body"] for message in dead_letters_in_session()] == [bodies[3]]  # only the one not written


def test_a_run_that_finds_the_letters_held_by_another_says_so(parked: Callable[..., None], tmp_path: Path) -> None:
    """A second concurrent redrive said "the dead-letter queue is empty" while the first held the letters."""
    parked(json.dumps({"orderReference": unique_reference("cli")}), rejectionClass="InvalidMessage")
    url = json.loads(Path(os.environ["EPROM_LOCAL_STATE"]).read_text())["target"]["dead_letter_queue_url"]
    [other_run] = boto3.client("sqs").receive_message(QueueUrl=url, VisibilityTimeout=60)["Messages"]
    try:
        for args in (["redrive"], ["export", "--out", str(tmp_path / "out")], ["list"]):
            result = eprom("--local", "dead-letters", *args, "--queue", "orders")
            # at least ours: SQS's count is approximate, and the session's queue may hold another test's leftovers
            assert re.search(r"\b[1-9]\d* held by another run", result.output), (args, result.output)
            assert "empty" not in result.output, (args, result.output)
            assert result.exit_code == (0 if args == ["list"] else 1), result.output
    finally:  # let go, as the other run would
        boto3.client("sqs").change_message_visibility(QueueUrl=url, ReceiptHandle=other_run["ReceiptHandle"],
                                                      VisibilityTimeout=0)  # fmt: skip


def test_a_redrive_sends_what_fits_and_names_the_rest_by_reference(
    parked: Callable[..., None], session_stack: dict[str, Any]
) -> None:
    """One letter SQS refused (a body near OrderQueue's largest, with its attributes) stopped the redrive of every
    letter behind it. Upstream's own attributes go back with each; our rejectionReason does not."""
    tag = unique_reference("cli")
    largest = TEMPLATE["Resources"]["OrderQueue"]["Properties"]["MaximumMessageSize"]
    skeleton = json.dumps({"orderReference": f"{tag}-big", "pad": ""})
    big = json.dumps({"orderReference": f"{tag}-big", "pad": "x" * (largest - 40 - len(skeleton))})
    small = [json.dumps({"orderReference": f"{tag}-{n}"}) for n in range(2)]
    parked(big, rejectionClass="Ambiguous", ambiguousAttemptId=str(uuid.uuid4()), rejectionReason="r" * 2000)
    for body in small:
        parked(body, rejectionClass="Ambiguous", ambiguousAttemptId=str(uuid.uuid4()), rejectionReason="read timeout",
               traceId=f"trace-{body[-4:-2]}")  # fmt: skip

    result = eprom("--local", "dead-letters", "redrive", "--class", "Ambiguous")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "sent 2 dead letter(s) back" in result.stdout
    [refused_line] = [line for line in result.stderr.splitlines() if f"{tag}-big" in line]
    assert "not sent, stays in the dead-letter queue" in refused_line and "shorter than" in refused_line
    assert "1 of 3 not sent" in result.stderr
    assert [message["Body"] for message in dead_letters_in_session()] == [big]

    redriven = [m for m in DeadLetters(session_stack["order_queue_url"]).messages() if tag in m["Body"]]
    assert sorted(m["Body"] for m in redriven) == sorted(small)
    for message in redriven:
        attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
        assert attributes.keys() == {"rejectionClass", "ambiguousAttemptId", "traceId"}  # no rejectionReason


def dead_letters_in_session() -> list[dict[str, Any]]:
    url = json.loads(Path(os.environ["EPROM_LOCAL_STATE"]).read_text())["target"]["dead_letter_queue_url"]
    return boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]


def test_send_skip_invalid_fails_when_every_order_was_invalid(session_stack: dict[str, Any], tmp_path: Path) -> None:
    malformed = tmp_path / "malformed.json"
    malformed.write_text('{"orderReference": ')
    result = eprom("--local", "orders", "send", "--skip-invalid", str(malformed))
    assert result.exit_code == 1
    assert "nothing sent" in result.stderr


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")  # the repr of a 100 kB body
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=ANY_INPUT)
def test_send_refuses_any_unreadable_file_without_a_traceback(session_stack: dict[str, Any], body: str) -> None:
    """`"[" * 50000` as metadata printed a RecursionError's traceback: the file is invalid like any other."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "order.json"
        path.write_text(body)
        result = eprom("--local", "orders", "send", str(path))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code != 0:
        assert result.exit_code == 1 and "is not a valid order" in result.stderr, result.output


def test_an_error_line_is_one_line_however_narrow_the_output() -> None:
    """Scripts, CI and `2>file` have no terminal; rich wrapped at 80 columns and a reader got two lines."""
    result = CliRunner().invoke(app, ["orders", "orphans"], env={"COLUMNS": "40"})
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: choose the stack: --stage NAME, --stack NAME or --local (before the command, e.g. `eprom --stage test "
        "orders ...`)"
    ]


# --- day 2: deleting dead letters, outcome events again, adopting an Ambiguous order ---------------------------------


def test_dead_letters_delete_refuses_what_was_not_exported(parked: Callable[..., None], tmp_path: Path,
                                                           dead_letters: Any) -> None:  # fmt: skip
    reference = unique_reference("reused")
    for number in (1, 2):
        parked(json.dumps({"orderReference": reference, "n": number}), rejectionClass="ReusedOrderReference",
               rejectionReason="reused")  # fmt: skip
    unchosen = eprom("--local", "dead-letters", "delete", "--force")
    assert unchosen.exit_code == 1 and "--class C and/or --reference R" in unchosen.stderr
    unexported = eprom("--local", "dead-letters", "delete", "--reference", reference)
    assert unexported.exit_code == 1 and "export them first" in unexported.stderr
    out = tmp_path / "out"
    elsewhere = eprom("--local", "dead-letters", "delete", "--reference", reference, "--exported-to", str(out))
    assert elsewhere.exit_code == 1 and "2 not exported to" in elsewhere.stderr  # nothing there yet: both kept
    assert eprom("--local", "dead-letters", "export", "--out", str(out), "--reference", reference).exit_code == 0
    deleted = eprom("--local", "dead-letters", "delete", "--reference", reference, "--exported-to", str(out))
    assert deleted.exit_code == 0, deleted.output
    assert "deleted 2 dead letter(s)" in deleted.stdout
    assert dead_letters.messages() == []
    parked(json.dumps({"orderReference": reference}), rejectionClass="ReusedOrderReference", rejectionReason="r")
    forced = eprom("--local", "dead-letters", "delete", "--class", "ReusedOrderReference", "--force")
    assert forced.exit_code == 0 and "deleted 1 dead letter(s)" in forced.stdout
    assert dead_letters.messages() == []


def orphan_with_ambiguous_claim(session_stack: dict[str, Any], reference: str) -> tuple[str, Any, Any]:
    """What a lost answer leaves: the reference's claim Ambiguous, ePROM's Ordered callback stored as an item without
    orderReference, and the parked message. Returns the formOrderId, the claims and the item."""
    from datetime import timedelta

    from eprom.models import EpromCallback
    from eprom.order_store import OrderStore
    from place_order.claims import OrderClaims

    claims = OrderClaims(session_stack["idempotency_table"], boto3.client("dynamodb"), retention=timedelta(days=1),
                         shortest_life=timedelta(days=1))  # fmt: skip
    expiry = datetime(2099, 1, 1, tzinfo=UTC)
    assert claims.take(reference, attempt_id="attempt-1", fingerprint="fingerprint-1", sending_until=time.time() + 60,
                       order_expiry=expiry) is None  # fmt: skip
    assert claims.settle_ambiguous(reference, "attempt-1", "read timeout after the request was sent")
    form_order_id = str(uuid.uuid4())
    store = OrderStore(session_stack["table"], client=boto3.client("dynamodb"))
    store.apply_callback(EpromCallback.model_validate({"formOrderId": form_order_id, "formOrderStatus": "Ordered",
                                                       "notificationChannel": "Helsenorge"}))  # fmt: skip
    return form_order_id, claims, store.item(form_order_id)


def test_orders_adopt_links_the_orphan_settles_its_claim_and_announces_it(
    session_stack: dict[str, Any], parked: Callable[..., None], outcome_events: Any, dead_letters: Any
) -> None:
    from eprom.outcomes import item_outcomes
    from place_order.claims import placed_form_order_id

    reference = unique_reference("ambiguous")
    form_order_id, claims, orphan = orphan_with_ambiguous_claim(session_stack, reference)
    parked(
        json.dumps(
            {
                "orderReference": reference,
                "formId": FORM_ID,
                "nationalId": "26073941651",
                "expiryDate": "2099-01-01T00:00:00+00:00",
            }
        ),
        rejectionClass="Ambiguous",
        rejectionReason="ePROM may have created it",
        ambiguousAttemptId="attempt-1",
    )

    result = eprom("--local", "orders", "adopt", "--reference", reference, "--form-order-id", form_order_id)
    assert result.exit_code == 0, result.output
    assert f"adopted {form_order_id} as {reference}: claim Placed" in result.stdout
    claim = claims.current(reference)
    assert (claim.state, placed_form_order_id(claim), claim.fingerprint) == ("Placed", form_order_id, "fingerprint-1")
    [item] = until(lambda: shown(reference))  # the orderReference index lags behind writes, as DynamoDB's GSIs do
    assert item["formOrderId"] == form_order_id and item["formId"] == FORM_ID and item["status"] == "Ordered"
    assert dead_letters.messages() == []  # the parked letter is resolved
    events = {event["detailType"]: event for event in outcome_events.received()}
    assert events["FormOrderPlaced"]["orderReference"] == reference
    # the status event under the reference, with the eventId the publisher gave it when the orphan's callback came
    [published] = [d for d in item_outcomes(None, orphan, bucket="b") if type(d).__name__ == "FormOrderStatusChanged"]
    assert events["FormOrderStatusChanged"]["eventId"] == published.event_id
    assert events["FormOrderStatusChanged"]["orderReference"] == reference

    again = eprom("--local", "orders", "adopt", "--reference", reference, "--form-order-id", form_order_id)
    assert again.exit_code == 1 and f"belongs to orderReference {reference} already" in again.stderr


def test_orders_adopt_refuses_a_reference_without_an_ambiguous_claim(session_stack: dict[str, Any]) -> None:
    reference = unique_reference("never-sent")
    _, _, orphan = orphan_with_ambiguous_claim(session_stack, unique_reference("other"))
    result = eprom("--local", "orders", "adopt", "--reference", reference, "--form-order-id", orphan.form_order_id)
    assert result.exit_code == 1 and f"no claim on {reference}" in result.stderr
    [item] = [i for i in json.loads(eprom("--local", "orders", "orphans", "--json").stdout)
              if i["formOrderId"] == orphan.form_order_id]  # fmt: skip
    assert "orderReference" not in item  # nothing changed


def test_outcomes_republish_and_redrive_deliver_the_same_event_ids(session_stack: dict[str, Any],
                                                                  outcome_events: Any) -> None:  # fmt: skip
    from eprom.models import EpromCallback
    from eprom.order_store import OrderStore

    store = OrderStore(session_stack["table"], client=boto3.client("dynamodb"))
    form_order_id = str(uuid.uuid4())
    store.apply_callback(EpromCallback.model_validate({"formOrderId": form_order_id, "formOrderStatus": "Ordered"}))
    before = datetime.now(UTC)
    assert eprom("--local", "outcomes", "republish").exit_code == 1  # neither a reference nor a window
    window = eprom("--local", "outcomes", "republish", "--since", (before.replace(year=before.year - 1)).isoformat())
    assert window.exit_code == 0, window.output
    [event] = [e for e in outcome_events.received() if e["formOrderId"] == form_order_id]
    assert event["detailType"] == "FormOrderStatusChanged"

    # EventBridge could not deliver it: in OutcomeDeliveryDeadLetterQueue as OutcomeQueue would have had it
    assert eprom("--local", "outcomes", "republish", "--since", before.replace(year=2000).isoformat()).exit_code == 0
    envelopes = [m["Body"] for m in DeadLetters(session_stack["outcome_queue_url"]).messages()]
    sqs = boto3.client("sqs")
    for body in envelopes:
        sqs.send_message(QueueUrl=session_stack["outcome_delivery_dead_letter_queue_url"], MessageBody=body)
    moved = eprom("--local", "outcomes", "redrive")
    assert moved.exit_code == 0 and f"moved {len(envelopes)} event(s) to OutcomeQueue" in moved.stdout
    again = [e for e in outcome_events.received() if e["formOrderId"] == form_order_id]
    assert [e["eventId"] for e in again] == [event["eventId"]]
    assert DeadLetters(session_stack["outcome_delivery_dead_letter_queue_url"]).messages() == []
    assert "is empty" in eprom("--local", "outcomes", "redrive").stdout
