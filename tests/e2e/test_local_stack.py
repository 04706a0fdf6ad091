"""End to end through the local stack, exactly as `make run` runs it (a separate process, so the handlers read
that stack's settings): orders with faults everywhere, then the final state of table, DLQ, queue and ePROM."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import MAKE_RUN_ENV

from buildtools.schemas import outcome_event_errors
from local.stack import API_KEY, UNREACHABLE_NATIONAL_ID, VALID_IDS

ROOT = Path(__file__).resolve().parents[2]


def run_stack(tmp_path: Path, *args: str, timeout: float = 200) -> dict[str, Any]:
    return run_stack_printing(tmp_path, *args, timeout=timeout)[0]


def run_stack_printing(tmp_path: Path, *args: str, timeout: float = 200) -> tuple[dict[str, Any], str]:
    """The final report, and what `make run` printed."""
    report = tmp_path / "report.json"
    completed = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "local.run", "--report", str(report), *args],
        cwd=ROOT,
        env=MAKE_RUN_ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "everything the stack started is shut down" in completed.stdout
    return json.loads(report.read_text()), completed.stdout


def assert_nothing_left_running(report: dict[str, Any]) -> None:
    for port in report["ports"]:
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open after the stack stopped"
    with pytest.raises(ProcessLookupError):
        os.kill(report["pid"], 0)


def outcomes(report: dict[str, Any]) -> tuple[dict[str, dict], dict[str, list[dict[str, Any]]]]:
    """Items by orderReference, and the dead letters of each orderReference."""
    items = {item["orderReference"]: item for item in report["items"] if "orderReference" in item}
    refused: dict[str, list[dict[str, Any]]] = {}
    for dead in report["dead_letters"]:
        reference = json.loads(dead["body"]).get("orderReference") if dead["body"].startswith("{") else None
        refused.setdefault(reference, []).append(dead)
    return items, refused


def test_200_orders_with_faults_everywhere_are_each_placed_once_or_refused_with_a_reason(tmp_path: Path) -> None:
    started = time.monotonic()
    report = run_stack(
        tmp_path,
        "--orders", "200", "--invalid-rate", "0.05", "--duplicate-rate", "0.10",
        "--rate-500", "0.20", "--rate-timeout", "0.05",
        "--duplicate-callbacks", "0.2", "--out-of-order-callbacks", "0.2",
        "--signed-rate", "0.3", "--document-ready-after", "0.5",  # forms are returned (Completed) by default
        "--rate-document-500", "0.2", "--settle-timeout", "180",
    )  # fmt: skip
    function_log = Path(report["function_log"]).read_text()  # this run's own
    assert time.monotonic() - started < 170  # about 75 s here; a guard against hangs, not a benchmark

    items, refused = outcomes(report)
    sent = report["sent"]
    generated = [order for order in sent if order["order_reference"].startswith("generated-")]
    assert len(generated) == 200
    assert any(order["deliveries"] == 2 for order in generated)
    assert report["simulator"]["faults"]["500"] > 10 and report["simulator"]["faults"]["timeout"] > 0

    per_reference = report["simulator"]["orders_per_reference"]
    parked = 0
    for order in sent:
        reference = order["order_reference"]
        if order["expect"] == "placed" and reference in refused:
            # A timeout after the order was sent: parked for a person, never sent a second time. ePROM may have
            # created it (its callbacks then made an item without orderReference), or a second delivery of the same
            # message may have placed it since (a redrive of the parked copy then finds the item and does nothing).
            assert {dead["rejection_class"] for dead in refused[reference]} == {"Ambiguous"}, reference
            assert per_reference.get(reference, 0) <= 1, reference
            parked += 1
        elif order["expect"] == "placed":
            assert reference in items, f"{reference} lost"
            expected = "Error" if reference == "sample-unreachable-1" else "Completed"
            assert items[reference]["status"] == expected, reference
            assert reference not in refused, reference
            if reference.startswith("generated-"):
                assert per_reference.get(reference) == 1, f"{reference} ordered {per_reference.get(reference)} times"
        else:
            assert reference not in items, reference
            dead_letters = refused[reference]
            assert len(dead_letters) == order["deliveries"], reference  # each delivery
            assert all(dead["reason"] and dead["rejection_class"] for dead in dead_letters), reference
    assert parked > 0
    orphans = [item for item in report["items"] if "orderReference" not in item]
    assert report["simulator"]["orders"] == len(items) + len(orphans)  # every ePROM order has an item
    assert None not in refused  # no dead letter without a reason (the redrive policy's)
    assert report["order_queue_depth"] == 0  # nothing left in flight
    assert report["simulator"]["callbacks_pending"] == 0
    assert_results_reached_upstream(report, function_log)
    assert_nothing_left_running(report)


def assert_results_reached_upstream(report: dict[str, Any], function_log: str) -> None:
    """Every returned form has its answers object and a FormReturned event, every signed one its PDF and a
    SignedDocumentStored event, every status its event; repeats carry the same id and content; nothing personal."""
    events: dict[str, dict[str, dict]] = {}  # formOrderId -> detail-type (+ status) -> event
    for event in (event for event in report["events"] if event["detailType"] != "PrivacySettingChanged"):
        kind = event["detailType"] + (f":{event['status']}" if event["detailType"] == "FormOrderStatusChanged" else "")
        events.setdefault(event["formOrderId"], {})[kind] = event
    signed = {order["order_reference"] for order in report["sent"] if json.loads(order["body"]).get("mustBeSigned")}
    for item in report["items"]:
        received = events.get(item["formOrderId"], {})
        assert f"FormOrderStatusChanged:{item['status']}" in received, item["formOrderId"]
        if "orderReference" in item:
            assert received["FormOrderPlaced"]["orderReference"] == item["orderReference"]
        if item["status"] == "Completed":
            assert item["formOrderId"] in report["answers"], item["formOrderId"]  # read back, sha256 checked
            assert received["FormReturned"]["answers"]["sha256"] == item["answers"]["sha256"]
        if item.get("orderReference") in signed and item["status"] == "Completed":
            assert report["signed_documents"][item["formOrderId"]] > 0, item["formOrderId"]
            assert received["SignedDocumentStored"]["document"]["sha256"] == item["signedDocument"]["sha256"]
    assert report["signed_documents"] and report["simulator"]["faults"].get("document_500", 0) > 0
    assert report["publish_failures"] == 0 and report["signed_document_dead_letters"] == 0
    assert report["denied_calls"] == []  # each function under its own role (local/iam.py)
    functions = ["PlaceOrderFunction", "StatusCallbackFunction", "PublishOutcomesFunction",
                 "FetchSignedDocumentFunction", "SendMessageFunction"]  # fmt: skip
    assert set(functions) <= set(report["callers"])  # and upstream's policies, once the template has them

    assert [error for envelope in report["events_received"] for error in outcome_event_errors(envelope)] == []
    by_id: dict[str, list[dict]] = {}
    for envelope in report["events_received"]:
        by_id.setdefault(envelope["detail"]["eventId"], []).append(envelope["detail"])
    assert all(all(detail == details[0] for detail in details) for details in by_id.values())

    messages = ["+4791234567", "Husk å svare", "venter på svar", "Svar for"]  # the sample messages' recipients, texts
    personal = [API_KEY, "Ingen plager", *VALID_IDS, UNREACHABLE_NATIONAL_ID, *messages]
    everything_shared = json.dumps(report["events_received"], ensure_ascii=False)
    for secret in personal:
        assert secret not in everything_shared, "personal data in an event"
        assert secret not in function_log, "personal data in a function log line"


def test_make_run_shows_the_whole_loop_by_default(tmp_path: Path) -> None:
    report, printed = run_stack_printing(tmp_path)
    items, _ = outcomes(report)
    assert items["sample-basic-1"]["status"] == "Completed" and items["sample-signed-1"]["status"] == "Completed"
    assert {items["sample-basic-1"]["formOrderId"], items["sample-signed-1"]["formOrderId"]} <= set(report["answers"])
    assert set(report["signed_documents"]) == {items["sample-signed-1"]["formOrderId"]}
    [signed_row] = [line for line in printed.splitlines() if line.startswith("sample-signed-1 ")]
    assert "Completed" in signed_row and "stored: answers, signed PDF" in signed_row
    assert "events upstream got: placed > Ordered > Completed > answers > signed PDF" in printed
    assert f"function logs and metrics: {Path(report['function_log']).relative_to(ROOT)}" in printed
    # a reservation set and read back through PrivacySettingsFunction, and a change on Helsenorge as an event
    assert report["privacy"]["set"] == {"changed": True} and report["privacy"]["read_back"]["status"] == "Aktiv"
    [changed] = [event for event in report["events"] if event["detailType"] == "PrivacySettingChanged"]
    assert changed["status"] == "RES" and changed["change"]["key"].startswith("privacy/changes/")
    assert "read back: Reservasjon mot registrering: Aktiv (sequence number 1)" in printed
    assert f"upstream got PrivacySettingChanged {changed['eventId']} (RES)" in printed
    assert "PrivacySettingsFunction" in report["callers"] and report["denied_calls"] == []
    assert not any(national_id in printed for national_id in VALID_IDS)

    # The sample letters, SMS and e-mail (events/messages): a letter delivered (its callback), the SMS and e-mail
    # accepted, a letter ePROM could send on no channel, and two refused before ePROM
    messages = {item["messageReference"]: item for item in report["messages"]}
    assert messages["sample-letter-1"]["status"] == "Delivered" and messages["sample-letter-1"]["messageToCitizenId"]
    assert messages["sample-sms-1"]["status"] == messages["sample-email-1"]["status"] == "Accepted"
    assert messages["sample-letter-unreachable"]["status"] == "NotDelivered"
    refused = {json.loads(dead["body"])["messageReference"]: dead for dead in report["message_dead_letters"]}
    assert {reference: dead["rejection_class"] for reference, dead in refused.items()} == {
        "sample-sms-refused": "InvalidMessage", "sample-letter-missing-document": "InvalidMessage",
    }  # fmt: skip
    [letter_row] = [line for line in printed.splitlines() if line.startswith("sample-letter-1 ")]
    assert "Delivered" in letter_row and "channel Helsenorge" in letter_row
    assert "events upstream got: accepted > delivered" in printed
    received = {(event["messageReference"], event["detailType"]) for event in report["message_events"]}
    assert {("sample-sms-1", "MessageAccepted"), ("sample-email-1", "MessageAccepted"),
            ("sample-letter-1", "MessageDelivered"), ("sample-letter-unreachable", "MessageNotDelivered"),
            ("sample-sms-refused", "MessageRefused")} <= received  # fmt: skip


def test_form_return_none_stops_each_order_at_ordered(tmp_path: Path) -> None:
    report, printed = run_stack_printing(tmp_path, "--form-return", "none")
    items, _ = outcomes(report)
    assert items["sample-basic-1"]["status"] == "Ordered"
    assert report["answers"] == {} and report["signed_documents"] == {}
    [signed_row] = [line for line in printed.splitlines() if line.startswith("sample-signed-1 ")]
    assert "Ordered" in signed_row and "stored: -" in signed_row


def test_numeric_dialect_with_form_returns(tmp_path: Path) -> None:
    report = run_stack(
        tmp_path, "--no-samples", "--orders", "30", "--invalid-rate", "0", "--dialect", "numbers",
        "--form-return", "Completed", "--out-of-order-callbacks", "0.3", "--duplicate-callbacks", "0.3",
        # the simulator delivers out-of-order callbacks inside the order request: ePROM is slow then, and this
        # test is about the dialect, not about answers lost to the read timeout (parked as Ambiguous elsewhere)
        "--read-timeout", "10",
    )  # fmt: skip
    items, _ = outcomes(report)
    assert len(items) == 30
    for item in items.values():
        assert item["status"] == "Completed"
        answers = report["answers"][item["formOrderId"]]  # read from S3, checked against the item's sha256
        assert json.loads(answers["formData"])["q1"] == "Ja"
        assert "apiKey" not in answers
        assert item["notificationChannel"] in ("Helsenorge", "None")
        assert item["statusTimestampUtc"].endswith("+00:00")
    assert_nothing_left_running(report)


def test_serve_mode_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    state = str(tmp_path / "stack.json")  # not the state file of a `make serve` that may be running
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "local.run", "--serve", "--no-samples", "--report", str(report), "--state-file", state],
        cwd=ROOT,
        env=MAKE_RUN_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Ctrl-C as in a terminal: a test run started in the background by a non-interactive shell ignores SIGINT,
        # and a child inherits that (Python then installs no KeyboardInterrupt handler), which is not what is tested
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "The local stack is running" in line:
                break
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0]
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert "everything the stack started is shut down" in output
    assert_nothing_left_running(json.loads(report.read_text()))


def placed_once_each(report: dict[str, Any]) -> None:
    items, refused = outcomes(report)
    per_reference = report["simulator"]["orders_per_reference"]
    for order in report["sent"]:
        reference = order["order_reference"]
        assert reference in items, f"{reference} lost"
        assert per_reference.get(reference) == 1, f"{reference} ordered {per_reference.get(reference)} times"
    assert refused == {}
    assert report["order_queue_depth"] == 0


def test_an_outage_shorter_than_the_retry_window_loses_nothing_and_orders_once(tmp_path: Path) -> None:
    report = run_stack(
        tmp_path, "--no-samples", "--orders", "40", "--invalid-rate", "0",
        "--down-for", "8", "--retry-window-hours", "0.02",  # down 8 s of a 72 s window
        "--read-timeout", "5",  # a slow answer on a loaded machine is not what this test is about
    )  # fmt: skip
    assert report["simulator"]["faults"]["down"] >= 10  # at least the first batch met the outage (the rest
    # depends on how fast this machine polls: the outcome below must hold either way)
    placed_once_each(report)
    assert_nothing_left_running(report)


def test_an_outage_longer_than_the_retry_window_moves_every_order_to_the_dlq_unplaced(tmp_path: Path) -> None:
    report = run_stack(
        tmp_path, "--no-samples", "--orders", "25", "--invalid-rate", "0", "--duplicate-rate", "0",
        "--down-for", "600", "--retry-window-hours", "0.002",  # a 7.2 s window
    )  # fmt: skip
    items, refused = outcomes(report)
    assert items == {} and report["simulator"]["orders"] == 0
    assert sorted(refused) == sorted(order["order_reference"] for order in report["sent"])  # none lost
    for [dead] in refused.values():
        assert dead["rejection_class"] == "RetriesExhausted"
        assert dead["reason"] == "retries exhausted: still failing after 0.002 h; last error: ePROM answered HTTP 503"
    assert report["simulator"]["faults"]["down"] > 25  # each tried at least once, and some retried with backoff
    assert report["order_queue_depth"] == 0
    assert_nothing_left_running(report)


def test_a_rate_limited_eprom_gets_every_order_once(tmp_path: Path) -> None:
    # ePROM takes 3/s (its limiter holds 3 tokens), our pace is set to 8/s: 429s come, the orders they turned away
    # are sent again (and the pace slows down), each placed once
    report = run_stack(
        tmp_path, "--no-samples", "--orders", "40", "--invalid-rate", "0", "--rate-limit", "3", "--read-timeout", "5",
        "--pace", "8",
    )  # fmt: skip
    assert report["simulator"]["faults"]["rate_limited"] > 0
    placed_once_each(report)


def test_a_paced_stack_meets_no_429_from_an_eprom_at_the_same_rate(tmp_path: Path) -> None:
    report = run_stack(
        tmp_path, "--no-samples", "--orders", "30", "--invalid-rate", "0", "--duplicate-rate", "0",
        "--rate-limit", "5", "--pace", "5",
    )  # fmt: skip
    assert report["simulator"]["faults"].get("rate_limited", 0) == 0
    placed_once_each(report)


def test_eprom_slower_than_the_read_timeout_never_gets_an_order_twice(tmp_path: Path) -> None:
    """The case that once made 150 ePROM orders of 30 messages: ePROM answers just after we stopped waiting."""
    report = run_stack(
        tmp_path, "--no-samples", "--orders", "30", "--latency", "1.1", "--read-timeout", "1",
        "--invalid-rate", "0", "--duplicate-rate", "0",
    )  # fmt: skip
    items, refused = outcomes(report)
    per_reference = report["simulator"]["orders_per_reference"]
    for order in report["sent"]:
        reference = order["order_reference"]
        assert per_reference.get(reference, 0) <= 1, f"{reference} ordered {per_reference[reference]} times"
        if reference not in items:
            [dead] = refused[reference]
            assert dead["rejection_class"] == "Ambiguous"
            assert "ePROM did not answer within 1 s after the order was sent" in dead["reason"]
    assert report["simulator"]["orders"] == 30  # ePROM did create each one, once
    orphans = [item for item in report["items"] if "orderReference" not in item]
    assert len(orphans) + len(items) == 30  # their callbacks made items an operator can reconcile


def test_the_retry_policy_for_ambiguous_orders_is_an_opt_in(tmp_path: Path) -> None:
    report = run_stack(
        tmp_path, "--no-samples", "--orders", "20", "--invalid-rate", "0", "--duplicate-rate", "0",
        "--rate-lost-answer", "0.3", "--ambiguous-policy", "retry",
    )  # fmt: skip
    items, refused = outcomes(report)
    assert refused == {} and len(items) == 20  # nothing parked: each sent again until it was answered
    assert report["simulator"]["orders"] > 20  # the price: the lost answers' orders exist twice
