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

Signed documents (GET {base}/api/ExternalDocument/{signedFormId}) change nothing at ePROM, so every failure there
is safe to retry: Document (a whole PDF, streamed into a file), NotFound (404: maybe not ready yet), Refused (400),
TooLarge (above our limit) or Transient (including a body that is cut short, not a PDF, or too slow).
"""

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from typing import TYPE_CHECKING, BinaryIO

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, HTTPError

from eprom.api_key import UNSENDABLE_API_KEY, ApiKeyConfigurationError, ApiKeySource, is_sendable
from eprom.national_id import redact
from eprom.pacer import Pacer
from eprom.settings import EpromApiSettings

if TYPE_CHECKING:  # imported where the order path reads them: the document path starts without pydantic
    from eprom.models import EpromOrderRequest, EpromOrderResponse

NO_ORDER_CREATED = "ePROM created no order (it answered with the all-zero id: the national id does not exist)"
_MAX_REASON_LENGTH = 500
_AMBIGUOUS_STATUS = frozenset({502, 504})  # a gateway in front of ePROM gave up; ePROM itself may have finished
_RETRY_AFTER_STATUS = frozenset({429, 503})
# Below this there is no point in asking ePROM: its answer would likely be lost to our own timeout.
MIN_READ_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class Placed:
    response: "EpromOrderResponse"


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


class NotSent(Failed):
    """The request never reached ePROM (connection refused, DNS, TLS, connect timeout, a key no header can carry)."""


class AnswerLost(Failed):
    """The request was sent and no answer came (read timeout, connection dropped, answer broken off): ePROM may
    have carried it out."""


type PostFailed = NotSent | AnswerLost


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
PDF_SIGNATURE = b"%PDF-"
# A PDF ends with %%EOF, which only white-space may follow (ISO 32000-1, 7.2.2 and 7.5.5).
PDF_END = b"%%EOF"
PDF_WHITESPACE = b"\x00\t\n\x0c\r "
_TAIL_BYTES = 1024  # readers look for %%EOF in the last 1024 bytes
_READ_BYTES = 64 * 1024


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

    def place(self, order: "EpromOrderRequest", *, answer_by: float) -> PlacementResult:
        """Send the order once ePROM's pace allows, and classify the answer. `answer_by`: epoch seconds by which the
        answer must be in (the caller keeps the time it needs after that)."""
        match self.post_paced(self._url, order.model_dump_json(by_alias=True).encode(), answer_by=answer_by):
            case requests.Response() as answer:
                return _placement_result(answer)
            case NotSent(reason):
                return Transient(f"{reason} (the order was not sent)")
            case AnswerLost(reason):
                return Ambiguous(f"{reason} after the order was sent")
            case Deferred() as deferred:
                return deferred

    def post_paced(self, url: str, body: bytes, *, answer_by: float) -> "requests.Response | PostFailed | Deferred":
        """POST `body` (JSON) to `url` with the ApiKey, each attempt in a slot of ePROM's pace: ePROM's answer, or
        why there is none. A 429 (or a 503 with Retry-After) took nothing: sent again once Retry-After has passed,
        while `answer_by` (epoch seconds by which the answer must be in) allows; else Deferred until then."""
        while True:
            read_timeout = self._wait_for_turn(answer_by)
            if isinstance(read_timeout, Deferred):
                return read_timeout
            timeout = (self._connect_timeout, read_timeout)

            def post(key: str, timeout: tuple[float, float] = timeout) -> requests.Response:
                headers = self._headers(key, "application/json") | {"Content-Type": "application/json;charset=utf-8"}
                return self._session.post(url, data=body, headers=headers, timeout=timeout)

            try:
                answer = self._send(post)
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


def _placement_result(answer: requests.Response) -> Placed | Refused | Transient | Ambiguous:
    from pydantic import ValidationError

    from eprom.models import NO_ORDER_ID, EpromOrderResponse, describe_validation_error

    if answer.status_code == 400:
        return Refused(f"ePROM refused the order: {_error_message(answer)}")
    if answer.status_code in _AMBIGUOUS_STATUS:
        return Ambiguous(f"ePROM's gateway answered HTTP {answer.status_code} after the order was sent")
    if answer.status_code != 200:
        return Transient(f"ePROM answered HTTP {answer.status_code}")
    try:
        response = EpromOrderResponse.model_validate_json(answer.content)
    except ValidationError as error:
        return Ambiguous(f"ePROM answered 200 with a body we cannot read ({describe_validation_error(error)})")
    if response.id == NO_ORDER_ID:
        return Refused(NO_ORDER_CREATED)
    return Placed(response)


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
    if length is not None and answer.raw.tell() != length:
        return Transient(f"the signed document broke off after {answer.raw.tell()} of {length} bytes")
    into.seek(0)
    if into.read(len(PDF_SIGNATURE)) != PDF_SIGNATURE:
        return Transient("ePROM answered 200 for the signed document with something that is not a PDF")
    if not tail.rstrip(PDF_WHITESPACE).endswith(PDF_END):
        return Transient(f"the signed document is not whole: {size} bytes that do not end with %%EOF")
    return Document(sha256=digest.hexdigest(), bytes=size)


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
    """ePROM's 400 text, from whichever shape it came in, without anything that looks like a national id."""
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
    text = redact(str(content).strip()) or "(no message)"
    return text[:_MAX_REASON_LENGTH]
