"""A stand-in for Hemit's ePROM: the v2 order API, messages to citizens (letters, SMS, e-mail), the privacy-settings
(PVK) calls and the callbacks it sends (with PVK's replication callback), with faults on demand.

It speaks the real contract (docs/eprom-contract.md): `Authorization: Basic <raw key>`, ePROM's documented 400
messages, the all-zero id for national ids that "do not exist", singleUseCode for NoDistribution, and callbacks
(status, then optionally a form return) to `PUT {callback_base_url}/api/PromsFormOrder`, re-sent until they are
acknowledged with {"success": true}. Both wire dialects ePROM has documented can be chosen.

It judges requests by ePROM's documented rules, written here on their own (`judge_order`, `judge_letter`,
`judge_unsecure_message`), and imports nothing of the product (layers/): were the product's model wrong, a simulator
built on it would agree with it. One thing it cannot read from ePROM's pages: the shape of a letter's
`documentCollection`, which ePROM does not publish. The simulator reads the shape this project assumes
(docs/eprom-contract.md §7), so only `eprom verify --letter` against ePROM's test environment checks that shape.
"""

import argparse
import base64
import binascii
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
from dataclasses import dataclass, field, replace
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


@dataclass(frozen=True)
class PvkDefinition:
    """A reservation or consent definition registered on the ordering system; `generated_residents` synthetic
    residents (SyntPop ids: no real person's) are active in it besides those set through the simulator."""

    name: str
    type: int = 0  # 0 Reservasjon, 1 Samtykke
    generated_residents: int = 0


@dataclass
class PvkSetting:
    status: int  # 0 IkkeAktiv, 1 Aktiv
    sequence_number: int
    created: str
    changed: str


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
    # Content-Length), "cut" (the same with the whole PDF's Content-Length), "cut_at_revision" (the PDF up to its
    # first revision's %%EOF, the signature's update lost, no Content-Length), "trailing_eof" (half the PDF and a
    # %%EOF, no Content-Length), "chunked_cut" (chunked, the connection closed before the last chunk),
    # "pdf_header_only" (`%PDF-` alone), "not_pdf" (a proxy's HTML page), "drip" (one byte every
    # document_drip_seconds), "huge" / "huge_unannounced" (a whole PDF of document_huge_bytes, made as it is sent,
    # with / without Content-Length). And the whole PDF framed otherwise: "unannounced" (no Content-Length, the
    # connection closes at its end), "chunked" (Transfer-Encoding: chunked).
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
    next_form_order_ids: list[str] = field(default_factory=list)  # ids to hand out first, orders' and letters'
    # Letters to these persons are taken, then called back Error (the person could not be notified). A letter to one
    # of unreachable_national_ids is answered notificationChannel "0" (nothing sent) and never called back.
    undeliverable_letter_national_ids: set[str] = field(default_factory=set)
    seed: int = 1
    # Privacy settings (PVK): the ordering system's definitions (pvkId, lower case -> definition), its part code
    # (None: not registered, so the list answers 400), residents per list page, the share of PVK calls answered 502
    # ("PVK failed"; the order faults above apply to PVK calls too), and where the replication callback carries the
    # key: "authorization" (Authorization: Basic <key>), "apikey" (an ApiKey header) or "body" (apiKey member).
    pvk_definitions: dict[str, "PvkDefinition"] = field(default_factory=dict)
    pvk_part_code: str | None = "REGISTER"
    pvk_page_size: int = 1000
    rate_pvk_502: float = 0.0
    privacy_callback_key_in: str = "authorization"
    # A list that goes wrong on its second page: "502" (PVK failed), or "repeated_reference" (the paging reference
    # of the first page again, so following it would never end)
    pvk_list_fault: str | None = None


@dataclass(frozen=True)
class Order:
    """What the simulator keeps of an order it took."""

    national_id: str
    distribution_rule: DistributionRule
    must_be_signed: bool
    metadata: str | None


@dataclass
class Callback:
    form_order_id: str  # or a letter's messageToCitizenId
    payload: dict[str, Any]
    attempts: int = 0
    acknowledged: bool = False
    path: str = "/api/PromsFormOrder"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    """A letter, SMS or e-mail the simulator took. `to`: the national id, phone number or address; `title`: the
    letter's or e-mail's title, or the SMS's text (tests recognise their messages by it)."""

    kind: str
    to: str
    title: str
    channel: int | None = None  # a letter's: the first of its notificationPriorityList (0: nothing sent)
    message_to_citizen_id: str | None = None
    documents: tuple[int, ...] = ()  # a letter's PDFs' sizes, the main document first


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
        self.last_acknowledged_at = time.monotonic()  # when a callback was last acknowledged (its item written)
        self.message_headers: list[dict[str, str]] = []  # headers of every POST of a letter, SMS or e-mail
        self.message_requests: list[Any] = []  # every such POST's body that reached the message logic
        self.messages: list[Message] = []  # every message taken (none for a refusal or a fault)
        self.privacy_settings: dict[tuple[str, str, int], PvkSetting] = {}  # (nationalId, pvkId, type) -> setting
        self.pvk_requests: list[tuple[str, Any]] = []  # (path, body) of every PVK call that reached its logic
        self._generated_residents: dict[str, list[str]] = {}
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
        assert isinstance(host, str)  # an IPv4 server's address: (host, port)
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
            self.message_headers.clear()
            self.message_requests.clear()
            self.messages.clear()
            self.pvk_requests.clear()
            self.privacy_settings.clear()  # PVK as fresh as the rest
            self._generated_residents.clear()
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
                f"{self.config.callback_base_url}{callback.path}",
                json=callback.payload,
                headers=callback.headers,
                timeout=10,
            )
            acknowledged = reply.status_code == 200 and reply.json().get("success") is True
        except (requests.RequestException, ValueError):
            acknowledged = False
        if acknowledged:
            with self._lock:
                callback.acknowledged = True
                self.last_acknowledged_at = time.monotonic()
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

    # --- messages to citizens: letters, SMS and e-mail (eprom-contract.md §7) ------------------------------------

    def _handle_message(self, path: str, authorization: str | None, raw_body: bytes) -> tuple[int, Any]:
        try:
            body = json.loads(raw_body)
        except ValueError:
            return 400, {"message": "The request body is not valid JSON"}
        with self._lock:
            self.message_requests.append(body)
        if path == LETTER_PATH:
            if authorization != f"Basic {self.config.api_key}":
                return 401, {"message": "Authorization has been denied for this request."}
            return self._take_letter(body)
        api_key = body.get("apiKey") if isinstance(body, dict) else None
        if api_key != self.config.api_key:  # ePROM's own words, the key echoed back (a pitfall for logs)
            return 400, {"message": f"apiKey '{api_key}' doesn't exists"}
        message = judge_unsecure_message("sms" if path == SMS_PATH else "email", body)
        if isinstance(message, str):
            return 400, {"message": message}
        with self._lock:
            self.messages.append(message)
        return 200, {"success": True} if self.config.dialect == "names" else {"Success": True}

    def _take_letter(self, body: Any) -> tuple[int, Any]:
        letter = judge_letter(body)
        if isinstance(letter, str):
            return 400, {"message": letter}
        if letter.to in self.config.unreachable_national_ids:  # nothing sent: documented as the string "0"
            with self._lock:
                self.messages.append(replace(letter, channel=0))
            return 200, {"notificationChannel": "0", "messageToCitizenId": str(uuid.UUID(int=0))}
        with self._lock:
            given = self.config.next_form_order_ids
            message_to_citizen_id = given.pop(0) if given else str(uuid.uuid4())
            self.messages.append(replace(letter, message_to_citizen_id=message_to_citizen_id))
        channel = letter.channel or 1
        if self.config.callback_base_url:  # the letter's fate, later (letters come last in ePROM's queue)
            sent_status = 1 if letter.to in self.config.undeliverable_letter_national_ids else 0
            payload = {"apiKey": self.config.api_key, "messageToCitizenId": message_to_citizen_id,
                       "notificationChannel": channel, "sentStatus": sent_status}  # fmt: skip
            callback = Callback(message_to_citizen_id, payload, path="/api/MessageToCitizen")
            with self._lock:
                self.callbacks.append(callback)
            self._enqueue(callback, self.config.callback_delay_seconds)
        return 200, {"notificationChannel": self._enum(CHANNEL_NAMES, channel),
                     "messageToCitizenId": message_to_citizen_id}  # fmt: skip

    def messages_titled(self, title: str) -> list[Message]:
        """The messages taken with this title (a letter's or e-mail's title, an SMS's text)."""
        with self._lock:
            return [message for message in self.messages if message.title == title]

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

    # --- privacy settings (PVK, eprom-contract.md §8) ---------------------------------------------------------------

    def _handle_pvk(self, path: str, authorization: str | None, raw_body: bytes) -> tuple[int, Any]:
        if authorization != f"Basic {self.config.api_key}":
            return 401, pvk_error(401, "Authorization has been denied for this request.")
        try:
            body = json.loads(raw_body)
        except ValueError:
            return 400, pvk_error(400, "The request body is not valid JSON")
        if not isinstance(body, dict):
            return 400, pvk_error(400, "The request body must be a JSON object")
        with self._lock:
            self.pvk_requests.append((path, body))
        if path == PVK_LIST:
            return self._residents_page(body)
        problem = judge_pvk_request(body, with_status=path == PVK_SET)
        if problem:
            return 400, pvk_error(400, problem)
        definition = self.config.pvk_definitions.get(str(body["pvkId"]).lower())
        if definition is None:
            return 502, pvk_error(502, "PVK failed: no such definition")
        key = (body["nationalId"], str(body["pvkId"]).lower(), _pvk_code(PVK_TYPES, body["type"]))
        if path == PVK_GET:
            with self._lock:
                setting = self.privacy_settings.get(key)
            return 200, self._pvk_setting_answer(body, definition, key[2], setting)
        with self._lock:
            changed = self._set_privacy_setting(key, _pvk_code(PVK_STATUSES, body["status"]))
        return 200, {"instansEndret": self._pvk_enum(PVK_CHANGED, 1 if changed else 0)}

    def _set_privacy_setting(self, key: tuple[str, str, int], status: int) -> bool:
        """Under the lock: the setting set to `status`; whether that changed it."""
        setting = self.privacy_settings.get(key)
        if setting is not None and setting.status == status:
            return False
        now = _oslo_now_text()
        if setting is None:
            setting = self.privacy_settings[key] = PvkSetting(
                status=status, sequence_number=0, created=now, changed=now
            )
        setting.status, setting.changed = status, now
        setting.sequence_number += 1
        return True

    def _pvk_setting_answer(
        self, body: dict[str, Any], definition: "PvkDefinition", pvk_type: int, setting: "PvkSetting | None"
    ) -> dict[str, Any]:
        return {
            "nationalId": body["nationalId"],
            "type": self._pvk_enum(PVK_TYPES, pvk_type),
            "id": str(body["pvkId"]).lower(),
            "name": definition.name,
            "status": self._pvk_enum(PVK_STATUSES, setting.status if setting else 0),
            "sequenceNumber": setting.sequence_number if setting else 0,
            "createdDateTimeOffset": setting.created if setting else None,
            "lastChangedDateTimeOffset": setting.changed if setting else None,
        }

    def _residents_page(self, body: dict[str, Any]) -> tuple[int, Any]:
        if not self.config.pvk_part_code:
            return 400, pvk_error(400, '"PvkPart" is missing: no part code is registered for the ordering system')
        pvk_id = _guid(body.get("pvkId"))
        if pvk_id is None:
            return 400, pvk_error(400, "pvkId is missing or not a GUID")
        reference = body.get("pagingReference", 0)
        if isinstance(reference, str) and reference.isascii() and reference.isdigit():
            reference = int(reference)
        if not isinstance(reference, int) or isinstance(reference, bool) or reference < 0:
            return 400, pvk_error(400, "pagingReference is not a number")
        definition = self.config.pvk_definitions.get(pvk_id)
        if definition is None:
            return 502, pvk_error(502, "PVK failed: no such definition")
        if reference >= 1 and self.config.pvk_list_fault == "502":
            return 502, pvk_error(502, "PVK failed: the privacy component did not answer")
        size = self.config.pvk_page_size
        page, total = self._active_residents(pvk_id, definition, reference * size, size)
        more = (reference + 1) * size < total
        return 200, {
            "pagingReference": (1 if self.config.pvk_list_fault == "repeated_reference" else reference + 1)
            if more
            else 0,
            "id": pvk_id,
            "name": definition.name,
            "partKode": self.config.pvk_part_code,
            "type": self._pvk_enum(PVK_TYPES, definition.type),
            "personvernInnstillinger": [
                # Hemit's example writes these two capitalised
                {
                    "NationalId": national_id,
                    "SequenceNumber": sequence,
                    "createdDateTimeOffset": created,
                    "lastChangedDateTimeOffset": changed,
                }
                for national_id, sequence, created, changed in page
            ],
        }

    def _active_residents(
        self, pvk_id: str, definition: "PvkDefinition", start: int, size: int
    ) -> tuple[list[tuple[str, int, str, str]], int]:
        """Residents `start` to `start + size` of those with an active setting of the definition (those set here,
        then the generated ones), and how many there are."""
        with self._lock:
            generated = self._generated_residents.get(pvk_id)
            if generated is None:
                generated = self._generated_residents[pvk_id] = synthetic_national_ids(definition.generated_residents)
            set_here = [(key[0], setting.sequence_number, setting.created, setting.changed)
                        for key, setting in self.privacy_settings.items()
                        if key[1] == pvk_id and setting.status == 1]  # fmt: skip
        stamp = "2025-10-14T12:00:00+02:00"
        first, last = max(0, start - len(set_here)), max(0, start + size - len(set_here))
        page = set_here[start : start + size] + [
            (national_id, 1, stamp, stamp) for national_id in generated[first:last]
        ]
        return page, len(set_here) + len(generated)

    def helsenorge_change(self, raw_body: bytes) -> tuple[int, Any]:
        """A person changes a setting on Helsenorge (`POST /_simulator/privacy-change {nationalId, pvkId, status}`,
        status a Volven 7609 code): PVK's state changes and ePROM forwards it to the ordering system."""
        try:
            body = json.loads(raw_body)
            national_id, pvk_id, code = body["nationalId"], str(body["pvkId"]).lower(), body["status"]
        except (ValueError, KeyError, TypeError):
            return 400, {"message": "expected {nationalId, pvkId, status}"}
        definition = self.config.pvk_definitions.get(pvk_id)
        if definition is None or code not in VOLVEN_7609:
            return 404, {"message": "no such definition, or not a Volven 7609 code"}
        pvk_type, status = VOLVEN_7609[code]
        with self._lock:
            self._set_privacy_setting((national_id, pvk_id, pvk_type), status)
        self.send_privacy_change({"nationalId": national_id, "id": pvk_id, "name": definition.name, "status": code})
        return 202, {"scheduled": True}

    def send_privacy_change(self, change: dict[str, Any]) -> Callback:
        """PUT {ApiBaseUrl}/api/PersonvernInnstilling, the key where config.privacy_callback_key_in says (the page
        says only "in a header"), re-sent until acknowledged."""
        where, key = self.config.privacy_callback_key_in, self.config.api_key
        headers = {"authorization": {"Authorization": f"Basic {key}"}, "apikey": {"ApiKey": key}}.get(where, {})
        payload = {"apiKey": key} | change if where == "body" else dict(change)
        callback = Callback(str(change.get("id")), payload, path="/api/PersonvernInnstilling", headers=headers)
        with self._lock:
            self.callbacks.append(callback)
        self._enqueue(callback, self.config.callback_delay_seconds)
        return callback

    def _pvk_enum(self, names: dict[int, str], number: int) -> int | str:
        return number if self.config.dialect == "numbers" else names[number]

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
                if self.path.startswith("/_simulator/messages?title="):  # no national ids
                    title = urllib.parse.unquote_plus(self.path.partition("=")[2])
                    self._reply(200, [{"kind": message.kind, "messageToCitizenId": message.message_to_citizen_id,
                                       "documents": list(message.documents)}
                                      for message in simulator.messages_titled(title)])  # fmt: skip
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
                path = self.path.rstrip("/").lower()
                with simulator._lock:
                    headers = simulator.message_headers if path in MESSAGE_PATHS else simulator.order_headers
                    headers.append(dict(self.headers.items()))
                if self.path.startswith("/_simulator/fill/"):
                    filled = simulator.fill_form(self.path.removeprefix("/_simulator/fill/"))
                    self._reply(200 if filled else 404, {"filled": filled})
                    return
                if path == "/_simulator/privacy-change":
                    self._reply(*simulator.helsenorge_change(body))
                    return
                if path in PVK_CALLS:
                    self._pvk_call(path, body)
                    return
                authorization = self.headers.get("Authorization")
                if path == "/api/v2/formorder":
                    with simulator._lock:
                        simulator.order_posts += 1
                    self._answer_with_faults(body, lambda: simulator._handle_order(authorization, body))
                elif path in MESSAGE_PATHS:
                    self._answer_with_faults(body, lambda: simulator._handle_message(path, authorization, body))
                else:
                    self._reply(404, {"message": "Not found"})

            def _answer_with_faults(self, body: bytes, handle: Callable[[], tuple[int, Any]]) -> None:
                """The request's answer, or the fault drawn for it (faults and outage apply to every POST alike)."""
                unavailable = simulator._unavailable()
                if unavailable:
                    status, headers = unavailable
                    self._reply(status, {"message": "Service Unavailable"}, headers)
                    return
                if simulator.config.latency_seconds:
                    time.sleep(simulator.config.latency_seconds)
                fault = simulator._draw_fault(body)
                if fault == "lost_answer":
                    handle()
                    self._reply(504, {"message": "Gateway Timeout"})
                elif fault == "500":
                    self._reply(500, {"message": "An error has occurred."})
                elif fault == "429":
                    self._reply(429, {"message": "Too many requests"})
                elif fault in ("timeout", "drop", "late_answer"):
                    if fault == "late_answer":
                        handle()
                    if fault in ("timeout", "late_answer"):
                        time.sleep(simulator.config.timeout_seconds)
                    self.close_connection = True
                    self.connection.close()
                else:
                    self._reply(*handle())

            def _pvk_call(self, path: str, body: bytes) -> None:
                """The order API's faults apply alike (ePROM's load, its network); "PVK failed" is a 502."""
                unavailable = simulator._unavailable()
                if unavailable:
                    status, headers = unavailable
                    self._reply(status, pvk_error(status, "Service Unavailable"), headers)
                    return
                if simulator.config.latency_seconds:
                    time.sleep(simulator.config.latency_seconds)
                fault = simulator._draw_fault(body)
                with simulator._lock:
                    pvk_failed = simulator._random.random() < simulator.config.rate_pvk_502
                authorization = self.headers.get("Authorization")
                if fault == "lost_answer":
                    simulator._handle_pvk(path, authorization, body)
                    self._reply(504, {"message": "Gateway Timeout"})
                elif fault == "500":
                    self._reply(500, pvk_error(500, "An error has occurred."))
                elif fault == "429":
                    self._reply(429, {"message": "Too many requests"})
                elif fault in ("timeout", "drop", "late_answer"):
                    if fault == "late_answer":
                        simulator._handle_pvk(path, authorization, body)
                    if fault in ("timeout", "late_answer"):
                        time.sleep(simulator.config.timeout_seconds)
                    self.close_connection = True
                    self.connection.close()
                elif pvk_failed:
                    with simulator._lock:
                        simulator.faults["pvk_502"] += 1
                    self._reply(502, pvk_error(502, "PVK failed: the privacy component did not answer"))
                else:
                    self._reply(*simulator._handle_pvk(path, authorization, body))

            def _send_faulty_document(self, fault: str, signed_form_id: str, pdf: bytes) -> None:
                config = simulator.config
                with simulator._lock:
                    simulator.faults[f"document_{fault}"] += 1
                chunks: Iterable[bytes] = [pdf]
                length: int | None = len(pdf)
                chunked = fault in ("chunked", "chunked_cut")
                if fault in ("truncated", "cut"):
                    chunks, length = [pdf[: len(pdf) // 2]], None if fault == "truncated" else len(pdf)
                    self.close_connection = True
                elif fault == "cut_at_revision":
                    chunks, length = [pdf[: pdf.index(b"%%EOF") + len(b"%%EOF\n")]], None
                elif fault == "trailing_eof":
                    chunks, length = [pdf[: len(pdf) // 2] + b"\n%%EOF\n"], None
                elif fault == "unannounced":
                    length = None
                elif chunked:
                    pieces = [pdf[start : start + 4096] for start in range(0, len(pdf), 4096)]
                    chunks = pieces[: len(pieces) // 2] if fault == "chunked_cut" else pieces
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
                if chunked:  # each chunk framed; the last (empty) one ends the body, unless cut before it
                    self.send_header("Transfer-Encoding", "chunked")
                    self.close_connection = fault == "chunked_cut"
                elif length is None:  # the body ends where the connection does
                    self.send_header("Connection", "close")
                    self.close_connection = True
                else:
                    self.send_header("Content-Length", str(length))
                self.end_headers()
                try:
                    for chunk in chunks:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                    if fault == "chunked":
                        self.wfile.write(b"0\r\n\r\n")
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
    """A small, valid signed PDF (one empty page, then the signature as an incremental update), padded with a comment
    in its first revision to `size` bytes."""
    return b"".join(signed_pdf_chunks(signed_form_id, size))


def signed_pdf_chunks(signed_form_id: str, size: int, chunk_bytes: int = 1024 * 1024) -> Iterator[bytes]:
    """signed_pdf in pieces of at most about `chunk_bytes`, made as they are asked for (a huge one is never whole).

    As a signature is added to a PDF (ISO 32000-1, 7.5.6 and 12.8.1): the unsigned document ends with its own
    cross-reference section, startxref and %%EOF, and the signature is appended after it as an update with a
    cross-reference section of its own (/Prev: the first) and a /ByteRange that covers the whole file but /Contents.
    """
    head = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    objects = [
        b"1 0 obj\n<</Type/Catalog/Pages 2 0 R>>\nendobj\n",
        b"2 0 obj\n<</Type/Pages/Kids[3 0 R]/Count 1>>\nendobj\n",
        b"3 0 obj\n<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>\nendobj\n",
    ]
    offsets = [len(head) + sum(map(len, objects[:n])) for n in range(len(objects))]
    padding = b"% signed form " + signed_form_id.encode() + b" "
    contents = b"0" * 512  # the signature's value (hex), which /ByteRange leaves out

    def revisions(filler: int) -> tuple[bytes, bytes]:
        first_xref = len(head) + sum(map(len, objects)) + len(padding) + filler + 1
        first = b"xref\n0 4\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
        first += b"trailer\n<</Size 4/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % first_xref
        signature_at = first_xref + len(first)
        sig = b"4 0 obj\n<</Type/Sig/Filter/Adobe.PPKLite/SubFilter/ETSI.CAdES.detached/ByteRange[0 %s %s %s]/Contents"
        numbers = [b" " * 10] * 3  # fixed width: the numbers are known once the layout is
        before_contents = len(sig % tuple(numbers))

        def update(nums: list[bytes]) -> bytes:
            return (sig % tuple(nums)) + b"<" + contents + b">>>\nendobj\n"

        second_xref = signature_at + len(update(numbers))
        tail = b"xref\n0 1\n0000000000 65535 f \n4 1\n%010d 00000 n \n" % signature_at
        tail += b"trailer\n<</Size 5/Root 1 0 R/Prev %d>>\nstartxref\n%d\n%%%%EOF\n" % (first_xref, second_xref)
        end = second_xref + len(tail)
        contents_at = signature_at + before_contents
        after_contents = contents_at + 1 + len(contents) + 1
        numbers = [b"%-10d" % n for n in (contents_at, after_contents, end - after_contents)]
        return first, update(numbers) + tail

    fixed = len(head) + sum(map(len, objects)) + len(padding) + 1
    filler = max(0, size - fixed - sum(map(len, revisions(0))))
    filler = max(0, size - fixed - sum(map(len, revisions(filler))))  # the offsets' digits may have grown
    first, second = revisions(filler)
    yield head + b"".join(objects) + padding
    for start in range(0, filler, chunk_bytes):
        yield b"x" * min(chunk_bytes, filler - start)
    yield b"\n" + first + second


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


# --- ePROM's judgement of a letter, an SMS or an e-mail (eprom-contract.md 7) ---------------------------------------

LETTER_PATH, SMS_PATH, EMAIL_PATH = "/api/v2/messagetocitizen", "/api/unsecuremessagesms", "/api/unsecuremessageemail"
MESSAGE_PATHS = (LETTER_PATH, SMS_PATH, EMAIL_PATH)
MAIN_DOCUMENT_MISSING = "Main document in MessageToCitizen is missing"
MAX_PDF_BYTES = 30 * 1024 * 1024  # "PDF-filer på opp til 30MB"
CHANNEL_NUMBERS = {name.lower(): number for number, name in CHANNEL_NAMES.items()}


def judge_letter(body: Any) -> Message | str:
    """ePROM's verdict on a letter: the message it takes (the first channel of its list as `channel`), or its 400's
    message. documentCollection is read in the shape this project assumes (the module's docstring): `mainDocument`
    and `attachments`, each with `content` the PDF in base64."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object"
    problem = national_id_problem(body.get("nationalId"))
    if problem:
        return f"nationalId: {problem}"
    for part, members in (("senderInfo", ("organisationName", "organisationNr")), ("messageInfo", ("title",))):
        if not (isinstance(body.get(part), dict) and all(isinstance(body[part].get(m), str) for m in members)):
            return f"{part}: {', '.join(members)} are required strings"
    collection = body.get("documentCollection")
    if not isinstance(collection, dict) or not isinstance(collection.get("mainDocument"), dict):
        return MAIN_DOCUMENT_MISSING
    main, others = collection["mainDocument"], collection.get("attachments") or []
    if not isinstance(others, list):
        return "documentCollection.attachments: must be a list"
    sizes = []
    for document in [main, *others]:
        pdf = _pdf(document)
        if isinstance(pdf, str):
            return pdf
        sizes.append(len(pdf))
    channels = [_channel(value) for value in body.get("notificationPriorityList") or []]
    if not channels or None in channels:
        return "notificationPriorityList: a list of None, Helsenorge, DigitalMailbox, PhysicalMailbox, Unsecure"
    for key in ("testMode", "paperColorPrint"):
        if not isinstance(body.get(key, False), bool):
            return f"{key}: must be true or false"
    first = next((channel for channel in channels if channel), None)
    return Message("letter", body["nationalId"], body["messageInfo"]["title"], channel=first, documents=tuple(sizes))


def judge_unsecure_message(kind: str, body: dict[str, Any]) -> Message | str:
    """ePROM's verdict on an SMS (`smsText`, `nationalId` or `phoneNumber`) or an e-mail (`emailTitle`, `emailText`,
    `nationalId` or `emailAddress`)."""
    address = "phoneNumber" if kind == "sms" else "emailAddress"
    person, to = body.get("nationalId"), body.get(address)
    if not person and not to:
        return f"Either nationalId or {address} must be specified"
    if person and national_id_problem(person):
        return f"nationalId: {national_id_problem(person)}"
    texts = ("smsText",) if kind == "sms" else ("emailTitle", "emailText")
    if not all(isinstance(body.get(text), str) and body[text] for text in texts):
        return f"{' and '.join(texts)} must be given"
    return Message(kind, str(person or to), body[texts[0]])


def _pdf(document: Any) -> bytes | str:
    """A document's PDF, decoded from its base64 `content`, or why it is refused."""
    content = document.get("content") if isinstance(document, dict) else None
    if not isinstance(content, str):
        return MAIN_DOCUMENT_MISSING
    try:
        pdf = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        return "documentCollection: content is not base64"
    if len(pdf) > MAX_PDF_BYTES:
        return "documentCollection: a document is larger than 30MB"
    if not pdf.startswith(b"%PDF-") or b"%%EOF" not in pdf[-1024:]:
        return "documentCollection: a document is not a PDF"
    return pdf


def _channel(value: object) -> int | None:
    """A NotificationChannel by name (any case), number, or number in a string."""
    if isinstance(value, str):
        value = CHANNEL_NUMBERS.get(value.lower(), int(value) if value.isascii() and value.isdigit() else None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value in CHANNEL_NAMES else None


# --- ePROM's judgement of a PVK call (eprom-contract.md §8) -----------------------------------------------------------

PVK_GET, PVK_SET = "/api/v2/getpersonverninnstilling", "/api/v2/setpersonverninnstilling"
PVK_LIST = "/api/v2/get-residents-active-pi-for-definition"
PVK_CALLS = {PVK_GET, PVK_SET, PVK_LIST}
PVK_TYPES = {0: "Reservasjon", 1: "Samtykke"}
PVK_STATUSES = {0: "IkkeAktiv", 1: "Aktiv"}
PVK_CHANGED = {0: "IkkeEndret", 1: "Endret"}
# The replication callback's codes (Volven 7609) -> (type, status) of the setting they leave
VOLVEN_7609 = {"RES": (0, 1), "IRES": (0, 0), "SAM": (1, 1), "ISAM": (1, 0)}
_HTTP_STATUS_NAMES = {400: "BadRequest", 401: "Unauthorized", 500: "InternalServerError", 502: "BadGateway",
                      503: "ServiceUnavailable", 429: "TooManyRequests"}  # fmt: skip


def pvk_error(status: int, message: str) -> dict[str, Any]:
    """ePROM's PVK error body."""
    return {"statusCode": status, "status": _HTTP_STATUS_NAMES.get(status, str(status)), "message": message}


def judge_pvk_request(body: dict[str, Any], *, with_status: bool) -> str | None:
    """The 400s the page lists for get and set: nationalId missing or not 11 long, type missing, status missing (set);
    and a code or pvkId that cannot be read."""
    national_id = body.get("nationalId")
    if not isinstance(national_id, str) or len(national_id) != 11:
        return "nationalId is missing or is not 11 characters long"
    if body.get("type") is None:
        return "type is missing"
    if _pvk_code(PVK_TYPES, body["type"]) is None:
        return "type is not a valid PersonvernInnstillingType"
    if _guid(body.get("pvkId")) is None:
        return "pvkId is missing or not a GUID"
    if with_status and body.get("status") is None:
        return "status is missing"
    if with_status and _pvk_code(PVK_STATUSES, body["status"]) is None:
        return "status is not a valid PersonvernInnstillingStatus"
    return None


def _pvk_code(names: dict[int, str], value: object) -> Any:
    """A code by its number (or a number in a string) or its name in any case; None when it is neither."""
    if isinstance(value, str):
        by_name = {name.lower(): number for number, name in names.items()}
        if value.lower() in by_name:
            return by_name[value.lower()]
        value = int(value) if value.isascii() and value.isdigit() else None
    if isinstance(value, int) and not isinstance(value, bool) and value in names:
        return value
    return None


def synthetic_national_ids(count: int) -> list[str]:
    """`count` distinct valid national ids of NHN's SyntPop kind (month + 65): shaped like real ones, belonging to
    no real person."""
    found: list[str] = []
    for day, month, year, individual in itertools.product(range(1, 29), range(1, 13), range(100), range(1000)):
        if len(found) >= count:
            break
        digits = [int(c) for c in f"{day:02d}{month + 65:02d}{year:02d}{individual:03d}"]
        k1 = (11 - sum(w * d for w, d in zip(CONTROL_WEIGHTS_1, digits, strict=True)) % 11) % 11
        k2 = (11 - sum(w * d for w, d in zip(CONTROL_WEIGHTS_2, [*digits, k1], strict=True)) % 11) % 11
        if k1 < 10 and k2 < 10:
            found.append("".join(map(str, [*digits, k1, k2])))
    return found


def _oslo_now_text() -> str:
    return datetime.now(OSLO).isoformat()


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
