"""Retries of PlaceOrderFunction on real OrderQueue messages (moto over HTTP): the backoff the placer sets as the
message's visibility, Retry-After, the retry window, and exactly one order per orderReference forever.

Time is compressed through the placer's own settings: RETRY_BASE_DELAY_SECONDS=2 and RETRY_MAX_DELAY_SECONDS=4
(conftest), so a retry comes 2-3 s after the first failure.
"""

import json
import random
import time
from typing import Any

import boto3
import pytest
from conftest import failed_ids, order_message, sqs_event, wait_until_indexed
from eprom.queues import DEAD_LETTER_ATTRIBUTES_MAX_BYTES, MAX_RETRY_DELAY_SECONDS
from eprom.retrying_consumer import backoff_seconds

from local.aws_resources import load_template
from local.lambda_runtime import LambdaContext
from local.sqs_poller import lambda_record


class OrderQueue:
    def __init__(self, url: str) -> None:
        self.url = url
        self.sqs = boto3.client("sqs")
        self.arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def send(self, body: dict[str, Any] | str) -> None:
        self.sqs.send_message(QueueUrl=self.url, MessageBody=body if isinstance(body, str) else json.dumps(body))

    def receive(self, wait_seconds: int = 0) -> dict[str, Any] | None:
        """One delivery as Lambda's event source makes it, or None while nothing is visible."""
        messages = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=1, WaitTimeSeconds=wait_seconds, AttributeNames=["All"]
        ).get("Messages", [])
        return {"Records": [lambda_record(messages[0], self.arn)]} if messages else None

    def delete(self, event: dict[str, Any]) -> None:
        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=event["Records"][0]["receiptHandle"])


@pytest.fixture
def order_queue(aws: dict[str, str]) -> OrderQueue:
    queue = OrderQueue(aws["ORDER_QUEUE_URL"])
    while event := queue.receive():  # nothing left over from another test
        queue.delete(event)
    return queue


def seconds_until_visible(queue: OrderQueue, limit: float = 15) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if event := queue.receive(wait_seconds=1):
            queue.delete(event)
            return time.monotonic() - started
    raise AssertionError(f"not visible again within {limit} s")


@pytest.mark.slow
def test_a_transient_failure_sets_the_next_delivery_with_backoff(placer, eprom, order_queue, lambda_context) -> None:
    eprom.config.rate_500 = 1.0
    order_queue.send(order_message())
    event = order_queue.receive(wait_seconds=1)

    assert failed_ids(placer.lambda_handler(event, lambda_context)) == {event["Records"][0]["messageId"]}
    # The queue's own visibility timeout is 660 s: seeing the message after 2-3 s means the placer set it.
    waited = seconds_until_visible(order_queue)
    assert 1.0 <= waited <= 5.0, waited


@pytest.mark.slow
def test_retry_after_from_eprom_is_honoured_when_longer(placer, eprom, order_queue) -> None:
    """An outage's 503 with Retry-After: sent again after it, in the same invocation when its time allows (test_place
    _order), else on the message's next delivery, which comes when it is due."""
    eprom.config.down_for_seconds, eprom.config.down_retry_after = 60, 6
    eprom.reset(eprom.config)
    order_queue.send(order_message())
    event = order_queue.receive(wait_seconds=1)

    short_invocation = LambdaContext("test-function", timeout_seconds=25)  # 1 s left to wait for ePROM's answer
    assert failed_ids(placer.lambda_handler(event, short_invocation)) == {event["Records"][0]["messageId"]}
    assert eprom.faults["down"] == 1
    waited = seconds_until_visible(order_queue)
    assert 5.0 <= waited <= 9.0, waited  # the backoff alone would have been 2-3 s


def test_the_backoff_doubles_to_its_cap_with_jitter_inside_the_cap() -> None:
    random.seed(3)
    for attempt, floor in [(1, 30), (2, 60), (3, 120), (4, 240), (5, 480), (6, 900), (50, 900)]:
        delays = [backoff_seconds(attempt, base=30, cap=900) for _ in range(200)]
        assert floor <= min(delays) and max(delays) <= min(900, floor * 1.25 + 1), (attempt, min(delays), max(delays))
    assert len({backoff_seconds(4, base=30, cap=900) for _ in range(50)}) > 10  # spread, not one instant
    assert backoff_seconds(1, base=30, cap=900, retry_after=600) == 600
    assert backoff_seconds(1, base=30, cap=900, retry_after=10**6) == MAX_RETRY_DELAY_SECONDS  # what SQS accepts


@pytest.mark.slow
def test_a_429_past_the_invocation_comes_back_when_due_without_backoff(placer, eprom, order_queue) -> None:
    """ePROM's Retry-After is flow control, not a failure: a message that had been received many times (backoff at
    its cap, 4 s here) comes back after Retry-After (1 s), spread over one batch's slots (10 / 50 per second)."""
    eprom.config.down_for_seconds, eprom.config.down_status, eprom.config.down_retry_after = 60, 429, 1
    eprom.reset(eprom.config)
    order_queue.send(order_message())
    for _ in range(5):  # received (and let go) five times already: ApproximateReceiveCount 6 at the next receive
        event = order_queue.receive(wait_seconds=1)
        order_queue.sqs.change_message_visibility(QueueUrl=order_queue.url,
                                                  ReceiptHandle=event["Records"][0]["receiptHandle"],
                                                  VisibilityTimeout=0)  # fmt: skip
    event = order_queue.receive(wait_seconds=1)
    assert event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "6"
    # 21.5 s: 20 s kept for recording the answer, 1 s for the connection and 0.5 s for the answer: no time to wait
    assert failed_ids(placer.lambda_handler(event, LambdaContext("test-function", 25))) == {
        event["Records"][0]["messageId"]
    }
    assert eprom.faults["down"] >= 1 and eprom.order_requests == []
    waited = seconds_until_visible(order_queue)
    assert waited <= 2.5, waited


def test_an_order_failing_past_the_window_goes_to_the_dlq_as_retries_exhausted(
    placer, eprom, dead_letters, lambda_context
) -> None:
    eprom.config.rate_500 = 1.0
    order = order_message()
    event = sqs_event(order, sent_seconds_ago=24 * 3600 + 5, receive_count=97)

    assert placer.lambda_handler(event, lambda_context) == {"batchItemFailures": []}  # handled: off the queue
    [dead] = dead_letters.messages()
    assert json.loads(dead["Body"]) == order
    assert dead["MessageAttributes"]["rejectionClass"]["StringValue"] == "RetriesExhausted"
    reason = dead["MessageAttributes"]["rejectionReason"]["StringValue"]
    assert reason == "retries exhausted: still failing after 24 h; last error: ePROM answered HTTP 500"
    assert eprom.orders_per_reference[order["orderReference"]] == 0


def test_within_the_window_an_old_order_is_still_retried(placer, eprom, dead_letters, lambda_context) -> None:
    eprom.config.rate_500 = 1.0
    event = sqs_event(order_message(), sent_seconds_ago=23 * 3600, receive_count=90)
    assert failed_ids(placer.lambda_handler(event, lambda_context)) == {event["Records"][0]["messageId"]}
    assert dead_letters.messages() == []


def expire_claims(aws: dict[str, str]) -> None:
    """What DynamoDB's TTL has deleted once the orders' claims expired (their `expiration`)."""
    table = boto3.resource("dynamodb").Table(aws["IDEMPOTENCY_TABLE"])
    for item in table.scan()["Items"]:
        if item["id"].startswith("orderReference#"):
            table.delete_item(Key={"id": item["id"]})


@pytest.mark.slow
def test_an_order_reference_resent_after_its_claim_expired_is_not_placed_again(
    placer, eprom, dead_letters, orders_table, aws, lambda_context
) -> None:
    """A final status keeps an item after its claim expired: the item still answers for its reference (the index,
    read while holding a new claim)."""
    order = order_message()
    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    expire_claims(aws)
    wait_until_indexed(order["orderReference"], aws["FORM_ORDERS_TABLE"])

    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    assert eprom.orders_per_reference[order["orderReference"]] == 1
    assert dead_letters.messages() == []

    expire_claims(aws)
    reused = order | {"nationalId": "01039494104"}
    assert placer.lambda_handler(sqs_event(reused), lambda_context) == {"batchItemFailures": []}
    [dead] = dead_letters.messages()
    assert dead["MessageAttributes"]["rejectionClass"]["StringValue"] == "ReusedOrderReference"
    assert eprom.orders_per_reference[order["orderReference"]] == 1


@pytest.mark.slow
def test_the_largest_message_the_order_queue_takes_reaches_the_dlq_with_its_reason(
    placer, eprom, dead_letters, aws, order_queue, lambda_context
) -> None:
    resources = load_template()["Resources"]
    largest = resources["OrderQueue"]["Properties"]["MaximumMessageSize"]
    dead_letter_largest = resources["OrderDeadLetterQueue"]["Properties"]["MaximumMessageSize"]
    assert dead_letter_largest - largest >= DEAD_LETTER_ATTRIBUTES_MAX_BYTES  # SQS counts attributes in the size

    unpadded = json.dumps(order_message(unknownField=""))  # invalid: unknown fields are refused
    raw = json.dumps(json.loads(unpadded) | {"unknownField": "x" * (largest - len(unpadded.encode()))})
    assert len(raw.encode()) == largest
    order_queue.send(raw)
    event = order_queue.receive(wait_seconds=1)

    assert placer.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    [dead] = dead_letters.messages()
    assert dead["Body"] == raw
    assert dead["MessageAttributes"]["rejectionClass"]["StringValue"] == "InvalidMessage"
    order_queue.delete(event)


def test_every_aws_client_has_explicit_timeouts_and_standard_retries(placer) -> None:
    consumer = placer.consumer
    clients = (
        placer.store.client,
        consumer.dead_letters._client,
        placer.placer.outcomes.client,
        consumer.queue._client,
    )
    for client in clients:
        config = client.meta.config
        assert (config.connect_timeout, config.read_timeout) == (1, 3)
        assert config.retries == {"mode": "standard", "total_max_attempts": 2}


def test_too_little_time_left_is_retried_and_nothing_is_sent(placer, eprom, dead_letters) -> None:
    nearly_out_of_time = LambdaContext("test-function", timeout_seconds=10)  # the writes would not fit after ePROM
    event = sqs_event(order_message())
    assert failed_ids(placer.lambda_handler(event, nearly_out_of_time)) == {event["Records"][0]["messageId"]}
    assert eprom.order_headers == []
    assert dead_letters.messages() == []
