"""The ePROM client against the simulator over HTTP: every answer classified as placed, refused or transient."""

import json
import uuid

import pytest
import requests
from conftest import API_KEY, FORM_ID, NONEXISTENT_NATIONAL_ID, order_message
from eprom.eprom_client import NO_ORDER_CREATED, EpromClient, Placed, Refused, Transient, _error_message
from eprom.models import OrderMessage

from local.ports import free_port


def request(**overrides: object):
    return OrderMessage.model_validate_json(json.dumps(order_message(**overrides))).to_eprom_request()


def client_for(base_url: str, key: str = API_KEY, read_timeout: float = 1.0) -> EpromClient:
    return EpromClient(base_url, lambda: key, connect_timeout=0.5, read_timeout=read_timeout)


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
    ("fault", "reason"),
    [("rate_500", "ePROM answered HTTP 500"), ("rate_429", "ePROM answered HTTP 429"),
     ("rate_timeout", "ePROM did not answer in time"), ("rate_drop", "could not connect to ePROM")],
)  # fmt: skip
def test_faults_are_transient(fault: str, reason: str, eprom) -> None:
    setattr(eprom.config, fault, 1.0)
    eprom.config.timeout_seconds = 1.0
    order = request()
    assert client_for(eprom.base_url, read_timeout=0.3).place(order) == Transient(reason)
    assert eprom.orders_per_reference[json.loads(order.metadata)["orderReference"]] == 0


def test_a_wrong_key_is_transient(eprom) -> None:
    assert client_for(eprom.base_url, key="old").place(request()) == Transient("ePROM answered HTTP 401")


def test_connection_refused_is_transient() -> None:
    assert client_for(f"http://127.0.0.1:{free_port()}").place(request()) == Transient("could not connect to ePROM")


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
