"""Key rotation: ePROM Admin regenerates the key (the old one dies at once) and an operator puts it into the
secret. Callbacks with the new key and orders must not fail while the functions' 300 s cache holds the old one."""

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from conftest import API_KEY, EVENTS, PREVIOUS_API_KEY, FakeClock, order_message, sqs_event

from local.lambda_runtime import rest_api_event

NEW_KEY = "regenerated-in-eprom-admin"


REFRESH_INTERVAL = 2  # API_KEY_MIN_REFRESH_SECONDS in conftest


REFRESH_CLOCK = FakeClock()


@pytest.fixture
def refresh_clock(placer: Any, callback_app: Any) -> FakeClock:
    """The clock by which the functions' key sources space their re-reads of the secret, moved on by the tests.
    One for the session, left in place: it runs with real time, only ahead, so a re-read it stamped never lies in
    the future of a later test."""
    placer.api_keys.clock = callback_app.api_keys.clock = REFRESH_CLOCK
    return REFRESH_CLOCK


@pytest.fixture
def secret_holds(aws: dict[str, str], callback_app: Any, refresh_clock: FakeClock) -> Any:
    """Puts keys into the secret as an operator does after ePROM Admin regenerated it; the original back after.
    First it moves past the functions' refresh interval, which earlier tests with wrong keys may have started.
    (Here all handlers share one process and so one secret cache; on Lambda each function has its own.)"""
    secrets = boto3.client("secretsmanager")
    refresh_clock.advance(REFRESH_INTERVAL)

    def put(current: str, *previous: str) -> None:
        value = json.dumps({"apiKey": current, "previousApiKeys": list(previous)})
        secrets.put_secret_value(SecretId=aws["EPROM_API_KEY_SECRET_ID"], SecretString=value)

    yield put
    put(API_KEY, PREVIOUS_API_KEY)
    refresh_clock.advance(REFRESH_INTERVAL)
    assert callback_app.api_keys.refresh() is not None  # the shared cache holds the original key again
    refresh_clock.advance(REFRESH_INTERVAL)  # and later tests start with a fresh interval


def callback_event(api_key: str) -> tuple[dict[str, Any], str]:
    event = json.loads((EVENTS / "callback-ordered.json").read_text())
    form_order_id = str(uuid.uuid4())
    event["body"] = json.dumps(json.loads(event["body"]) | {"formOrderId": form_order_id, "apiKey": api_key})
    return event, form_order_id


@pytest.mark.slow
def test_callbacks_with_the_new_key_are_stored_during_a_rotation_under_load(
    callback_app, orders_table, secret_holds, lambda_context
) -> None:
    event, _ = callback_event(API_KEY)
    assert callback_app.lambda_handler(event, lambda_context)["statusCode"] == 200  # the old key is cached now
    secret_holds(NEW_KEY, API_KEY)
    lock = threading.Lock()  # one Lambda environment handles one request at a time

    def send(key: str) -> tuple[int, str]:
        event, form_order_id = callback_event(key)
        with lock:
            return callback_app.lambda_handler(event, lambda_context)["statusCode"], form_order_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(send, [NEW_KEY, API_KEY] * 40))
    assert {status for status, _ in replies} == {200}  # none refused: the new key and the previous one
    for _, form_order_id in replies:
        assert orders_table.get_item(Key={"formOrderId": form_order_id})["Item"]["status"] == "Ordered"


def test_wrong_keys_do_not_make_the_secret_be_read_again_and_again(
    callback_app, secret_holds, refresh_clock, lambda_context
) -> None:
    assert callback_app.lambda_handler(callback_event("wrong")[0], lambda_context)["statusCode"] == 401  # read once
    secret_holds("newer-key", API_KEY)
    # Within the interval the secret is not read again, so even the right new key waits for it (ePROM retries).
    assert callback_app.lambda_handler(callback_event("newer-key")[0], lambda_context)["statusCode"] == 401
    refresh_clock.advance(REFRESH_INTERVAL)
    assert callback_app.lambda_handler(callback_event("newer-key")[0], lambda_context)["statusCode"] == 200


def test_an_order_after_ePROM_regenerated_the_key_is_placed_without_waiting_for_the_cache(
    placer, eprom, dead_letters, secret_holds, refresh_clock, lambda_context
) -> None:
    assert placer.lambda_handler(sqs_event(order_message()), lambda_context) == {"batchItemFailures": []}  # cached
    refresh_clock.advance(REFRESH_INTERVAL)  # that first order may itself have read the secret again
    eprom.config.api_key = NEW_KEY  # regenerated in ePROM Admin: the old key dies at once
    secret_holds(NEW_KEY, API_KEY)
    order = order_message()
    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    assert eprom.orders_per_reference[order["orderReference"]] == 1
    assert [headers["Authorization"] for headers in eprom.order_headers[-2:]] == [f"Basic {API_KEY}",
                                                                                  f"Basic {NEW_KEY}"]  # fmt: skip
    assert dead_letters.messages() == []


def test_a_privacy_change_with_the_regenerated_key_in_a_header_is_stored_and_the_old_key_still_is(
    callback_app, secret_holds, lambda_context
) -> None:
    """The replication callback carries the key in a header: compared with the secret's keys as read again after a
    mismatch, the current and the previous one."""
    event, _ = callback_event(API_KEY)
    assert callback_app.lambda_handler(event, lambda_context)["statusCode"] == 200  # the old key is cached now
    secret_holds(NEW_KEY, API_KEY)
    for headers in ({"Authorization": f"Basic {NEW_KEY}"}, {"ApiKey": API_KEY}):
        body = json.dumps(
            {"nationalId": "26073941651", "id": str(uuid.uuid4()), "name": "Reservasjon", "status": "RES"}
        )
        privacy_change = rest_api_event("PUT", "/api/PersonvernInnstilling", headers, body)
        assert callback_app.lambda_handler(privacy_change, lambda_context)["statusCode"] == 200
