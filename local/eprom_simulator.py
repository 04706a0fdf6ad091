"""A stand-in for Hemit's ePROM: the v2 order API and the callbacks it sends, with faults on demand.

It speaks the real contract (docs/eprom-contract.md): `Authorization: Basic <raw key>`, ePROM's documented 400
messages, the all-zero id for national ids that "do not exist", singleUseCode for NoDistribution, and callbacks
(status, then optionally a form return) to `PUT {callback_base_url}/api/PromsFormOrder`, re-sent until they are
acknowledged with {"success": true}. Both wire dialects ePROM has documented can be chosen.

It judges orders by ePROM's documented rules, written here on their own (`judge_order`), and imports nothing of the
product (layers/): were the product's model wrong, a simulator built on it would agree with it.
"""

import argparse
import contextlib
import hashlib
import heapq
import itertools
import json
import random
import signal
import sys
import threading
import time
import urllib.parse
import uuid
from calendar import monthrange
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import requests

OSLO = ZoneInfo("Europe/Oslo")


class DistributionRule(IntEnum):  # ePROM's names and wire numbers (eprom-contract.md, 3)
    Basic = 0
    AllowUnsecure = 1
    NoDistribution = 2
    BasicOrPaper = 3
    AllowUnsecureOrPaper = 4
    PaperOnly = 5
    HelsenorgeOnly = 6
    DigitalMailboxOnly = 7
    UnsecureOnly = 8


PAPER_RULES = {DistributionRule.BasicOrPaper, DistributionRule.AllowUnsecureOrPaper, DistributionRule.PaperOnly}
PREFERRED_CHANNEL = {
    DistributionRule.NoDistribution: 0,
    DistributionRule.PaperOnly: 4,
    DistributionRule.DigitalMailboxOnly: 2,
    DistributionRule.UnsecureOnly: 3,
}
CHANNEL_NAMES = {0: "None", 1: "Helsenorge", 2: "DigitalMailbox", 3: "Unsecure", 4: "PhysicalMailbox"}
SAMPLE_ANSWERS = {"q1": "Ja", "q2": 3, "kommentar": "Ingen plager"}
STATUS_NUMBERS = {"Completed": 0, "Expired": 1, "Ordered": 2, "Error": 3}


@dataclass
class Form:
    published: bool = True
    paper_enabled: bool = False


@dataclass
class SimulatorConfig:
    api_key: str
    forms: dict[str, Form] = field(default_factory=dict)  # formId (lower-case GUID) -> form
    nonexistent_national_ids: set[str] = field(default_factory=set)  # answered with the all-zero id
    unreachable_national_ids: set[str] = field(default_factory=set)  # Error / PatientUnreachable callback
    latency_seconds: float = 0.0
    # Faults, each a fraction of order requests (drawn in this order); no order is created for any of them.
    rate_500: float = 0.0
    rate_429: float = 0.0
    rate_timeout: float = 0.0
    rate_drop: float = 0.0
    timeout_seconds: float = 5.0  # how long a "timeout" stalls before closing without an answer
    # Creates the order, then a gateway in front of ePROM answers 504: the order exists, its answer is lost.
    rate_lost_answer: float = 0.0
    # Creates the order, then stalls like a "timeout": the order exists, the client's read timeout ends the wait.
    rate_late_answer: float = 0.0
    # Down for this long from start() or reset(): every order request gets `down_status` (a maintenance page or
    # a load balancer with no healthy ePROM behind it), with `Retry-After: down_retry_after` when set.
    down_for_seconds: float = 0.0
    down_status: int = 503
    down_retry_after: int | None = None
    # Signed documents (GET /api/ExternalDocument/{signedFormId}) of forms ordered with mustBeSigned: 404 until this
    # long after the form return (ePROM makes the PDF after the answers), and this fraction of requests gets a 500.
    document_ready_after_seconds: float = 0.0
    rate_document_500: float = 0.0
    document_bytes: int = 20_000  # the size of each signed PDF
    every_document_exists: bool = False  # benchmarks: any signedFormId is a ready PDF of document_bytes
    # What can go wrong with a 200 for a ready document: "truncated" (half the PDF, then the connection closes; no
    # Content-Length), "cut" (the same with the whole PDF's Content-Length), "pdf_header_only" (`%PDF-` alone),
    # "not_pdf" (a proxy's HTML page), "drip" (one byte every document_drip_seconds), "huge" / "huge_unannounced"
    # (a whole PDF of document_huge_bytes, made as it is sent, with / without Content-Length).
    document_fault: str | None = None
    document_drip_seconds: float = 1.0
    document_huge_bytes: int = 150_000_000
    # Order requests accepted per second (a token bucket holding one second's worth, so short bursts pass); above
    # it 429 with `Retry-After: 1`, as a rate limiter in front of ePROM would answer.
    rate_limit_per_second: float | None = None
    max_faults_per_order: int | None = None  # an order (same body) meets at most this many faults, then succeeds
    callback_base_url: str | None = None
    callback_delay_seconds: float = 0.05
    dialect: str = "names"  # "names": enums as names; "numbers": enums as numbers, space-separated Utc stamps
    form_return: str | None = None  # None, "Completed" or "Expired", sent after the status callback
    rate_duplicate_callback: float = 0.0
    # Callbacks sent before ePROM even answers the order (so before we can record it), the form return first.
    rate_out_of_order_callback: float = 0.0
    callback_retry_seconds: float = 0.2
    callback_max_attempts: int = 20
    next_form_order_ids: list[str] = field(default_factory=list)  # ids to hand out first (tests know them ahead)
    seed: int = 1


@dataclass(frozen=True)
class Order:
    """What the simulator keeps of an order it took."""

    national_id: str
    distribution_rule: DistributionRule
    must_be_signed: bool
    metadata: str | None


@dataclass
class Callback:
    form_order_id: str
    payload: dict[str, Any]
    attempts: int = 0
    acknowledged: bool = False


class EpromSimulator:
    def __init__(self, config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config
        self._random = random.Random(config.seed)
        self._lock = threading.Lock()
        self.order_headers: list[dict[str, str]] = []  # headers of every POST to the order API
        self.order_requests: list[dict[str, Any]] = []  # every POST body that reached the order logic
        self.orders: dict[str, dict[str, Any]] = {}  # formOrderId -> request body of created orders
        self.orders_per_reference: Counter[str] = Counter()  # metadata.orderReference of created orders
        self.single_use_codes: list[str] = []
        self.documents: dict[str, tuple[float, bytes]] = {}  # signedFormId -> (ready at, PDF)
        self.document_requests: Counter[str] = Counter()  # signedFormId -> GETs
        self.faults: Counter[str] = Counter()
        self.order_posts = 0  # POSTs to the order API, each attempt (429s and outages included)
        # With rate_limit_per_second: the time ePROM could have taken orders, from the first order request on, and
        # none came (its token bucket full, the tokens it could not hold as seconds at its rate)
        self.idle_seconds = 0.0
        self._faults_per_order: Counter[str] = Counter()
        self._down_until = 0.0
        self._tokens = 0.0
        self._tokens_at = 0.0
        self.callbacks: list[Callback] = []
        self._due: list[tuple[float, int, Callback]] = []
        self._sequence = itertools.count()
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._threads = [
            threading.Thread(target=self._server.serve_forever, name="eprom-sim-http", daemon=True),
            threading.Thread(target=self._send_callbacks, name="eprom-sim-callbacks", daemon=True),
        ]

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "EpromSimulator":
        self._begin_outage_and_rate_limit()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> "EpromSimulator":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def reset(self, config: SimulatorConfig) -> None:
        """New behaviour and fresh counters, with the fault draws starting again from `config.seed`."""
        with self._lock:
            self.config = config
            self._random.seed(config.seed)
            self.order_headers.clear()
            self.order_requests.clear()
            self.faults.clear()
            self.order_posts, self.idle_seconds = 0, 0.0
            self._faults_per_order.clear()
            self._begin_outage_and_rate_limit()

    def _begin_outage_and_rate_limit(self) -> None:
        self._down_until = time.monotonic() + self.config.down_for_seconds
        self._tokens, self._tokens_at = self._bucket_size(), time.monotonic()

    def _bucket_size(self) -> float:
        return max(1.0, self.config.rate_limit_per_second or 0.0)

    def _unavailable(self) -> tuple[int, dict[str, str]] | None:
        """During an outage, or above the rate limit: the status and headers to answer with."""
        with self._lock:
            now = time.monotonic()
            if now < self._down_until:
                self.faults["down"] += 1
                retry_after = self.config.down_retry_after
                return self.config.down_status, ({"Retry-After": str(retry_after)} if retry_after else {})
            limit = self.config.rate_limit_per_second
            if limit:
                refilled = self._tokens + (now - self._tokens_at) * limit
                if self.order_posts > 1:  # before the first, ePROM had nothing to take
                    self.idle_seconds += max(0.0, refilled - self._bucket_size()) / limit
                self._tokens = min(self._bucket_size(), refilled)
                self._tokens_at = now
                if self._tokens < 1.0:
                    self.faults["rate_limited"] += 1
                    return 429, {"Retry-After": "1"}
                self._tokens -= 1.0
        return None

    def pending_callbacks(self) -> int:
        with self._lock:
            return sum(1 for callback in self.callbacks if not callback.acknowledged)

    # --- the order API -------------------------------------------------------------------------------------------

    def _handle_order(self, authorization: str | None, raw_body: bytes) -> tuple[int, Any]:
        if authorization != f"Basic {self.config.api_key}":
            return 401, {"message": "Authorization has been denied for this request."}
        try:
            body = json.loads(raw_body)
        except ValueError:
            return 400, {"message": "The request body is not valid JSON"}
        with self._lock:
            self.order_requests.append(body)
        request = judge_order(body, self.config.forms)
        if isinstance(request, str):
            return 400, {"message": request}
        if request.national_id in self.config.nonexistent_national_ids:
            return 200, body | {"id": str(uuid.UUID(int=0)), "singleUseCode": None, "loginUrl": None}

        with self._lock:
            given = self.config.next_form_order_ids
            form_order_id = given.pop(0) if given else str(uuid.uuid4())
        channel = PREFERRED_CHANNEL.get(request.distribution_rule, 1)
        answer = body | {
            "id": form_order_id,
            "loginUrl": f"{self.base_url}/login",
            "notificationChannel": self._enum(CHANNEL_NAMES, channel),
            "singleUseCode": f"{self._random.randrange(10**7, 10**8)}"
            if request.distribution_rule is DistributionRule.NoDistribution
            else None,
        }
        with self._lock:
            self.orders[form_order_id] = body
            if answer["singleUseCode"]:
                self.single_use_codes.append(answer["singleUseCode"])
            reference = _order_reference(request.metadata)
            if reference:
                self.orders_per_reference[reference] += 1
        self._schedule_callbacks(form_order_id, request)
        return 200, answer

    def _draw_fault(self, body: bytes) -> str | None:
        order = hashlib.sha256(body).hexdigest()
        with self._lock:
            draw = self._random.random()
            limit = self.config.max_faults_per_order
            if limit is not None and self._faults_per_order[order] >= limit:
                return None
        for fault, rate in (
            ("500", self.config.rate_500),
            ("429", self.config.rate_429),
            ("timeout", self.config.rate_timeout),
            ("drop", self.config.rate_drop),
            ("lost_answer", self.config.rate_lost_answer),
            ("late_answer", self.config.rate_late_answer),
        ):
            if draw < rate:
                with self._lock:
                    self.faults[fault] += 1
                    self._faults_per_order[order] += 1
                return fault
            draw -= rate
        return None

    # --- callbacks -----------------------------------------------------------------------------------------------

    def _schedule_callbacks(self, form_order_id: str, request: Order) -> None:
        if not self.config.callback_base_url:
            return
        unreachable = request.national_id in self.config.unreachable_national_ids
        channel = 0 if unreachable else PREFERRED_CHANNEL.get(request.distribution_rule, 1)
        status = self._status_callback(form_order_id, channel, unreachable)
        sequence = [status]
        if self.config.form_return and not unreachable:
            sequence.append(self._form_return(form_order_id, channel, request))
        with self._lock:
            duplicate = self._random.random() < self.config.rate_duplicate_callback
            out_of_order = self._random.random() < self.config.rate_out_of_order_callback
        if duplicate:
            sequence.append(dict(sequence[0]))
        if out_of_order:
            for payload in reversed(sequence):  # now, in this request, before the order is answered
                self._deliver(self._new_callback(form_order_id, payload))
            return
        delay = self.config.callback_delay_seconds
        for position, payload in enumerate(sequence):
            # A later callback of the same order is sent a little later, as ePROM would.
            self._enqueue(self._new_callback(form_order_id, payload), delay * (position + 1))

    def _new_callback(self, form_order_id: str, payload: dict[str, Any]) -> Callback:
        callback = Callback(form_order_id, payload)
        with self._lock:
            self.callbacks.append(callback)
        return callback

    def _enqueue(self, callback: Callback, delay: float) -> None:
        with self._wake:
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._sequence), callback))
            self._wake.notify()

    def _send_callbacks(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and (not self._due or self._due[0][0] > time.monotonic()):
                    self._wake.wait(timeout=(self._due[0][0] - time.monotonic()) if self._due else None)
                if self._stopping:
                    return
                _, _, callback = heapq.heappop(self._due)
            self._deliver(callback)

    def _deliver(self, callback: Callback) -> None:
        """One attempt; ePROM sends a callback again until it is acknowledged with {"success": true}."""
        with self._lock:
            callback.attempts += 1
        try:
            reply = requests.put(
                f"{self.config.callback_base_url}/api/PromsFormOrder", json=callback.payload, timeout=10
            )
            acknowledged = reply.status_code == 200 and reply.json().get("success") is True
        except (requests.RequestException, ValueError):
            acknowledged = False
        if acknowledged:
            with self._lock:
                callback.acknowledged = True
        elif callback.attempts < self.config.callback_max_attempts:
            self._enqueue(callback, self.config.callback_retry_seconds)

    def _status_callback(self, form_order_id: str, channel: int, unreachable: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "apiKey": self.config.api_key,
            "formOrderId": form_order_id,
            "notificationChannel": self._enum(CHANNEL_NAMES, channel),
            "formOrderStatus": self._status("Error" if unreachable else "Ordered"),
            "formOrderStatusErrorCode": self._enum({0: "None", 1: "PatientUnreachable"}, 1 if unreachable else 0),
        }
        if not unreachable:  # Hemit's Error example carries no timestamps at all
            payload |= self._timestamps()
        return payload

    def _form_return(self, form_order_id: str, channel: int, request: Order) -> dict[str, Any]:
        status = self.config.form_return or "Completed"
        signed_form_id = str(uuid.UUID(int=0))
        if request.must_be_signed and status == "Completed":
            signed_form_id = str(uuid.uuid4())
            ready_at = time.monotonic() + self.config.callback_delay_seconds + self.config.document_ready_after_seconds
            with self._lock:
                self.documents[signed_form_id] = (ready_at, signed_pdf(signed_form_id, self.config.document_bytes))
        return {
            "apiKey": self.config.api_key,
            "formOrderId": form_order_id,
            "formData": json.dumps(SAMPLE_ANSWERS) if status == "Completed" else None,
            "formOrderStatus": self._status(status),
            "signedFormId": signed_form_id,
            "scannedPaperId": None,
            "formDataWarnings": [],
            "notificationChannel": self._enum(CHANNEL_NAMES, channel),
            "isPatientInitiated": False,
            "formOrderEventLog": [{"eventType": "Opened", "questionId": None, "timestampUtc": _utc_now_text()}],
        } | self._timestamps()

    def _timestamps(self) -> dict[str, str]:
        now = datetime.now(UTC)
        if self.config.dialect == "numbers":
            return {
                "timestamp": now.astimezone(OSLO).isoformat(),
                "timestampUtc": now.strftime("%Y-%m-%d %H:%M:%S.") + f"{now.microsecond // 1000:03d}",
            }
        local = now.astimezone(OSLO).replace(tzinfo=None).isoformat(timespec="microseconds") + "2"
        return {"timestamp": local, "timestampUtc": now.replace(tzinfo=None).isoformat(timespec="microseconds") + "2Z"}

    def _enum(self, names: dict[int, str], number: int) -> int | str:
        return number if self.config.dialect == "numbers" else names[number]

    def _status(self, name: str) -> str:
        return str(STATUS_NUMBERS[name]) if self.config.dialect == "numbers" else name

    # --- the verification's view (`eprom --local verify`): what ePROM received, and the person's part -------------

    def orders_for(self, order_reference: str) -> list[dict[str, Any]]:
        """The orders created for this metadata.orderReference, as the verification may see them: no national ids."""
        with self._lock:
            found = [(form_order_id, body) for form_order_id, body in self.orders.items()
                     if _order_reference(body.get("metadata")) == order_reference]  # fmt: skip
        return [{"formOrderId": form_order_id, "formId": body.get("formId"),
                 "onBehalfOf": body.get("onBehalfOfNationalId") is not None,
                 "mustBeSigned": bool(body.get("mustBeSigned"))} for form_order_id, body in found]  # fmt: skip

    def fill_form(self, form_order_id: str) -> bool:
        """The person fills (and, if ordered so, signs) the form: ePROM sends the form return."""
        with self._lock:
            body = self.orders.get(form_order_id)
        if body is None or not self.config.callback_base_url:
            return False
        request = judge_order(body, self.config.forms)
        if not isinstance(request, Order):
            return False
        payload = self._form_return(form_order_id, PREFERRED_CHANNEL.get(request.distribution_rule, 1), request)
        self._enqueue(self._new_callback(form_order_id, payload), self.config.callback_delay_seconds)
        return True

    # --- signed documents ------------------------------------------------------------------------------------------

    def _handle_document(self, authorization: str | None, signed_form_id: str) -> tuple[int, bytes, str]:
        if authorization != f"Basic {self.config.api_key}":
            return 401, b'{"message": "Authorization has been denied for this request."}', "application/json"
        with self._lock:
            self.document_requests[signed_form_id] += 1
            fault = self._random.random() < self.config.rate_document_500
            if self.config.every_document_exists and signed_form_id not in self.documents:
                self.documents[signed_form_id] = (0.0, signed_pdf(signed_form_id, self.config.document_bytes))
            ready_at, pdf = self.documents.get(signed_form_id, (None, b""))
        if fault:
            with self._lock:
                self.faults["document_500"] += 1
            return 500, b'{"message": "An error has occurred."}', "application/json"
        if ready_at is None or time.monotonic() < ready_at:
            with self._lock:
                self.faults["document_not_ready"] += ready_at is not None
            return 404, b'{"message": "Not found"}', "application/json"
        return 200, pdf, "application/pdf"

    # --- HTTP ----------------------------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path.startswith("/_simulator/orders?orderReference="):
                    reference = urllib.parse.unquote(self.path.partition("=")[2])
                    self._reply(200, simulator.orders_for(reference))
                    return
                prefix = "/api/ExternalDocument/"
                if not self.path.startswith(prefix):
                    self._reply(404, {"message": "Not found"})
                    return
                signed_form_id = self.path.removeprefix(prefix)
                status, content, content_type = simulator._handle_document(
                    self.headers.get("Authorization"), signed_form_id
                )
                if status == 200 and simulator.config.document_fault:
                    self._send_faulty_document(simulator.config.document_fault, signed_form_id, content)
                    return
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with simulator._lock:
                    simulator.order_headers.append(dict(self.headers.items()))
                if self.path.startswith("/_simulator/fill/"):
                    filled = simulator.fill_form(self.path.removeprefix("/_simulator/fill/"))
                    self._reply(200 if filled else 404, {"filled": filled})
                    return
                if self.path.rstrip("/") != "/api/v2/formorder":
                    self._reply(404, {"message": "Not found"})
                    return
                with simulator._lock:
                    simulator.order_posts += 1
                unavailable = simulator._unavailable()
                if unavailable:
                    status, headers = unavailable
                    self._reply(status, {"message": "Service Unavailable"}, headers)
                    return
                if simulator.config.latency_seconds:
                    time.sleep(simulator.config.latency_seconds)
                fault = simulator._draw_fault(body)
                if fault == "lost_answer":
                    simulator._handle_order(self.headers.get("Authorization"), body)
                    self._reply(504, {"message": "Gateway Timeout"})
                elif fault == "500":
                    self._reply(500, {"message": "An error has occurred."})
                elif fault == "429":
                    self._reply(429, {"message": "Too many requests"})
                elif fault in ("timeout", "drop", "late_answer"):
                    if fault == "late_answer":
                        simulator._handle_order(self.headers.get("Authorization"), body)
                    if fault in ("timeout", "late_answer"):
                        time.sleep(simulator.config.timeout_seconds)
                    self.close_connection = True
                    self.connection.close()
                else:
                    self._reply(*simulator._handle_order(self.headers.get("Authorization"), body))

            def _send_faulty_document(self, fault: str, signed_form_id: str, pdf: bytes) -> None:
                config = simulator.config
                with simulator._lock:
                    simulator.faults[f"document_{fault}"] += 1
                chunks: Iterable[bytes] = [pdf]
                length: int | None = len(pdf)
                if fault in ("truncated", "cut"):
                    chunks, length = [pdf[: len(pdf) // 2]], None if fault == "truncated" else len(pdf)
                    self.close_connection = True
                elif fault == "pdf_header_only":
                    chunks, length = [b"%PDF-"], 5
                elif fault == "not_pdf":
                    page = b"<html><body>Service temporarily unavailable</body></html>"
                    chunks, length = [page], len(page)
                elif fault in ("huge", "huge_unannounced"):
                    chunks = signed_pdf_chunks(signed_form_id, config.document_huge_bytes)
                    length = config.document_huge_bytes if fault == "huge" else None
                elif fault == "drip":
                    chunks = _drip(pdf, config.document_drip_seconds, lambda: simulator._stopping)
                self.send_response(200)
                self.send_header("Content-Type", "text/html" if fault == "not_pdf" else "application/pdf")
                if length is None:  # the body ends where the connection does
                    self.send_header("Connection", "close")
                    self.close_connection = True
                else:
                    self.send_header("Content-Length", str(length))
                self.end_headers()
                try:
                    for chunk in chunks:
                        self.wfile.write(chunk)
                except OSError:  # the client gave up
                    self.close_connection = True

            def _reply(self, status: int, content: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(content).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: request lines would only clutter test and `make run` output

        return Handler


def signed_pdf(signed_form_id: str, size: int) -> bytes:
    """A small, valid PDF (one empty page) padded with a comment to `size` bytes."""
    return b"".join(signed_pdf_chunks(signed_form_id, size))


def signed_pdf_chunks(signed_form_id: str, size: int, chunk_bytes: int = 1024 * 1024) -> Iterator[bytes]:
    """signed_pdf in pieces of at most about `chunk_bytes`, made as they are asked for (a huge one is never whole)."""
    head = b"%PDF-1.4\n"
    body = (
        b"1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
    )
    tail = b"trailer<</Root 1 0 R>>\n%%EOF\n"
    padding = b"% signed form " + signed_form_id.encode() + b" "
    filler = max(0, size - len(head) - len(body) - len(tail) - len(padding) - 1)
    yield head + body + padding
    for start in range(0, filler, chunk_bytes):
        yield b"x" * min(chunk_bytes, filler - start)
    yield b"\n" + tail


def _drip(content: bytes, seconds_per_byte: float, stopping: Callable[[], bool]) -> Iterator[bytes]:
    for position in range(len(content)):
        if stopping():
            return
        time.sleep(seconds_per_byte)
        yield content[position : position + 1]


# --- ePROM's judgement of an order (eprom-contract.md 1 and 4, national-id.md) ---------------------------------------

MUST_BE_SIGNED_NO_DISTRIBUTION = (
    "The ordered form needs to be signed. This is not possible when using DistributionRule = 'NoDistribution'."
)
MUST_BE_SIGNED_ON_BEHALF = (
    "The ordered form needs to be signed. This is not possible when the form is ordered on behalf of someone."
)
NOT_SUPPORTED_AS_NATIONAL_ID = (
    "{kind} is not supported as national ID. The national ID must be either Norsk fødselsnummer or D-nummer."
)
NOT_A_NATIONAL_ID = "The national ID must be a valid Norsk fødselsnummer or D-nummer (11 digits)."
CONTROL_WEIGHTS_1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
CONTROL_WEIGHTS_2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
# Synthetic test persons (ePROM's test environment takes them): month + 65 (NHN SyntPop), month + 80 (Tenor).
SYNTHETIC_MONTH_OFFSETS = (0, 65, 80)


def judge_order(body: Any, forms: dict[str, Form]) -> Order | str:
    """ePROM's verdict on an order body: the order it takes, or the message of its 400. Members ePROM does not
    know are not judged (undocumented; ASP.NET's JSON binding ignores them by default)."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object"
    form_id = _guid(body.get("formId"))
    if form_id is None:
        return "formId: a GUID is required"
    for key in ("nationalId", "onBehalfOfNationalId"):
        problem = national_id_problem(body.get(key)) if key == "nationalId" or body.get(key) is not None else None
        if problem:
            return f"{key}: {problem}"
    expiry = _date_time(body.get("expiryDate"))
    if expiry is None:
        return "expiryDate: a date-time is required, e.g. 2027-03-01T00:00:00+01:00"
    if expiry <= datetime.now(UTC):
        return "expiryDate: must be in the future"
    rule = _distribution_rule(body.get("distributionRule", DistributionRule.Basic.value))
    if rule is None:
        return f"distributionRule: must be one of {', '.join(DistributionRule.__members__)} or its number"
    for key in ("dontStoreCompletedFormInPha", "mustBeSigned", "testMode"):
        if not isinstance(body.get(key, False), bool):
            return f"{key}: must be true or false"
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, str):
            return "metadata: must be a string holding JSON"  # an object is not a string: JSON encoded twice
        try:
            json.loads(metadata, parse_constant=_not_json)
        except ValueError as error:
            return f"JSON in metadata is not valid: {error}"
    if not isinstance(body.get("signingText"), str | None):
        return "signingText: must be a string"
    address = body.get("physicalAddress")
    if address is not None and not (
        isinstance(address, dict)
        and all(isinstance(address.get(key), str) for key in ("fullName", "addressLine1", "postalCode", "postalPlace"))
    ):
        return "physicalAddress: fullName, addressLine1, postalCode and postalPlace are strings"
    must_be_signed = body.get("mustBeSigned", False)
    if must_be_signed and rule is DistributionRule.NoDistribution:
        return MUST_BE_SIGNED_NO_DISTRIBUTION
    if must_be_signed and body.get("onBehalfOfNationalId"):
        return MUST_BE_SIGNED_ON_BEHALF
    form = forms.get(form_id)
    if form is None:
        return f"No form with id='{form_id}' exists"
    if not form.published:
        return "The ordered form is not Published"
    if rule in PAPER_RULES and not form.paper_enabled:
        return f"Form with id='{form_id}' is not paper enabled"
    return Order(body["nationalId"], rule, must_be_signed, metadata)


def national_id_problem(value: object) -> str | None:
    """A fødselsnummer or D-nummer (first digit + 4) passes; H-nummer (month + 40) and FH-nummer (first digit 8 or
    9) get ePROM's messages. Control digits by either rule Skatteetaten has: (sum + k1) % 11 == 0, or from 2032
    0..3; k2 always 0. The date must be a calendar day (29.02 in any year divisible by 4: 2000 was a leap year)."""
    if not (isinstance(value, str) and len(value) == 11 and value.isascii() and value.isdigit()):
        return NOT_A_NATIONAL_ID
    digits = [int(digit) for digit in value]
    if digits[0] >= 8:
        return NOT_SUPPORTED_AS_NATIONAL_ID.format(kind="FH-nummer")
    day, month, year = int(value[0:2]), int(value[2:4]), int(value[4:6])
    if 41 <= month <= 52:
        return NOT_SUPPORTED_AS_NATIONAL_ID.format(kind="H-nummer")
    k1_remainder = (sum(w * d for w, d in zip(CONTROL_WEIGHTS_1, digits, strict=False)) + digits[9]) % 11
    k2_remainder = (sum(w * d for w, d in zip(CONTROL_WEIGHTS_2, digits, strict=False)) + digits[10]) % 11
    if k1_remainder not in (0, 1, 2, 3) or k2_remainder != 0:
        return NOT_A_NATIONAL_ID
    day -= 40 if digits[0] >= 4 else 0
    months = [month - offset for offset in SYNTHETIC_MONTH_OFFSETS if 1 <= month - offset <= 12]
    leap_year = 2000 + year if year % 4 == 0 else 2001
    if not months or not 1 <= day <= monthrange(leap_year, months[0])[1]:
        return NOT_A_NATIONAL_ID
    return None


def _guid(value: object) -> str | None:
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def _date_time(value: object) -> datetime | None:
    """ISO 8601 with an offset or Z; without one it is Norwegian time."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return moment.replace(tzinfo=OSLO) if moment and moment.tzinfo is None else moment


def _distribution_rule(value: object) -> DistributionRule | None:
    """A name (any case), a number, or a number in a string."""
    if isinstance(value, str):
        names = {name.lower(): rule for name, rule in DistributionRule.__members__.items()}
        if value.lower() in names:
            return names[value.lower()]
        value = int(value) if value.isascii() and value.isdigit() else None
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    try:
        return DistributionRule(value)
    except ValueError:
        return None


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def _order_reference(metadata: str | None) -> str | None:
    try:
        content = json.loads(metadata) if metadata else None
    except ValueError:
        return None
    return content.get("orderReference") if isinstance(content, dict) else None


def _utc_now_text() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def main(argv: list[str]) -> int:
    """Run the simulator as a process of its own: `python -m local.eprom_simulator --api-key K --form GUID`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--form", action="append", default=[], help="a published formId (repeatable)")
    parser.add_argument("--paper-form", action="append", default=[], help="a published, paper-enabled formId")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each order is answered")
    parser.add_argument("--callback-base-url", help="where to PUT callbacks (none are sent without it)")
    parser.add_argument("--every-document-exists", action="store_true",
                        help="any GET /api/ExternalDocument/{id} answers a PDF (benchmarks)")  # fmt: skip
    parser.add_argument("--document-bytes", type=int, default=20_000, help="the size of each signed PDF")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    forms = {form: Form() for form in args.form} | {form: Form(paper_enabled=True) for form in args.paper_form}
    config = SimulatorConfig(
        api_key=args.api_key,
        forms=forms,
        latency_seconds=args.latency,
        callback_base_url=args.callback_base_url,
        every_document_exists=args.every_document_exists,
        document_bytes=args.document_bytes,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with EpromSimulator(config, port=args.port) as simulator:
        print(f"ePROM simulator listening on {simulator.base_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
