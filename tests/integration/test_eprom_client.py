"""The ePROM client against the simulator over HTTP: every answer classified as placed, refused, transient (nothing
was ordered), deferred (ePROM's pace, or our time: nothing sent, or a 429 with nothing created) or ambiguous (ePROM
may have created the order)."""

import json
import time
import uuid
from types import SimpleNamespace

import pytest
import requests
from conftest import API_KEY, FORM_ID, NONEXISTENT_NATIONAL_ID, order_message
from eprom.eprom_client import (
    NO_ORDER_CREATED,
    Ambiguous,
    Deferred,
    EpromClient,
    Placed,
    Refused,
    Transient,
    _error_message,
    _retry_after_seconds,
)
from eprom.orders import read_order

from local.ports import free_port


def request(**overrides: object):
    order = json.dumps(order_message(**overrides))
    return read_order(order, allow_synthetic_national_ids=False, allow_test_mode_orders=False).eprom_request()


def client_for(base_url: str, key: str = API_KEY, read_timeout: float = 1.0, time_left: float = 30) -> SimpleNamespace:
    """`time_left`: how long the caller may wait for ePROM's answer, from each call on."""
    client = EpromClient(base_url, lambda: key, connect_timeout=0.5, read_timeout=read_timeout)
    return SimpleNamespace(place=lambda order: client.place(order, answer_by=time.time() + time_left))


def test_placed_with_the_raw_key_and_a_json_body(eprom) -> None:
    result = client_for(eprom.base_url + "/").place(request(distributionRule="NoDistribution"))
    assert isinstance(result, Placed)
    assert str(result.response.id) in eprom.orders
    assert result.response.single_use_code
    headers = eprom.order_headers[-1]
    assert headers["Authorization"] == f"Basic {API_KEY}"
    assert headers["Content-Type"] == "application/json;charset=utf-8"


def test_the_session_is_reused_across_calls(eprom) -> None:
    client = client_for(eprom.base_url)
    for _ in range(3):
        assert isinstance(client.place(request()), Placed)
    assert all(h.get("Connection", "keep-alive").lower() == "keep-alive" for h in eprom.order_headers)


def test_a_400_is_refused_with_eproms_message(eprom) -> None:
    result = client_for(eprom.base_url).place(request(formId=str(uuid.UUID(int=9))))
    assert result == Refused(f"ePROM refused the order: No form with id='{uuid.UUID(int=9)}' exists")


def test_the_all_zero_id_is_refused(eprom) -> None:
    assert client_for(eprom.base_url).place(request(nationalId=NONEXISTENT_NATIONAL_ID)) == Refused(NO_ORDER_CREATED)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("rate_500", Transient("ePROM answered HTTP 500")),
        ("rate_timeout", Ambiguous("ePROM did not answer within 0.3 s after the order was sent")),
        ("rate_drop", Ambiguous("the connection to ePROM broke after the order was sent")),
        ("rate_lost_answer", Ambiguous("ePROM's gateway answered HTTP 504 after the order was sent")),
    ],
)
def test_faults_are_transient_before_sending_and_ambiguous_after(fault: str, expected, eprom) -> None:
    setattr(eprom.config, fault, 1.0)
    eprom.config.timeout_seconds = 1.0
    order = request()
    assert client_for(eprom.base_url, read_timeout=0.3).place(order) == expected
    created = eprom.orders_per_reference[json.loads(json.loads(order)["metadata"])["orderReference"]]
    assert created == (1 if fault == "rate_lost_answer" else 0)


def test_an_answer_slower_than_the_read_timeout_is_ambiguous_and_the_order_exists(eprom) -> None:
    eprom.config.latency_seconds = 0.6
    order = request()
    result = client_for(eprom.base_url, read_timeout=0.3).place(order)
    assert result == Ambiguous("ePROM did not answer within 0.3 s after the order was sent")
    reference = json.loads(json.loads(order)["metadata"])["orderReference"]
    deadline = time.monotonic() + 10
    while not eprom.orders_per_reference[reference]:  # ePROM finishes the order after we stopped waiting
        assert time.monotonic() < deadline, "ePROM never finished the order"
        time.sleep(0.05)
    assert eprom.orders_per_reference[reference] == 1


def test_an_outage_503_without_retry_after_is_transient(eprom) -> None:
    eprom.config.down_for_seconds = 60
    eprom.reset(eprom.config)
    assert client_for(eprom.base_url).place(request()) == Transient("ePROM answered HTTP 503")
    assert eprom.order_requests == []  # turned away before ePROM's order logic


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_longer_than_the_time_left_defers_the_order_until_then(status, eprom) -> None:
    eprom.config.down_for_seconds, eprom.config.down_status, eprom.config.down_retry_after = 60, status, 7
    eprom.reset(eprom.config)
    expected = Deferred(f"ePROM answered HTTP {status} and asked for 7 s, more than this invocation had left "
                        "(nothing was ordered)", 7.0)  # fmt: skip
    assert client_for(eprom.base_url, time_left=5).place(request()) == expected
    assert eprom.faults["down"] == 1 and eprom.order_requests == []


def test_a_429_is_sent_again_after_its_retry_after_while_time_allows(eprom) -> None:
    eprom.config.rate_limit_per_second = 0.5  # a token every 2 s; a 429 asks for 1 s
    eprom.reset(eprom.config)
    client = client_for(eprom.base_url)
    assert isinstance(client.place(request()), Placed)
    assert isinstance(client.place(request()), Placed)
    assert eprom.faults["rate_limited"] >= 1 and len(eprom.order_requests) == 2


def test_too_little_time_for_an_answer_sends_nothing(eprom) -> None:
    result = client_for(eprom.base_url, time_left=1.2).place(request())  # 0.5 s to connect, less than 1 s to read
    assert result == Deferred("too little time was left in this invocation to wait for ePROM's answer (not sent)")
    assert eprom.order_headers == []


def test_the_read_timeout_is_what_the_time_left_allows(eprom) -> None:
    eprom.config.latency_seconds = 2.0
    result = client_for(eprom.base_url, read_timeout=20, time_left=2.0).place(request())
    assert result == Ambiguous("ePROM did not answer within 1.5 s after the order was sent")


def test_a_wrong_key_is_transient(eprom) -> None:
    assert client_for(eprom.base_url, key="old").place(request()) == Transient("ePROM answered HTTP 401")


def test_connection_refused_is_transient() -> None:
    expected = Transient("could not connect to ePROM (the order was not sent)")
    assert client_for(f"http://127.0.0.1:{free_port()}").place(request()) == expected


def test_an_unknown_host_is_transient() -> None:
    expected = Transient("could not connect to ePROM (the order was not sent)")
    assert client_for("http://eprom.invalid").place(request()) == expected


def test_a_200_we_cannot_read_is_ambiguous_not_refused(eprom) -> None:
    server = _OneAnswer(200, b"<html>maintenance</html>")
    with server:
        result = client_for(server.url).place(request())
    assert isinstance(result, Ambiguous)
    assert "answered 200 with a body we cannot read" in result.reason


@pytest.mark.parametrize(
    ("header", "expected"),
    [("120", 120.0), ("", None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_retry_after_as_seconds_or_a_date(header: str, expected) -> None:
    answer = _answer(503, "")
    answer.headers["Retry-After"] = header
    assert _retry_after_seconds(answer) == expected


class _OneAnswer:
    """A tiny HTTP server that answers every POST with one status and body (what the simulator never sends)."""

    def __init__(self, status: int, body: bytes) -> None:
        import http.server
        import threading

        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(outer.status)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *_: object) -> None:
                pass

        self.status, self.body = status, body
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "_OneAnswer":
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _answer(status: int, body: object) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = (body if isinstance(body, str) else json.dumps(body)).encode()
    return response


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("The ordered form is not Published", "The ordered form is not Published"),
        ('"The ordered form is not Published"', "The ordered form is not Published"),
        ({"Message": "JSON in metadata is not valid: x"}, "JSON in metadata is not valid: x"),
        ({"errors": {"nationalId": ["26073941651 is not valid"]}}, "nationalId: [redacted] is not valid"),
        ("nationalId 26073941651 refused", "nationalId [redacted] refused"),
        (f"No form with id='{FORM_ID}' exists", f"No form with id='{FORM_ID}' exists"),
        ("", "(no message)"),
    ],
)
def test_error_messages_are_read_from_every_shape_without_national_ids(body: object, expected: str) -> None:
    assert _error_message(_answer(400, body)) == expected


@pytest.mark.parametrize("key", ["new-key-€", "new key", "tab\tkey", "æøå"])
def test_a_key_no_header_can_carry_is_a_clear_transient_failure_and_nothing_is_sent(eprom, key: str) -> None:
    """Not UnicodeEncodeError (retried as "unexpected" until RetriesExhausted): a reason that names the problem,
    never the key; the order waits for the operator to put the right key into the secret."""
    result = client_for(eprom.base_url, key=key).place(request())
    assert isinstance(result, Transient)
    assert "ApiKey in the secret is not printable ASCII" in result.reason and key not in result.reason
    assert eprom.order_headers == []
