"""ePROM's order API (POST {base}/api/v2/formorder), with every answer classified.

ePROM has no idempotency key, so what matters is whether ePROM may have created the order:
- Placed: ePROM created an order.
- Refused: ePROM will not create it (400, or the all-zero id); retrying is pointless.
- Transient: nothing was created and trying later is safe: the request never left (connection refused, DNS,
  TLS, connect timeout) or ePROM answered that it did not take it (401/403/404/408/500/503, other codes).
- Deferred: not sent yet, by ePROM's pace (pacer.py) or because too little of the caller's time is left: due again
  in a given time, which is flow control, not a failure. A 429 (or a 503 with Retry-After) created nothing: the
  order is sent again in the same call once ePROM's Retry-After has passed, while the caller's time allows.
- Ambiguous: the request was sent and the answer was lost or unreadable (read timeout, connection dropped
  mid-answer, 502/504 from a proxy in front of ePROM, 200 with a body we cannot read): ePROM may have created
  the order, and a retry could create a second one.

Messages to citizens (POST {base}/api/v2/messagetocitizen, api/unsecuremessagesms, api/unsecuremessageemail) are
classified the same way: Accepted (with ePROM's answer), Refused, Transient, Deferred or Ambiguous. A letter's body
streams its PDFs (document_collection.LetterBody); a body that cannot be read to its end cuts the request short, so
ePROM took nothing (Transient). The SMS and e-mail API take the ApiKey in the body, not in a header.

Signed documents (GET {base}/api/ExternalDocument/{signedFormId}) change nothing at ePROM, so every failure there
is safe to retry: Document (a whole PDF, streamed into a file), NotFound (404: maybe not ready yet), Refused (400),
TooLarge (above our limit) or Transient (including a body that is cut short, not a PDF, or too slow).

Privacy settings (PVK, eprom-contract.md §8): get and list only read, and set names the state it wants (never a
toggle), so each may be sent again after any failure. A timeout or a 5xx is retried (each attempt in a slot of the
pace) while the caller's `answer_by` allows; what remains is a PvkFailed with its class: RefusedByEprom (400),
Unauthorized (401/403), PvkUnavailable (502: PVK failed), Transient (timeouts, other 5xx, no slot of the pace).
"""

import hashlib
import json
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from typing import TYPE_CHECKING, BinaryIO, Protocol
from uuid import UUID

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, HTTPError

from eprom.api_key import UNSENDABLE_API_KEY, ApiKeyConfigurationError, ApiKeySource, is_sendable
from eprom.national_id import redact
from eprom.pacer import Pacer
from eprom.reading import Unreadable
from eprom.settings import EpromApiSettings

# Imported where the paths that read them start: the document path without pydantic, the order path without the
# privacy settings' readers (about 9 ms of a cold start).
if TYPE_CHECKING:
    from eprom.citizen_messages import Email, LetterAnswer, Sms
    from eprom.orders import OrderAnswer
    from eprom.privacy import EpromPrivacySetting, EpromSetAnswer, ErrorClass, GetRequest, ResidentsPage, SetRequest

NO_ORDER_CREATED = "ePROM created no order (it answered with the all-zero id: the national id does not exist)"
_MAX_REASON_LENGTH = 500
_AMBIGUOUS_STATUS = frozenset({502, 504})  # a gateway in front of ePROM gave up; ePROM itself may have finished
_RETRY_AFTER_STATUS = frozenset({429, 503})
# Below this there is no point in asking ePROM: its answer would likely be lost to our own timeout.
MIN_READ_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class Placed:
    response: "OrderAnswer"


@dataclass(frozen=True)
class Failed:
    """Why an order or a document is not there, in words without personal data."""

    reason: str


class Refused(Failed):
    """ePROM said no (400, or the all-zero id for an order)."""


@dataclass(frozen=True)
class Transient(Failed):
    retry_after_seconds: float | None = None


class Ambiguous(Failed):
    """The order was sent and its answer lost: ePROM may have created it."""


@dataclass(frozen=True)
class Deferred(Failed):
    """Nothing was created: not sent (no slot of ePROM's pace, or no time left to wait for the answer), or ePROM
    answered 429 and the caller's time ran out before its Retry-After. Due again in `due_in_seconds`."""

    due_in_seconds: float = 0.0


type PlacementResult = Placed | Refused | Transient | Ambiguous | Deferred


@dataclass(frozen=True)
class Accepted[A]:
    """ePROM took the message: its answer."""

    answer: A


type LetterResult = Accepted["LetterAnswer"] | Refused | Transient | Ambiguous | Deferred
type UnsecureMessageResult = Accepted[bool] | Refused | Transient | Ambiguous | Deferred


class SizedBody(Protocol):
    """A request body streamed as it is sent: its length in bytes, and its bytes from the start each iteration."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[bytes]: ...


# A body that is a function of the ApiKey carries the key itself (ePROM's SMS and e-mail API); any other goes with
# the key in the Authorization header.
type Body = bytes | SizedBody | Callable[[str], bytes]


class NotSent(Failed):
    """The request never reached ePROM (connection refused, DNS, TLS, connect timeout, a key no header can carry)."""


class AnswerLost(Failed):
    """The request was sent and no answer came (read timeout, connection dropped, answer broken off): ePROM may
    have carried it out."""


type PostFailed = NotSent | AnswerLost


class BodyUnreadable(Exception):
    """A streamed body failed while it was sent: the request was cut short of its Content-Length, so ePROM took
    nothing."""


@dataclass(frozen=True)
class Document:
    """A whole PDF, written into the file the caller gave."""

    sha256: str
    bytes: int


class NotFound(Failed):
    """404: the document may not be made yet."""


class TooLarge(Failed):
    """The document is above the caller's limit."""


type DocumentResult = Document | NotFound | Refused | TooLarge | Transient


@dataclass(frozen=True)
class PvkFailed(Failed):
    """A privacy-settings call that did not succeed, with the class upstream is told (architecture.md)."""

    error_class: "ErrorClass"


@dataclass(frozen=True)
class _TryAgain:
    """An attempt that may be repeated (a read, or a set of the same state): what to tell if no time is left."""

    failure: PvkFailed


PVK_RETRY_BASE_DELAY_SECONDS = 0.25
PVK_RETRY_MAX_DELAY_SECONDS = 4.0
PDF_SIGNATURE = b"%PDF-"
# A PDF ends with %%EOF, which only white-space may follow (ISO 32000-1, 7.2.2 and 7.5.5).
PDF_END = b"%%EOF"
PDF_WHITESPACE = b"\x00\t\n\x0c\r "
_TAIL_BYTES = 1024  # readers look for %%EOF in the last 1024 bytes
_READ_BYTES = 64 * 1024
_LAST_STARTXREF = re.compile(rb"startxref\s+(\d{1,15})\s+%%EOF[\x00\t\n\x0c\r ]*\Z")
_OBJECT = re.compile(rb"\d+\s+\d+\s+obj\b")
_BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*(\d{1,15})\s+(\d{1,15})\s+(\d{1,15})\s+(\d{1,15})\s*\]")
_BYTE_RANGE_BYTES = 200  # longer than any match: a piece's end carried into the next


class EpromClient:
    def __init__(
        self,
        base_url: str,
        api_key: Callable[[], str],
        *,
        connect_timeout: float,
        read_timeout: float,
        pacer: Pacer | None = None,
        max_connections: int = 10,
        refresh_api_key: Callable[[], str | None] = lambda: None,
    ) -> None:
        """`read_timeout`: the longest wait for an answer; `pacer`: ePROM's shared pace, which every order request
        waits for; `refresh_api_key`: the key as the secret holds it now (None: not read again), asked after a 401."""
        self._refresh_api_key = refresh_api_key
        self._base_url = base_url.rstrip("/")
        self._url = self._base_url + "/api/v2/formorder"
        self._letter_url = self._base_url + "/api/v2/messagetocitizen"
        self._sms_url = self._base_url + "/api/unsecuremessagesms"
        self._email_url = self._base_url + "/api/unsecuremessageemail"
        self._api_key = api_key
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._pacer = pacer
        # One session for the life of the Lambda environment: connections and TLS sessions are reused.
        self._session = requests.Session()
        self._session.mount(self._base_url + "/", HTTPAdapter(pool_connections=1, pool_maxsize=max_connections))

    @staticmethod
    def _headers(key: str, accept: str) -> dict[str, str]:
        # ePROM wants the raw key after "Basic", not base64 of user:password.
        return {"Authorization": f"Basic {key}", "Accept": accept}

    def _send(self, send: Callable[[str], requests.Response]) -> requests.Response:
        """One request; after a 401 (ePROM did nothing) once more if the secret holds another key by now: it was
        regenerated in ePROM Admin and put into the secret since we cached it. ApiKeyConfigurationError when the
        secret holds a key no header can carry (nothing was sent)."""
        key = self._api_key()
        answer = send(_sendable(key))
        if answer.status_code == 401:
            fresh = self._refresh_api_key()
            if fresh and fresh != key:
                answer.close()  # a streamed answer holds its connection until closed
                answer = send(_sendable(fresh))
        return answer

    def fetch_document(
        self, signed_form_id: str, into: BinaryIO, *, read_timeout: float, max_bytes: int, deadline: float
    ) -> DocumentResult:
        """Stream the document into `into` (never whole in memory); stop reading at `deadline` (time.monotonic())."""
        url = f"{self._base_url}/api/ExternalDocument/{signed_form_id}"
        time_left = deadline - time.monotonic()
        if time_left <= 0:
            return Transient("no time was left in this invocation to fetch the signed document")
        timeout = (min(self._connect_timeout, time_left), min(read_timeout, time_left))
        headers = partial(self._headers, accept="application/pdf")
        try:
            answer = self._send(lambda key: self._session.get(url, headers=headers(key), timeout=timeout, stream=True))
        except requests.RequestException as error:
            return Transient(f"fetching the signed document from ePROM failed ({type(error).__name__})")
        with answer:
            if answer.status_code == 404:
                return NotFound("ePROM has no document with that signedFormId (yet)")
            if answer.status_code == 400:
                return Refused(f"ePROM refused the document request: {_error_message(answer)}")
            if answer.status_code != 200:
                retry_after = _retry_after_seconds(answer) if answer.status_code in _RETRY_AFTER_STATUS else None
                return Transient(f"ePROM answered HTTP {answer.status_code} for the signed document", retry_after)
            return _read_pdf(answer, into, read_timeout=read_timeout, max_bytes=max_bytes, deadline=deadline)

    def place(self, order: bytes, *, answer_by: float) -> PlacementResult:
        """Send the order (ePROM's request: eprom.orders.Order.eprom_request) once ePROM's pace allows, and classify
        the answer. `answer_by`: epoch seconds by which the answer must be in (the caller keeps the time it needs
        after that)."""
        return self._call(self._url, order, answer_by=answer_by, what="order", accept=_placed)

    def send_letter(self, body: SizedBody, *, answer_by: float) -> LetterResult:
        """POST a letter (its PDFs streamed in `body`) as place() does an order."""
        return self._call(self._letter_url, body, answer_by=answer_by, what="letter", accept=_letter_accepted)

    def send_sms(self, sms: "Sms", *, answer_by: float) -> UnsecureMessageResult:
        return self._call(self._sms_url, sms.eprom_request, answer_by=answer_by, what="SMS", accept=_unsecure_accepted)

    def send_email(self, email: "Email", *, answer_by: float) -> UnsecureMessageResult:
        return self._call(self._email_url, email.eprom_request, answer_by=answer_by, what="e-mail",
                          accept=_unsecure_accepted)  # fmt: skip

    def _call[R](
        self, url: str, body: Body, *, answer_by: float, what: str, accept: Callable[[bytes], R | Refused]
    ) -> R | Refused | Transient | Ambiguous | Deferred:
        """POST once ePROM's pace allows and classify what came of it; `accept` reads a 200's body."""
        match self.post_paced(url, body, answer_by=answer_by):
            case requests.Response() as answer:
                return _answer_result(answer, what, accept)
            case NotSent(reason):
                return Transient(f"{reason} (the {what} was not sent)")
            case AnswerLost(reason):
                return Ambiguous(f"{reason} after the {what} was sent")
            case Deferred() as deferred:
                return deferred

    def post_paced(self, url: str, body: Body, *, answer_by: float) -> "requests.Response | PostFailed | Deferred":
        """POST `body` (JSON) to `url` with the ApiKey, each attempt in a slot of ePROM's pace: ePROM's answer, or
        why there is none. A 429 (or a 503 with Retry-After) took nothing: sent again once Retry-After has passed,
        while `answer_by` (epoch seconds by which the answer must be in) allows; else Deferred until then."""
        while True:
            read_timeout = self._wait_for_turn(answer_by)
            if isinstance(read_timeout, Deferred):
                return read_timeout
            timeout = (self._connect_timeout, read_timeout)

            def post(key: str, timeout: tuple[float, float] = timeout) -> requests.Response:
                headers = {"Accept": "application/json", "Content-Type": "application/json;charset=utf-8"}
                if callable(body):  # the key goes in the body
                    return self._session.post(url, data=body(key), headers=headers, timeout=timeout)
                headers |= self._headers(key, "application/json")
                data = body if isinstance(body, bytes) else _ReadOrCut(body)
                return self._session.post(url, data=data, headers=headers, timeout=timeout)

            answer = self._answer_or_failure(post, read_timeout)
            if not isinstance(answer, requests.Response):
                return answer
            retry_after = _held_back_seconds(answer)
            if retry_after is None:
                return answer
            answer.close()  # ePROM took nothing and asks us to wait: the same request again after Retry-After
            if self._pacer is not None:
                self._pacer.slow_down(retry_after)  # the next slot comes after it (_wait_for_turn)
            if time.time() + retry_after > self._latest_start(answer_by):
                return Deferred(f"ePROM answered HTTP {answer.status_code} and asked for {retry_after:g} s, more than "
                                "this invocation had left (nothing was ordered)", retry_after)  # fmt: skip
            if self._pacer is None:
                time.sleep(retry_after)

    def _answer_or_failure(
        self, post: Callable[[str], requests.Response], read_timeout: float
    ) -> "requests.Response | PostFailed":
        """ePROM's answer to one attempt, or whether the request was sent at all when there is none."""
        try:
            return self._send(post)
        except BodyUnreadable as error:
            return NotSent(f"the request was cut short: its body could not be read ({error})")
        except requests.ConnectTimeout:
            return NotSent("could not connect to ePROM in time")
        except requests.ReadTimeout:
            return AnswerLost(f"ePROM did not answer within {read_timeout:.3g} s")
        except requests.ConnectionError as error:
            if _not_sent(error):
                return NotSent("could not connect to ePROM")
            return AnswerLost("the connection to ePROM broke")
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            return AnswerLost("ePROM's answer broke off")
        except requests.RequestException as error:
            return NotSent(f"the request to ePROM failed before it was sent ({type(error).__name__})")
        except ApiKeyConfigurationError as error:  # an operator puts the right key into the secret; then it goes
            return NotSent(str(error))

    # --- Privacy settings (PVK) ------------------------------------------------------------------------------------

    def get_privacy_setting(self, request: "GetRequest", *, answer_by: float) -> "EpromPrivacySetting | PvkFailed":
        from eprom.privacy import EpromPrivacySetting, eprom_body

        body = eprom_body(request)
        return self._pvk_call("/api/v2/getpersonverninnstilling", body, EpromPrivacySetting.from_json, answer_by)

    def set_privacy_setting(self, request: "SetRequest", *, answer_by: float) -> "EpromSetAnswer | PvkFailed":
        """Sent again after a lost answer: the same state asked for again leaves the setting as it is (ePROM then
        answers IkkeEndret), so a retry is never a flip."""
        from eprom.privacy import EpromSetAnswer, eprom_body

        return self._pvk_call(
            "/api/v2/setpersonverninnstilling", eprom_body(request), EpromSetAnswer.from_json, answer_by
        )

    def residents_page(self, pvk_id: UUID, paging_reference: int, *, answer_by: float) -> "ResidentsPage | PvkFailed":
        from eprom.privacy import ResidentsPage, page_request

        body = page_request(pvk_id, paging_reference)
        return self._pvk_call(
            "/api/v2/get-residents-active-pi-for-definition", body, ResidentsPage.from_json, answer_by
        )

    def _pvk_call[T](self, path: str, body: bytes, read: Callable[[bytes], T], answer_by: float) -> T | PvkFailed:
        """ePROM's answer as `read` reads it, with timeouts and 5xx tried again (backoff with jitter, each attempt in a
        slot of the pace) while an answer can still come by `answer_by`."""
        url, retries = self._base_url + path, 0
        while True:
            outcome = self._pvk_attempt(url, body, read, answer_by)
            if not isinstance(outcome, _TryAgain):
                return outcome
            delay = min(PVK_RETRY_MAX_DELAY_SECONDS, PVK_RETRY_BASE_DELAY_SECONDS * 2**retries)
            delay *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
            if time.time() + delay > self._latest_start(answer_by):
                return outcome.failure
            time.sleep(delay)
            retries += 1

    def _pvk_attempt[T](
        self, url: str, body: bytes, read: Callable[[bytes], T], answer_by: float
    ) -> T | PvkFailed | _TryAgain:
        match self.post_paced(url, body, answer_by=answer_by):
            case requests.Response() as answer:
                with answer:
                    return _pvk_answer(answer, read)
            case NotSent(reason):
                return _TryAgain(PvkFailed(f"{reason} (not sent)", "Transient"))
            case AnswerLost(reason):
                return _TryAgain(
                    PvkFailed(f"{reason} (it was sent: sending the same request again is safe)", "Transient")
                )
            case Deferred(reason):
                return PvkFailed(reason, "Transient")
        raise AssertionError("unreachable: post_paced returns one of the cases above")

    def _latest_start(self, answer_by: float) -> float:
        return answer_by - self._connect_timeout - MIN_READ_TIMEOUT_SECONDS

    def _wait_for_turn(self, answer_by: float) -> float | Deferred:
        """Wait for the next slot of ePROM's pace: the read timeout the request may then have, or Deferred when no
        slot comes early enough to leave MIN_READ_TIMEOUT_SECONDS for the answer."""
        latest, now = self._latest_start(answer_by), time.time()
        if now > latest:
            return Deferred("too little time was left in this invocation to wait for ePROM's answer (not sent)")
        if self._pacer is not None:
            slot = self._pacer.wait_for_slot(latest)
            if not slot.granted:
                return Deferred("ePROM's pace had no slot left in this invocation (not sent)", slot.at - now)
        return min(self._read_timeout, answer_by - time.time() - self._connect_timeout)


def _held_back_seconds(answer: requests.Response) -> float | None:
    """How long ePROM asks us to wait when it took nothing for its load: a 429 (1 s when it says no Retry-After), or
    a 503 with Retry-After. None for any other answer."""
    retry_after = _retry_after_seconds(answer) if answer.status_code in _RETRY_AFTER_STATUS else None
    if answer.status_code == 429:
        return 1.0 if retry_after is None else retry_after
    return retry_after


class _ReadOrCut:
    """A streamed body whose failure while it is sent (an S3 read, a document that changed) is BodyUnreadable: the
    request stops short of its Content-Length, and ePROM never reads a request it did not get whole."""

    def __init__(self, body: SizedBody) -> None:
        self._body = body

    def __len__(self) -> int:
        return len(self._body)

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        except Exception as error:  # the type only: a message could quote what it read
            raise BodyUnreadable(type(error).__name__) from error


def _answer_result[R](
    answer: requests.Response, what: str, accept: Callable[[bytes], R | Refused]
) -> R | Refused | Transient | Ambiguous:
    if answer.status_code == 400:
        return Refused(f"ePROM refused the {what}: {_error_message(answer)}")
    if answer.status_code in _AMBIGUOUS_STATUS:
        return Ambiguous(f"ePROM's gateway answered HTTP {answer.status_code} after the {what} was sent")
    if answer.status_code != 200:
        return Transient(f"ePROM answered HTTP {answer.status_code}")
    try:
        return accept(answer.content)
    except Unreadable as problem:
        return Ambiguous(f"ePROM answered 200 with a body we cannot read ({problem})")


def _placed(content: bytes) -> Placed | Refused:
    from eprom.orders import NO_ORDER_ID, read_order_answer

    response = read_order_answer(content)
    if response.id == NO_ORDER_ID:
        return Refused(NO_ORDER_CREATED)
    return Placed(response)


def _letter_accepted(content: bytes) -> "Accepted[LetterAnswer]":
    from eprom.citizen_messages import read_letter_answer

    return Accepted(read_letter_answer(content))


def _unsecure_accepted(content: bytes) -> "Accepted[bool] | Refused":
    from eprom.citizen_messages import read_unsecure_answer

    sent = read_unsecure_answer(content)
    return Accepted(sent) if sent else Refused("ePROM answered success: false (it sent nothing)")


def _pvk_answer[T](answer: requests.Response, read: Callable[[bytes], T]) -> T | PvkFailed | _TryAgain:
    """ePROM's PVK answers: 200 with the result; errors with the body {statusCode, status, message}."""
    status = answer.status_code
    if status == 200:
        try:
            return read(answer.content)
        except Unreadable as problem:
            return PvkFailed(f"ePROM answered 200 with a body we cannot read ({problem})", "Transient")
    if status == 400:
        return PvkFailed(f"ePROM refused the request: {_error_message(answer)}", "RefusedByEprom")
    if status in (401, 403):
        return PvkFailed(f"ePROM refused the ApiKey (HTTP {status})", "Unauthorized")
    if status == 502:
        return _TryAgain(PvkFailed(f"PVK failed (ePROM answered HTTP 502: {_error_message(answer)})", "PvkUnavailable"))
    if status == 408 or status >= 500:
        return _TryAgain(PvkFailed(f"ePROM answered HTTP {status}: {_error_message(answer)}", "Transient"))
    return PvkFailed(f"ePROM answered HTTP {status}", "RefusedByEprom")


def eprom_client_from(
    settings: EpromApiSettings, api_keys: ApiKeySource, *, pacer: Pacer | None = None, max_connections: int = 10
) -> EpromClient:
    """The client a function keeps for its life, with the ApiKey from `api_keys` (the settings' secret)."""
    return EpromClient(
        settings.eprom_api_base_url,
        api_keys.current,
        connect_timeout=settings.eprom_connect_timeout_seconds,
        read_timeout=settings.eprom_read_timeout_seconds,
        pacer=pacer,
        refresh_api_key=api_keys.refreshed_current,
        max_connections=max_connections,
    )


def _sendable(key: str) -> str:
    if not is_sendable(key):
        raise ApiKeyConfigurationError(f"the ApiKey in the secret {UNSENDABLE_API_KEY}")
    return key


def _read_pdf(
    answer: requests.Response, into: BinaryIO, *, read_timeout: float, max_bytes: int, deadline: float
) -> Document | TooLarge | Transient:
    """The body into `into`, hashed as it comes; a Document only when it is whole: as long as its Content-Length,
    starting with %PDF- and ending with %%EOF. A body cut by a closed connection has no other sign of it."""
    declared = answer.headers.get("Content-Length", "")
    length = int(declared) if declared.isascii() and declared.isdigit() else None
    if length is not None and length > max_bytes:
        return TooLarge(f"ePROM's signed document has {length} bytes, more than the limit of {max_bytes}")
    digest, size, tail = hashlib.sha256(), 0, b""
    too_slow = "the signed document did not arrive in the time this invocation had ({} bytes read)"
    try:
        while True:
            time_left = deadline - time.monotonic()
            if time_left <= 0:
                return Transient(too_slow.format(size))
            _limit_next_read(answer, min(read_timeout, time_left))
            # read1: what has arrived, at most _READ_BYTES. read() would wait for all of them, however slowly they
            # come, and a read timeout only bounds each wait for a byte.
            chunk = answer.raw.read1(_READ_BYTES, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                return TooLarge(f"ePROM's signed document has more than the limit of {max_bytes} bytes")
            digest.update(chunk)
            into.write(chunk)
            tail = (tail + chunk[-_TAIL_BYTES:])[-_TAIL_BYTES:]
    except (HTTPError, OSError) as error:
        if time.monotonic() >= deadline:
            return Transient(too_slow.format(size))
        return Transient(f"the signed document broke off after {size} bytes ({type(error).__name__})")
    problem = _not_whole(answer, into, size=size, tail=tail, length=length)
    return Transient(problem) if problem else Document(sha256=digest.hexdigest(), bytes=size)


def _not_whole(answer: requests.Response, pdf: BinaryIO, *, size: int, tail: bytes, length: int | None) -> str | None:
    """Why the `size` bytes read into `pdf` (ending in `tail`) are not a whole PDF, or None when they are."""
    if length is not None and answer.raw.tell() != length:
        return f"the signed document broke off after {answer.raw.tell()} of {length} bytes"
    pdf.seek(0)
    if pdf.read(len(PDF_SIGNATURE)) != PDF_SIGNATURE:
        return "ePROM answered 200 for the signed document with something that is not a PDF"
    if not tail.rstrip(PDF_WHITESPACE).endswith(PDF_END):
        return f"the signed document is not whole: {size} bytes that do not end with %%EOF"
    # Content-Length, or chunked framing (http.client raises IncompleteRead when the last chunk never came), proves
    # the length. A body that ends where the connection does cannot prove it by its last bytes: a signed PDF has an
    # earlier %%EOF, its unsigned revision's, and a body cut there ends as a whole one would.
    if length is None and not answer.raw.chunked and not _structure_covers(pdf, size, tail):
        return (f"the signed document cannot be proven whole: {size} bytes without Content-Length or chunked "
                "framing, whose last startxref and signature do not cover them")  # fmt: skip
    return None


def _structure_covers(pdf: BinaryIO, size: int, tail: bytes) -> bool:
    """Whether the PDF proves by its own structure that it is whole: its last startxref points at a cross-reference
    section (`xref`) or stream (`N G obj`, /XRef) in it, and its last signature's /ByteRange [0 a b c] ends at its end
    (b + c: ISO 32000-1, 12.8.1, a signature covers the whole file but its /Contents). A body cut at an earlier
    revision's %%EOF is a whole unsigned PDF, and only the signature shows what is missing."""
    found = _LAST_STARTXREF.search(tail)
    if found is None or int(found.group(1)) >= size:
        return False
    pdf.seek(int(found.group(1)))
    section = pdf.read(_TAIL_BYTES)
    if not (section.startswith(b"xref") or (_OBJECT.match(section) and b"/XRef" in section)):
        return False
    byte_range = _last_byte_range(pdf, size)
    if byte_range is None:
        return False
    start, _, second_start, second_length = byte_range
    end = second_start + second_length
    return start == 0 and size - len(tail) + len(tail.rstrip(PDF_WHITESPACE)) <= end <= size


def _last_byte_range(pdf: BinaryIO, size: int) -> tuple[int, int, int, int] | None:
    """The four numbers of the file's last /ByteRange, read through in pieces (never the whole file in memory)."""
    last: tuple[int, int, int, int] | None = None
    carry = b""
    pdf.seek(0)
    while piece := pdf.read(_READ_BYTES * 16):
        window = carry + piece
        for found in _BYTE_RANGE.finditer(window):
            first, first_length, second, second_length = (int(number) for number in found.groups())
            last = (first, first_length, second, second_length)
        # the next piece starts with this one's end: a /ByteRange across the border is found whole there (one
        # found twice is the same)
        carry = window[-_BYTE_RANGE_BYTES:]
    return last


def _limit_next_read(answer: requests.Response, seconds: float) -> None:
    """Cut the socket's timeout to the time left, so one slow read cannot outlast the invocation."""
    connection = answer.raw.connection
    if connection is not None and connection.sock is not None:
        connection.sock.settimeout(seconds)


def _not_sent(error: requests.ConnectionError) -> bool:
    """True when the connection failed before the request left: refused, DNS, TLS handshake, connect timeout.

    urllib3 reports those as ConnectTimeoutError or its subclass NewConnectionError (which NameResolutionError
    extends), wrapped in MaxRetryError; a connection dropped after sending is a ProtocolError instead.
    """
    if isinstance(error, requests.exceptions.SSLError | requests.exceptions.ProxyError):
        return True
    cause = error.args[0] if error.args else None
    return isinstance(getattr(cause, "reason", cause), ConnectTimeoutError)


def _retry_after_seconds(answer: requests.Response) -> float | None:
    """Retry-After as seconds or as an HTTP date; None when absent or unreadable."""
    value = answer.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _error_message(answer: requests.Response) -> str:
    """ePROM's error text, from whichever shape it came in, without anything that looks like a national id, and
    without the key ePROM echoes when it does not know it."""
    try:
        content = answer.json()
    except ValueError:
        content = answer.text
    if isinstance(content, dict):
        errors = content.get("errors")
        if isinstance(errors, dict):
            content = "; ".join(f"{field}: {' '.join(map(str, msgs))}" for field, msgs in errors.items())
        else:
            content = content.get("message") or content.get("Message") or content.get("title") or json.dumps(content)
    text = redact(_ECHOED_API_KEY.sub(r"\1'(hidden)'", str(content).strip())) or "(no message)"
    return text[:_MAX_REASON_LENGTH]


# ePROM's 400 for an unknown key quotes it: "apiKey '...' doesn't exists" (eprom-contract.md §7).
_ECHOED_API_KEY = re.compile(r"(?i)(api[ _-]?key\W{0,3})'[^']*'")
