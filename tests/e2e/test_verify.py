"""`eprom verify`, `smoke`, `api-key set` and `onboarding` against the local stack of `make serve` (moto, the ePROM
simulator and the functions in a process of their own), with no automatic form return: the simulator plays the
person only when asked, as `eprom --local verify` does (or a test, standing in for the person)."""

import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from conftest import STATE_VARIABLES, serving
from eprom.order_store import OrderStore
from eprom.orders import read_order_answer
from eprom_cli import smoke
from eprom_cli.app import app
from typer.testing import CliRunner

from local import iam
from local.eprom_simulator import SAMPLE_ANSWERS, signed_pdf
from local.stack import API_KEY, FORM_ID, PAPER_FORM_ID

ROOT = Path(__file__).resolve().parents[2]
VERIFICATION_PERSON = "26670271527"
ON_BEHALF_OF = "26073941651"


class Stack:
    def __init__(self, state: dict[str, Any]) -> None:
        self.region = state["region"]
        self.state = state["target"]
        session = boto3.Session(region_name=state["region"], aws_access_key_id="testing",
                                aws_secret_access_key="testing")  # fmt: skip
        self.endpoint = self.state["endpoint_url"]
        self.sqs, self.events, self.secrets, self.dynamodb, self.cloudformation = (
            session.client(name, endpoint_url=self.endpoint)
            for name in ("sqs", "events", "secretsmanager", "dynamodb", "cloudformation")
        )

    def received(self, order_reference: str) -> list[dict[str, Any]]:
        """What the simulator (ePROM) received for this orderReference."""
        answer = requests.get(f"{self.state['eprom_simulator_url']}/_simulator/orders",
                              params={"orderReference": order_reference}, timeout=5)  # fmt: skip
        return answer.json()

    def fill(self, form_order_id: str) -> None:
        """The person fills the form (the simulator sends the form return)."""
        requests.post(f"{self.state['eprom_simulator_url']}/_simulator/fill/{form_order_id}", timeout=5)

    def callback(self, body: dict[str, Any]) -> requests.Response:
        return requests.put(f"{self.state['api_base_url']}/api/PromsFormOrder", json=body, timeout=10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with serving(tmp_path_factory.mktemp("serve") / "stack.json") as state:  # forms are returned only when filled
        iam.enforce(stack_resources(state["target"]), state["region"], state["target"]["endpoint_url"])
        yield Stack(state)


def eprom(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=stdin, env={"COLUMNS": "250"})


def report_of(directory: Path) -> tuple[dict[str, Any], dict[str, str]]:
    [json_file] = directory.glob("verification-*.json")
    texts = {suffix: json_file.with_suffix(suffix).read_text() for suffix in (".md", ".html", ".json")}
    return json.loads(texts[".json"]), texts


def test_verify_local_passes_every_step_with_signing_and_on_behalf_of(stack: Stack, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    result = eprom("--local", "verify", "--form-id", FORM_ID, "--signed-form-id", FORM_ID, "--system-name",
                   "Norsk testregister", "--on-behalf-of", ON_BEHALF_OF, "--report-dir", str(reports),
                   "--timeout", "120")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "verification passed" in result.output and "FAIL" not in result.output

    record, texts = report_of(reports)
    assert record["outcome"] == "passed"
    names = [step["name"] for step in record["steps"]]
    for kind in ("basic", "signed", "on-behalf-of"):
        for step in ("order placed once", "Ordered on the expected channel", "answers stored and readable",
                     "FormReturned delivered", "no duplicate callbacks", "no duplicate events"):  # fmt: skip
            assert f"{kind}: {step}" in names
    assert {"signed: signed PDF stored", "signed: SignedDocumentStored delivered",
            "on-behalf-of: order carries onBehalfOfNationalId"} <= set(names)  # fmt: skip
    assert all(step["passed"] for step in record["steps"])

    # What ePROM received: one order per reference, the special cases as ordered
    cases = {case["kind"]: case for case in record["cases"]}
    for kind, case in cases.items():
        [received] = stack.received(case["order_reference"])
        assert received["formOrderId"] == case["form_order_id"]
        assert received["onBehalfOf"] is (kind == "on-behalf-of")
        assert received["mustBeSigned"] is (kind == "signed")
        assert case["channel"] == "Helsenorge"
    assert cases["signed"]["signed_document"]["key"] == f"signed/{cases['signed']['form_order_id']}.pdf"
    delivered = {(event["detail_type"], event["form_order_id"]) for event in record["events"]}
    assert ("FormReturned", cases["basic"]["form_order_id"]) in delivered
    assert ("SignedDocumentStored", cases["signed"]["form_order_id"]) in delivered

    # The evidence for Hemit carries no personal data: no national ids, codes, answers, ApiKey
    for text in texts.values():
        assert cases["signed"]["form_order_id"] in text
        for secret in (VERIFICATION_PERSON, ON_BEHALF_OF, API_KEY, json.dumps(SAMPLE_ANSWERS), "Ingen plager",
                       "singleUseCode", "loginUrl"):  # fmt: skip
            assert secret not in text
    assert "<script" not in texts[".html"] and "src=" not in texts[".html"] and "<link" not in texts[".html"]
    assert not (reports / "local-in-progress.json").exists()

    # Headed for Hemit, arranged by Hemit's checklist, with what only the person can confirm (here the simulator)
    page = texts[".md"]
    assert page.startswith("# ePROM integration verification: Norsk testregister\n")
    for row in ("- **outcome**: PASSED", "- **ordering system**: Norsk testregister",
                f"- **ApiBaseUrl**: {stack.state['api_base_url']}", "- **ePROM environment**: local ePROM simulator",
                "- **stage**: local (stack local)", "- **integration version**: 0.1.0"):  # fmt: skip
        assert row in page, row
    headings = [line for line in page.splitlines() if line.startswith("## ")]
    assert headings[1:5] == ["## 1. Ordering (bestilling av skjema)", "## 2. Filling (utfylling)",
                             "## 3. Return (retur til bestillersystemet)",
                             "## 4. Special cases (på vegne av, signering)"]  # fmt: skip
    assert "| The cover letter (følgebrev) was right (cover-letter) | SIMULATED |" in page
    assert "Signed: the form could not be sent before it was signed (signing) | SIMULATED |" in page

    # The tap is gone: only OutcomeQueueRule is left on the bus, no verify queue
    rules = stack.events.list_rules(EventBusName=stack.state["outcome_bus_name"])["Rules"]
    assert [rule["Name"] for rule in rules if "verify" in rule["Name"]] == []
    assert [url for url in stack.sqs.list_queues().get("QueueUrls", []) if "eprom-verify" in url] == []


def test_verify_letter_sends_a_pdf_that_eprom_takes_and_calls_back_sent(stack: Stack, tmp_path: Path) -> None:
    pdf = tmp_path / "verifisering.pdf"
    pdf.write_bytes(signed_pdf("verifisering", 250_000))
    reports = tmp_path / "reports"
    result = eprom("--local", "verify", "--letter", str(pdf), "--report-dir", str(reports), "--timeout", "60")
    assert result.exit_code == 0, result.output
    assert "PASS letter: accepted by ePROM" in result.output and "PASS letter: ePROM called back Sent" in result.output
    record, texts = report_of(reports)
    assert record["outcome"] == "passed" and record["cases"] == []
    letter = record["letter"]
    assert letter["status"] == "Delivered" and letter["message_to_citizen_id"]
    [received] = requests.get(f"{stack.state['eprom_simulator_url']}/_simulator/messages",
                              params={"title": letter["title"]}, timeout=5).json()  # fmt: skip
    assert received["documents"] == [250_000] and received["messageToCitizenId"] == letter["message_to_citizen_id"]
    assert all(VERIFICATION_PERSON not in text and API_KEY not in text for text in texts.values())


def test_a_letter_ePROM_refuses_fails_its_step_and_says_why(stack: Stack, tmp_path: Path) -> None:
    not_a_pdf = tmp_path / "brev.pdf"
    not_a_pdf.write_bytes(b"<html>not a pdf</html>")
    result = eprom("--local", "verify", "--letter", str(not_a_pdf), "--report-dir", str(tmp_path), "--timeout", "60")
    assert result.exit_code == 1
    assert ("FAIL letter: accepted by ePROM: in the message DLQ (InvalidMessage): documents[0]: not a PDF"
            in result.output)  # fmt: skip


def test_on_behalf_of_without_a_form_is_refused_before_anything_is_sent(stack: Stack, tmp_path: Path) -> None:
    pdf = tmp_path / "brev.pdf"
    pdf.write_bytes(signed_pdf("brev", 10_000))
    reports = tmp_path / "reports"
    result = eprom("--local", "verify", "--letter", str(pdf), "--on-behalf-of", ON_BEHALF_OF,
                   "--report-dir", str(reports))  # fmt: skip
    assert result.exit_code == 1
    assert "--on-behalf-of orders --form-id on the person's behalf: give --form-id too" in result.output
    assert not reports.exists()  # nothing sent, no state kept


def test_an_order_refused_into_the_dlq_fails_the_step_and_says_why(stack: Stack, tmp_path: Path) -> None:
    unknown_form = str(uuid.uuid4())
    result = eprom("--local", "verify", "--form-id", unknown_form, "--report-dir", str(tmp_path), "--timeout", "60")
    assert result.exit_code == 1
    assert (
        "FAIL basic: order placed once: in the order DLQ (RefusedByEprom): ePROM refused the order: No form with id="
        in (result.output)
    )
    assert "verification failed at step 'basic: order placed once'" in result.output
    record, _ = report_of(tmp_path)
    assert record["outcome"] == "failed" and record["steps"][-1]["passed"] is False


def test_verify_pauses_for_the_person_resumes_and_fails_on_a_duplicate_callback(stack: Stack, tmp_path: Path) -> None:
    args = ("--local", "verify", "--report-dir", str(tmp_path), "--no-simulated-person", "--wait-hours", "0")
    first = eprom(*args, "--form-id", FORM_ID)
    assert first.exit_code == 3, first.output
    assert "PASS basic: Ordered on the expected channel" in first.output
    assert f"continue with `eprom --local verify --resume --report-dir {tmp_path}`" in first.output
    assert "Now the person's part: fill each form through the simulator" in first.output
    assert "the simulator fills" not in first.output  # --no-simulated-person: nobody fills but you
    state_file = tmp_path / "local-in-progress.json"
    [case] = json.loads(state_file.read_text())["cases"]
    assert VERIFICATION_PERSON not in state_file.read_text()

    again = eprom(*args, "--form-id", FORM_ID)
    assert again.exit_code == 1 and "a verification is waiting" in again.output  # never a second set of orders
    still = eprom(*args, "--resume")
    assert still.exit_code == 3, still.output
    assert len(stack.received(case["order_reference"])) == 1

    # ePROM sends Ordered a second time (a distinct callback), then the person fills the form
    duplicate = {"apiKey": API_KEY, "formOrderId": case["form_order_id"], "formOrderStatus": "Ordered",
                 "notificationChannel": "Helsenorge", "timestampUtc": datetime.now(UTC).isoformat()}  # fmt: skip
    assert stack.callback(duplicate).status_code == 200
    stack.fill(case["form_order_id"])
    resumed = eprom("--local", "verify", "--report-dir", str(tmp_path), "--resume", "--wait-hours", "0.02")
    assert resumed.exit_code == 1, resumed.output
    assert "FAIL basic: no duplicate callbacks: Ordered came more than once" in resumed.output
    assert "PASS basic: answers stored and readable" in resumed.output
    assert not state_file.exists()
    record, _ = report_of(tmp_path)
    assert record["outcome"] == "failed" and record["cases"][0]["form_order_id"] == case["form_order_id"]


def taps(stack: Stack) -> tuple[list[str], list[str]]:
    rules = [rule["Name"] for rule in stack.events.list_rules(EventBusName=stack.state["outcome_bus_name"])["Rules"]]
    queues = [url for url in stack.sqs.list_queues().get("QueueUrls", []) if "eprom-verify" in url]
    return [rule for rule in rules if "verify" in rule], queues


def test_without_the_required_cases_it_is_incomplete_unless_waived(stack: Stack, tmp_path: Path) -> None:
    result = eprom("--local", "verify", "--form-id", FORM_ID, "--report-dir", str(tmp_path / "a"))
    assert result.exit_code == 4, result.output
    expected = ("verification INCOMPLETE: the signed case was not run (--signed-form-id, or --waive-signed REASON); "
                "the on-behalf-of case was not run (--on-behalf-of, or --waive-on-behalf-of REASON)")  # fmt: skip
    assert expected in result.output
    record, texts = report_of(tmp_path / "a")
    assert record["outcome"] == "incomplete"
    assert (
        "- **outcome**: INCOMPLETE" in texts[".md"] and "- **signed case**: NOT RUN (Hemit requires it)" in texts[".md"]
    )
    assert '<p class="banner INCOMPLETE">INCOMPLETE</p>' in texts[".html"]
    assert not (tmp_path / "a" / "local-in-progress.json").exists()  # nothing to resume: a new run is needed
    waived = eprom("--local", "verify", "--form-id", FORM_ID, "--report-dir", str(tmp_path / "b"), "--waive-signed",
                   "no signed forms", "--waive-on-behalf-of", "no guardians")  # fmt: skip
    assert waived.exit_code == 0, waived.output
    _, texts = report_of(tmp_path / "b")
    assert "- **on-behalf-of case**: not run, waived: no guardians" in texts[".md"]
    assert taps(stack) == ([], [])


def test_the_tap_is_removed_when_it_pauses_and_a_vanished_stack_keeps_the_state(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ("--local", "verify", "--report-dir", str(tmp_path), "--no-simulated-person", "--wait-hours", "0")
    first = eprom(*args, "--form-id", FORM_ID)
    assert first.exit_code == 3, first.output
    assert taps(stack) == ([], [])  # the tap goes whenever the command ends; a resume opens a new one
    state_file = tmp_path / "local-in-progress.json"

    # The stack's bus is gone (a deleted stack): a named step, and the state kept for a resume after a redeploy
    state = json.loads(Path(os.environ["EPROM_LOCAL_STATE"]).read_text())
    state["target"]["outcome_bus_name"] = "gone-OutcomeBus"
    gone_state = tmp_path / "gone-stack.json"
    gone_state.write_text(json.dumps(state))
    iam.enforce(stack_resources(state["target"]), state["region"], state["target"]["endpoint_url"])
    monkeypatch.setenv("EPROM_LOCAL_STATE", str(gone_state))
    vanished = eprom(*args, "--resume")
    assert vanished.exit_code == 1, vanished.output
    assert "FAIL the stack's resources are there: a resource of stack local is gone (ResourceNotFoundException)" in (
        vanished.output
    )
    assert "next: redeploy the stack" in vanished.output
    assert state_file.exists() and taps(stack) == ([], [])
    monkeypatch.undo()

    # --resume --simulated-person honours it: the simulator fills the forms that are not back
    resumed = eprom("--local", "verify", "--report-dir", str(tmp_path), "--resume", "--simulated-person",
                    "--wait-hours", "0.02", "--waive-signed", "x")  # fmt: skip
    assert "The person's part: the local ePROM simulator fills" in resumed.output
    assert "tap reopened; the events of 1 order(s) re-published from the table" in resumed.output
    assert resumed.exit_code == 4, resumed.output  # no signed / on-behalf-of case: incomplete, but every step passed
    assert "FAIL" not in resumed.output and not state_file.exists()


def test_abandon_removes_the_state_and_any_tap_left_behind(stack: Stack, tmp_path: Path) -> None:
    args = ("--local", "verify", "--report-dir", str(tmp_path))
    assert eprom(*args, "--form-id", FORM_ID, "--no-simulated-person", "--wait-hours", "0").exit_code == 3
    state_file = tmp_path / "local-in-progress.json"
    abandoned = eprom(*args, "--abandon")
    assert abandoned.exit_code == 0 and "abandoned" in abandoned.output
    assert not state_file.exists() and taps(stack) == ([], [])
    assert eprom(*args, "--resume").exit_code == 1


def test_a_signed_document_in_its_dlq_fails_the_pdf_step(stack: Stack, tmp_path: Path) -> None:
    args = ("--local", "verify", "--report-dir", str(tmp_path), "--no-simulated-person", "--wait-hours", "0")
    assert eprom(*args, "--form-id", FORM_ID, "--signed-form-id", FORM_ID).exit_code == 3
    signed = next(case for case in json.loads((tmp_path / "local-in-progress.json").read_text())["cases"]
                  if case["kind"] == "signed")  # fmt: skip
    dead_letters = stack.state["signed_document_dead_letter_queue_url"]
    stack.sqs.send_message(
        QueueUrl=dead_letters, MessageBody=json.dumps({"formOrderId": signed["form_order_id"]}),
        MessageAttributes={"rejectionClass": {"DataType": "String", "StringValue": "RetriesExhausted"},
                           "rejectionReason": {"DataType": "String", "StringValue": "404 for 30 days"}},
    )  # fmt: skip
    try:
        result = eprom("--local", "verify", "--report-dir", str(tmp_path), "--resume", "--wait-hours", "0.02")
        assert result.exit_code == 1, result.output
        assert "FAIL signed: signed PDF stored: in the signed-document DLQ (RetriesExhausted): 404 for 30 days" in (
            result.output
        )
    finally:
        while messages := stack.sqs.receive_message(QueueUrl=dead_letters, WaitTimeSeconds=0).get("Messages"):
            for message in messages:
                stack.sqs.delete_message(QueueUrl=dead_letters, ReceiptHandle=message["ReceiptHandle"])


def stack_resources(target: dict[str, Any]) -> dict[str, str]:
    """`eprom --local`'s state as the environment create_resources() returns, for the IAM harness (local/iam.py):
    `eprom` runs in this process under OperatorPolicy on that stack."""
    return {variable: target[name] for name, variable in STATE_VARIABLES.items() if target.get(name)}


def deployed(stack: Stack, monkeypatch: pytest.MonkeyPatch, stage: str, outputs: dict[str, str] | None = None) -> str:
    """A CloudFormation stack in moto whose outputs point at the local stack's resources, as `--stack` reads it."""
    state = stack.state
    outputs = {"OrderQueueUrl": state["order_queue_url"], "OrderDeadLetterQueueUrl": state["dead_letter_queue_url"],
               "SignedDocumentQueueUrl": state["signed_document_queue_url"],
               "SignedDocumentDeadLetterQueueUrl": state["signed_document_dead_letter_queue_url"],
               "FormOrdersTableName": state["table"], "FormResultsBucketName": state["bucket"],
               "EpromApiKeySecretArn": state["secret_id"], "ApiBaseUrl": state["api_base_url"],
               "OutcomeBusName": state["outcome_bus_name"]} | (outputs or {})  # fmt: skip
    parameters = {"Stage": stage, "AllowSyntheticNationalIds": "true",
                  "EpromApiBaseUrl": "https://proms.hemitdev.org/promswebapi"}  # fmt: skip
    template = {"Parameters": {name: {"Type": "String"} for name in parameters},
                "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                "Outputs": {name: {"Value": value} for name, value in outputs.items()}}  # fmt: skip
    name = f"eprom-{uuid.uuid4().hex[:8]}"
    stack.cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template), Parameters=[
        {"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()])  # fmt: skip
    iam.enforce(stack_resources(state) | {"ORDER_QUEUE_URL": outputs["OrderQueueUrl"]}, stack.region, stack.endpoint,
                name)  # fmt: skip
    for variable, value in (("AWS_ENDPOINT_URL", stack.endpoint), ("AWS_ACCESS_KEY_ID", "testing"),
                            ("AWS_SECRET_ACCESS_KEY", "testing")):  # fmt: skip
        monkeypatch.setenv(variable, value)
    return name


def test_verify_a_deployed_test_stack_tells_the_person_where_to_go_and_resumes(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--stack: ePROM's test environment read from the stack's EpromApiBaseUrl; no simulator to ask, a person fills."""
    name = deployed(stack, monkeypatch, "test")
    args = ("--stack", name, "--region", stack.region, "verify", "--report-dir", str(tmp_path))
    first = eprom(*args, "--form-id", FORM_ID, "--on-behalf-of", ON_BEHALF_OF, "--wait-hours", "0",
                  "--waive-signed", "the registry orders no signed forms")  # fmt: skip
    assert first.exit_code == 3, first.output
    assert "Now the person's part, in ePROM test:" in first.output
    assert f"Helsenorge (test) https://tjenester.hn2.test.nhn.no/ with TestID (nivå høyt) as {VERIFICATION_PERSON}" in (
        first.output
    )
    assert "https://proms.hemitdev.org/proms" in first.output
    assert "PASS on-behalf-of: order carries onBehalfOfNationalId: sent with onBehalfOfNationalId and placed" in (
        first.output
    )
    assert ON_BEHALF_OF not in first.output
    state = (tmp_path / f"{name}-in-progress.json").read_text()
    assert ON_BEHALF_OF not in state and VERIFICATION_PERSON not in state
    for case in json.loads(state)["cases"]:
        assert f"(formOrderId {case['form_order_id']})" in first.output
        stack.fill(case["form_order_id"])  # the person, on Helsenorge

    resumed = eprom(*args, "--resume", "--wait-hours", "0.02")
    assert resumed.exit_code == 4, resumed.output  # the person's confirmations are not given
    assert (
        "verification INCOMPLETE: not confirmed yet: form, cover-letter, metadata, task, copy-stored, on-behalf-of"
        in (resumed.output)
    )
    assert (tmp_path / f"{name}-in-progress.json").exists()
    record, texts = report_of(tmp_path)
    assert record["outcome"] == "incomplete" and "| OPEN |" in texts[".md"]
    for path in tmp_path.glob("verification-*"):
        path.unlink()
    confirmed = eprom(*args, "--resume", "--confirm", "all")
    assert confirmed.exit_code == 0, confirmed.output
    record, texts = report_of(tmp_path)
    assert record["outcome"] == "passed" and record["environment"]["name"] == "ePROM test"
    assert "- **signed case**: not run, waived: the registry orders no signed forms" in texts[".md"]
    assert "- **ePROM environment**: ePROM test (https://proms.hemitdev.org/promswebapi)" in texts[".md"]
    assert not (tmp_path / f"{name}-in-progress.json").exists()


def test_verify_refuses_prod_and_a_stack_without_the_outcome_bus(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod = eprom("--stack", deployed(stack, monkeypatch, "prod"), "--region", stack.region, "verify", "--form-id",
                 FORM_ID, "--report-dir", str(tmp_path))  # fmt: skip
    assert prod.exit_code == 1 and "Hemit verifies in ePROM's test environment, not prod" in prod.output
    old = eprom("--stack", deployed(stack, monkeypatch, "test", {"OutcomeBusName": ""}), "--region", stack.region,
                "verify", "--form-id", FORM_ID, "--report-dir", str(tmp_path))  # fmt: skip
    assert old.exit_code == 1 and "has no OutcomeBusName output" in old.output
    assert list(tmp_path.iterdir()) == []  # nothing sent, nothing written


def test_smoke_never_orders_twice_and_tells_placed_from_not_placed(stack: Stack) -> None:
    first = eprom("--local", "smoke", "--form-id", FORM_ID, "--timeout", "60")
    assert first.exit_code == 0, first.output
    reference = smoke.todays_reference(FORM_ID, datetime.now(UTC).date())
    assert f"sent test order {reference}" in first.output
    again = eprom("--local", "smoke", "--form-id", FORM_ID, "--timeout", "60")
    assert again.exit_code == 0, again.output
    assert "not ordered again" in again.output
    [received] = stack.received(reference)
    assert received["formId"] == FORM_ID

    # Placed, but ePROM never called back (an item the placer wrote, no callback since)
    waiting = smoke.todays_reference(PAPER_FORM_ID, datetime.now(UTC).date())
    store = OrderStore(stack.state["table"], client=stack.dynamodb)
    form_order_id = str(uuid.uuid4())
    store.record_placed(form_order_id, order_reference=waiting, order_fingerprint="f", form_id=PAPER_FORM_ID,
                        response=read_order_answer(json.dumps({"id": form_order_id})),
                        order_expiry=datetime(2099, 1, 1, tzinfo=UTC))  # fmt: skip
    deadline = time.monotonic() + 30
    while not store.find_by_order_reference(waiting):  # placed earlier: indexed by now (the local GSI lags)
        assert time.monotonic() < deadline
        time.sleep(0.1)
    placed = eprom("--local", "smoke", "--form-id", PAPER_FORM_ID, "--timeout", "3")
    assert placed.exit_code == 1
    assert f"placed as {form_order_id}, no callback yet" in placed.output
    assert stack.received(waiting) == []


def test_smoke_says_not_placed_when_nothing_takes_the_order(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stack whose placer cannot place (here: nothing reads its OrderQueue, as with a 401 being retried)."""
    unread = stack.sqs.create_queue(QueueName=f"unread-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    outputs = {"OrderQueueUrl": unread, "OrderDeadLetterQueueUrl": stack.state["dead_letter_queue_url"],
               "SignedDocumentQueueUrl": stack.state["signed_document_queue_url"],
               "SignedDocumentDeadLetterQueueUrl": stack.state["signed_document_dead_letter_queue_url"],
               "FormOrdersTableName": stack.state["table"], "FormResultsBucketName": "b",
               "EpromApiKeySecretArn": stack.state["secret_id"], "ApiBaseUrl": "https://x.invalid/api"}  # fmt: skip
    template = {"Parameters": {"Stage": {"Type": "String"}, "AllowSyntheticNationalIds": {"Type": "String"}},
                "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                "Outputs": {name: {"Value": value} for name, value in outputs.items()}}  # fmt: skip
    name = f"eprom-{uuid.uuid4().hex[:8]}"
    stack.cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template), Parameters=[
        {"ParameterKey": "Stage", "ParameterValue": "test"},
        {"ParameterKey": "AllowSyntheticNationalIds", "ParameterValue": "true"}])  # fmt: skip
    iam.enforce(stack_resources(stack.state) | {"ORDER_QUEUE_URL": unread}, stack.region, stack.endpoint, name)
    for variable, value in (("AWS_ENDPOINT_URL", stack.endpoint), ("AWS_ACCESS_KEY_ID", "testing"),
                            ("AWS_SECRET_ACCESS_KEY", "testing")):  # fmt: skip
        monkeypatch.setenv(variable, value)
    form_id = str(uuid.uuid4())
    result = eprom("--stack", name, "--region", stack.region, "smoke", "--form-id", form_id, "--timeout", "3")
    assert result.exit_code == 1
    assert "not placed within 3 s: ePROM did not take the order (a 401" in result.output
    again = eprom("--stack", name, "--region", stack.region, "smoke", "--form-id", form_id, "--timeout", "1")
    assert again.exit_code == 1 and "not placed within 1 s" in again.output
    messages = stack.sqs.receive_message(QueueUrl=unread, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    # Re-running smoke sends the very same order: one idempotency key, one order at ePROM once the placer can place
    assert len(messages) == 2 and messages[0]["Body"] == messages[1]["Body"]
    assert json.loads(messages[0]["Body"])["nationalId"] == VERIFICATION_PERSON  # the new default test person


def test_api_key_set_takes_the_first_key_from_stdin_only(stack: Stack) -> None:
    secret_id = stack.state["secret_id"]
    before = stack.secrets.get_secret_value(SecretId=secret_id)["SecretString"]
    try:
        refused = eprom("--local", "api-key", "set", "key-on-the-command-line")
        assert refused.exit_code == 1
        assert "read from standard input, never from the command line" in refused.output
        assert "key-on-the-command-line" not in refused.output
        assert stack.secrets.get_secret_value(SecretId=secret_id)["SecretString"] == before

        result = eprom("--local", "api-key", "set", stdin="hemits-first-key\n")
        assert result.exit_code == 0, result.output
        assert "hemits-first-key" not in result.output
        value = json.loads(stack.secrets.get_secret_value(SecretId=secret_id)["SecretString"])
        assert value == {"apiKey": "hemits-first-key", "previousApiKeys": []}  # the placeholder is not kept
    finally:
        stack.secrets.put_secret_value(SecretId=secret_id, SecretString=before)


def test_onboarding_prints_the_email_for_hemit_with_every_field_of_the_start_guide(
    stack: Stack, tmp_path: Path
) -> None:
    result = eprom("--local", "onboarding", "--system-name", "Norsk testregister", "--contact-name", "Kari Nordmann",
                   "--contact-email", "kari@example.org", "--contact-phone", "+47 22 00 00 00",
                   "--patient-phone", "+47 23 00 00 00", "--form-builder-user", "Ola <ola@example.org>")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("To: eprom@hemit.no\nSubject: New ordering system (bestillersystem) for ePROM: "
                                    "Norsk testregister")  # fmt: skip
    for expected in (f"ApiBaseUrl:               {stack.state['api_base_url']}", "Norsk testregister",
                     "Kari Nordmann, kari@example.org, +47 22 00 00 00", "Phone shown to patients:  +47 23 00 00 00",
                     "Ordering of forms", "the ApiKey of the ordering system",
                     "form builder (skjemabygger)", "  - Ola <ola@example.org>"):  # fmt: skip
        assert expected in result.stdout

    # Not at a terminal: what is missing in one line, never a prompt that ends in a bare "Aborted."
    missing = eprom("--local", "onboarding", "--system-name", "Registeret")
    assert missing.exit_code == 1
    expected = "missing --contact-name, --contact-email, --contact-phone, --patient-phone (or give them in --file)"
    assert missing.stderr.strip() == f"error: {expected}"
    assert "Aborted" not in missing.output

    fields = tmp_path / "onboarding.toml"
    fields.write_text('system_name = "Registeret"\ncontact_name = "Ola"\ncontact_email = "ola@example.org"\n'
                      'contact_phone = "1"\npatient_phone = "2"\ndescription = "Forms and letters"\n')  # fmt: skip
    from_file = eprom("--local", "onboarding", "--file", str(fields), "--patient-phone", "+47 99")
    assert from_file.exit_code == 0, from_file.output
    assert "System name:              Registeret" in from_file.stdout and "Forms and letters" in from_file.stdout
    assert "Phone shown to patients:  +47 99" in from_file.stdout  # an option wins over the file
    assert "  - Ola <ola@example.org>" in from_file.stdout  # form-builder access for the technical contact


def test_the_html_report_escapes_what_it_shows(tmp_path: Path) -> None:
    """Form ids and reasons come from outside (a DLQ reason quotes ePROM): shown as text, never as markup."""
    from eprom_cli import report, verify

    verification = verify.Verification(
        run_id="r", target="t", stage="test", environment=verify.LOCAL, expected_channel="Helsenorge",
        started_at=datetime.now(UTC), outcome="failed",
        cases=[verify.Case(kind="basic", order_reference="verify-r-basic", form_id="<script>x</script>")],
        steps=[verify.Step(name="basic: order placed once", passed=False, observed="No form with id='a|b<i>'",
                           at=datetime.now(UTC))],
    )  # fmt: skip
    written = report.write(verification, tmp_path)
    page = (tmp_path / "verification-r.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;i&gt;" in page
    assert '<td class="FAIL">FAIL</td>' in page
    assert "a\\|b" in (tmp_path / "verification-r.md").read_text()  # a pipe would split the Markdown table cell
    assert json.loads((tmp_path / "verification-r.json").read_text())["outcome"] == "failed"
    assert [path.suffix for path in written] == [".md", ".html", ".json"]
