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

ROOT = Path(__file__).resolve().parent.parent
ENV = os.environ | {
    "PYTHONPATH": os.pathsep.join(["layers/shared", "functions/place_order", "functions/status_callback"])
}


def run_stack(tmp_path: Path, *args: str, timeout: float = 150) -> dict[str, Any]:
    report = tmp_path / "report.json"
    completed = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "local.run", "--report", str(report), *args],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "everything the stack started is shut down" in completed.stdout
    return json.loads(report.read_text())


def assert_nothing_left_running(report: dict[str, Any]) -> None:
    for port in report["ports"]:
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open after the stack stopped"
    with pytest.raises(ProcessLookupError):
        os.kill(report["pid"], 0)


def outcomes(report: dict[str, Any]) -> tuple[dict[str, dict], dict[str, list[str]]]:
    items = {item["orderReference"]: item for item in report["items"] if "orderReference" in item}
    refused: dict[str, list[str]] = {}
    for dead in report["dead_letters"]:
        reference = json.loads(dead["body"]).get("orderReference") if dead["body"].startswith("{") else None
        refused.setdefault(reference, []).append(dead["reason"])
    return items, refused


def test_200_orders_with_faults_everywhere_are_each_placed_once_or_refused_with_a_reason(tmp_path: Path) -> None:
    started = time.monotonic()
    report = run_stack(
        tmp_path,
        "--orders", "200", "--invalid-rate", "0.05", "--duplicate-rate", "0.10",
        "--rate-500", "0.20", "--rate-timeout", "0.05",
        "--duplicate-callbacks", "0.2", "--out-of-order-callbacks", "0.2",
    )  # fmt: skip
    assert time.monotonic() - started < 120

    items, refused = outcomes(report)
    sent = report["sent"]
    generated = [order for order in sent if order["order_reference"].startswith("generated-")]
    assert len(generated) == 200
    assert any(order["deliveries"] == 2 for order in generated)
    assert report["simulator"]["faults"]["500"] > 10 and report["simulator"]["faults"]["timeout"] > 0

    per_reference = report["simulator"]["orders_per_reference"]
    for order in sent:
        reference = order["order_reference"]
        if order["expect"] == "placed":
            assert reference in items, f"{reference} lost"
            expected = "Error" if reference == "sample-unreachable-1" else "Ordered"
            assert items[reference]["status"] == expected, reference
            assert reference not in refused, reference
            if reference.startswith("generated-"):
                assert per_reference.get(reference) == 1, f"{reference} ordered {per_reference.get(reference)} times"
        else:
            assert reference not in items, reference
            reasons = refused[reference]
            assert len(reasons) == order["deliveries"] and all(reasons), reference  # each delivery, with a reason
    assert report["simulator"]["orders"] == len(items)  # no order at ePROM that we did not record
    assert None not in refused  # nothing reached the DLQ by running out of retries
    assert report["order_queue_depth"] == 0  # nothing left in flight
    assert report["simulator"]["callbacks_pending"] == 0
    assert_nothing_left_running(report)


def test_numeric_dialect_with_form_returns(tmp_path: Path) -> None:
    report = run_stack(
        tmp_path, "--no-samples", "--orders", "30", "--invalid-rate", "0", "--dialect", "numbers",
        "--form-return", "Completed", "--out-of-order-callbacks", "0.3", "--duplicate-callbacks", "0.3",
    )  # fmt: skip
    items, _ = outcomes(report)
    assert len(items) == 30
    for item in items.values():
        assert item["status"] == "Completed"
        assert json.loads(item["formData"])["q1"] == "Ja"
        assert item["notificationChannel"] in ("Helsenorge", "None")
        assert item["statusTimestampUtc"].endswith("+00:00")
    assert_nothing_left_running(report)


def test_serve_mode_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "local.run", "--serve", "--no-samples", "--report", str(report)],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
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
