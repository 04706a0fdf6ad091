"""Exactly one letter, SMS or e-mail per messageReference under every operator action, as for orders
(test_exactly_once.py): parked copies redriven together, in one batch and in parallel batches, an invocation that
ended between its claim and ePROM's answer, and a property test over random interleavings of deliveries, redrives,
timeouts, lost answers and crashes.

Everything real: the sender's handler, moto over HTTP (MessageQueue, its DLQ, MessagesTable and the documents'
bucket), the ePROM simulator.
"""

import json
import threading
import time
import uuid
from dataclasses import replace
from typing import Any

import boto3
import pytest
from conftest import DEFAULT_SIMULATOR, failed_ids, letter_message, sms_message, sqs_event
from eprom.citizen_messages import read_message
from eprom.claims import fingerprint
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from local.lambda_runtime import LambdaContext
from local.sqs_poller import lambda_record

VALIDATION = {"allow_synthetic_national_ids": False, "allow_test_mode_orders": False}


class Queues:
    """MessageQueue and its DLQ as an operator's redrive uses them (the message moved with its attributes)."""

    def __init__(self, aws: dict[str, str]) -> None:
        self.sqs = boto3.client("sqs")
        self.queue, self.dead_letter_queue = aws["MESSAGE_QUEUE_URL"], aws["MESSAGE_DEAD_LETTER_QUEUE_URL"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])
        self.arn = attributes["Attributes"]["QueueArn"]
        for url in (self.queue, self.dead_letter_queue):
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

    def dead_letters_of(self, reference: str) -> list[dict[str, Any]]:
        return [letter for letter in self.take_all(self.dead_letter_queue)
                if json.loads(letter["Body"]).get("messageReference") == reference]  # fmt: skip

    def redrive(self, letters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The letters sent back to MessageQueue with their attributes, and received from it as Lambda records."""
        for letter in letters:
            attributes = {name: {"DataType": value["DataType"], "StringValue": value["StringValue"]}
                          for name, value in letter.get("MessageAttributes", {}).items()}  # fmt: skip
            self.sqs.send_message(QueueUrl=self.queue, MessageBody=letter["Body"], MessageAttributes=attributes)
        return [lambda_record(message, self.arn) for message in self.take_all(self.queue)]


@pytest.fixture
def queues(aws: dict[str, str]) -> Queues:
    return Queues(aws)


def classes(letters: list[dict[str, Any]]) -> list[str]:
    return [letter["MessageAttributes"]["rejectionClass"]["StringValue"] for letter in letters]


def sent(eprom: Any, message: dict[str, Any]) -> int:
    """How many times ePROM took the message (the tests title each message with its reference)."""
    return len(eprom.messages_titled(message["messageReference"]))


def settle(sender: Any, records: list[dict[str, Any]], context: Any) -> None:
    """Deliver until nothing is left to retry (SQS delivers a failed record again)."""
    for _ in range(20):
        if not records:
            return
        failed = failed_ids(sender.lambda_handler({"Records": records}, context))
        records = [record for record in records if record["messageId"] in failed]
    raise AssertionError(f"{len(records)} record(s) still retried after 20 deliveries")


def parked_copies(sender, eprom, queues: Queues, message: dict[str, Any], context, copies: int) -> list:
    """`copies` deliveries of a message whose first attempt timed out before ePROM took it: all parked."""
    eprom.config.rate_timeout, eprom.config.timeout_seconds = 1.0, 1.5  # longer than the sender's 1 s
    assert sender.lambda_handler(sqs_event(message), context) == {"batchItemFailures": []}
    eprom.config.rate_timeout = 0.0
    for _ in range(copies - 1):
        assert sender.lambda_handler(sqs_event(message), context) == {"batchItemFailures": []}
    letters = queues.dead_letters_of(message["messageReference"])
    assert classes(letters) == ["Ambiguous"] * copies
    assert sent(eprom, message) == 0  # the operator finds nothing in ePROM Admin
    return letters


@pytest.mark.slow
def test_redriving_every_parked_copy_of_a_letter_in_one_batch_sends_it_once(
    sender, eprom, aws, queues, lambda_context
) -> None:
    letter = letter_message(aws)
    letters = parked_copies(sender, eprom, queues, letter, lambda_context, copies=3)
    eprom.config.latency_seconds = 0.3
    settle(sender, queues.redrive(letters), lambda_context)
    assert sent(eprom, letter) == 1
    assert queues.dead_letters_of(letter["messageReference"]) == []


@pytest.mark.slow
def test_redriving_every_parked_copy_in_parallel_batches_sends_it_once(sender, eprom, queues, lambda_context) -> None:
    sms = sms_message()
    records = queues.redrive(parked_copies(sender, eprom, queues, sms, lambda_context, copies=4))
    eprom.config.latency_seconds = 0.3
    start = threading.Barrier(len(records))

    def invoke(record: dict[str, Any]) -> None:  # one Lambda environment per copy, at once
        start.wait()
        settle(sender, [record], LambdaContext("test-function", timeout_seconds=60))

    threads = [threading.Thread(target=invoke, args=(record,)) for record in records]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sent(eprom, sms) == 1
    assert queues.dead_letters_of(sms["messageReference"]) == []


def crash_after_claiming(sender: Any, message: dict[str, Any]) -> bool:
    """An invocation that took the messageReference's claim and then stopped without a word: what it leaves behind.
    False when another attempt held the claim (the crashed one would not have sent)."""
    parsed = read_message(json.dumps(message), **VALIDATION)
    holder = sender.store.claims.take(
        parsed.message_reference,
        attempt_id=str(uuid.uuid4()),
        fingerprint=fingerprint(parsed.fingerprint_content(), sender.fingerprint_key()),
        sending_until=time.time() - 1,  # its invocation has ended
        expires_at=sender.store.expires_at(),
        attributes={"kind": parsed.kind},
    )
    return holder is None


def reach_eprom(sender: Any, message: dict[str, Any]) -> None:
    """What an attempt sent before its invocation stopped: the message, as it reached ePROM."""
    parsed = read_message(json.dumps(message), **VALIDATION)
    sender.sender.eprom.send_sms(parsed, answer_by=time.time() + 10)


@pytest.mark.parametrize("reached_eprom", [False, True])
def test_an_invocation_that_stopped_between_claim_and_answer_is_parked_never_sent_again(
    reached_eprom, sender, eprom, queues, lambda_context
) -> None:
    sms = sms_message()
    assert crash_after_claiming(sender, sms)
    if reached_eprom:
        reach_eprom(sender, sms)
    settle(sender, sqs_event(sms, sms)["Records"], lambda_context)
    letters = queues.dead_letters_of(sms["messageReference"])
    assert classes(letters) == ["Ambiguous", "Ambiguous"]
    reason = letters[0]["MessageAttributes"]["rejectionReason"]["StringValue"]
    assert "ended without an answer" in reason and "ePROM Admin" in reason
    assert sent(eprom, sms) == (1 if reached_eprom else 0)
    if not reached_eprom:  # the operator finds nothing in ePROM Admin and redrives both
        settle(sender, queues.redrive(letters), lambda_context)
        assert sent(eprom, sms) == 1
        assert queues.dead_letters_of(sms["messageReference"]) == []


FAULTS = {None: None, "500": "rate_500", "timeout": "rate_timeout", "late answer": "rate_late_answer",
          "lost answer": "rate_lost_answer", "429": "rate_429"}  # fmt: skip
faults = st.sampled_from([None, None, "500", "lost answer", "timeout", "late answer", "429"])
steps = st.one_of(
    st.tuples(st.just("deliver"), st.integers(1, 3), faults),  # copies in one batch
    st.tuples(st.just("deliver in parallel"), st.integers(2, 3), faults),  # each copy in a batch of its own
    st.tuples(st.just("retry"), faults),  # SQS delivers again what is waiting for a retry
    st.tuples(st.just("redrive"), st.booleans(), faults),  # the operator's redrive of every parked copy
    st.tuples(st.just("crash"), st.booleans()),  # an invocation stops after its claim (its request sent or not)
)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=st.lists(steps, min_size=1, max_size=6), kind=st.sampled_from(["letter", "sms"]))
@example(script=[("deliver", 2, "timeout"), ("retry", None), ("redrive", False, None)], kind="letter")
@example(script=[("deliver in parallel", 3, "lost answer"), ("retry", None), ("redrive", True, None)], kind="sms")
@example(script=[("crash", True), ("deliver", 2, None), ("redrive", True, None)], kind="sms")
def test_at_most_one_message_and_every_delivery_accounted_for(script, kind, sender, eprom, aws, queues) -> None:
    """Invariant: ePROM takes the message at most once, and every delivery ends sent, in the DLQ with a reason, or
    waiting for its retry; a message ePROM took is recorded or parked for a person."""
    eprom.reset(replace(DEFAULT_SIMULATOR, forms=dict(DEFAULT_SIMULATOR.forms), timeout_seconds=1.5,
                        latency_seconds=0.05, max_faults_per_order=None))  # fmt: skip
    message = letter_message(aws) if kind == "letter" else sms_message()
    reference = message["messageReference"]
    table = boto3.resource("dynamodb").Table(aws["MESSAGES_TABLE"])
    pending: list[dict[str, Any]] = []
    parked: list[dict[str, Any]] = []
    resolved_in_admin = False

    def recorded() -> bool:
        stored = table.get_item(Key={"messageReference": reference}, ConsistentRead=True).get("Item")
        return bool(stored and stored.get("state") == "Sent")

    def run(batches: list[list[dict[str, Any]]], fault: str | None) -> None:
        if fault:
            setattr(eprom.config, FAULTS[fault], 1.0)
        answers: list[dict[str, Any]] = [{} for _ in batches]

        def invoke(index: int) -> None:
            answers[index] = sender.lambda_handler({"Records": batches[index]}, LambdaContext("test-function"))

        threads = [threading.Thread(target=invoke, args=(index,)) for index in range(len(batches))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        if fault:
            setattr(eprom.config, FAULTS[fault], 0.0)
        failed = set().union(*(failed_ids(answer) for answer in answers))
        records = [record for batch in batches for record in batch]
        letters = queues.dead_letters_of(reference)
        assert sent(eprom, message) <= 1, "ePROM took the message twice"
        assert all(classes([letter]) == ["Ambiguous"] for letter in letters)
        assert all(letter["MessageAttributes"].get("ambiguousAttemptId") for letter in letters)
        done = len(records) - len(failed)
        assert len(letters) == done or (recorded() and len(letters) <= done), "a delivery neither sent nor parked"
        pending.extend(record for record in records if record["messageId"] in failed)
        parked.extend(letters)

    for step in script:
        match step:
            case ("deliver", copies, fault):
                run([sqs_event(*[message] * copies)["Records"]], fault)
            case ("deliver in parallel", copies, fault):
                run([sqs_event(message)["Records"] for _ in range(copies)], fault)
            case ("retry", fault) if pending:
                batch, pending[:] = list(pending), []
                run([batch], fault)
            case ("redrive", in_parallel, fault) if parked:
                letters, parked[:] = list(parked), []
                if sent(eprom, message):  # ePROM Admin shows it: the parked letters are deleted
                    resolved_in_admin = True
                    continue
                records = [lambda_record(letter, queues.arn) for letter in letters]
                run([[record] for record in records] if in_parallel else [records], fault)
            case ("crash", reached):
                if crash_after_claiming(sender, message) and reached and kind == "sms":
                    reach_eprom(sender, message)
                pending.extend(sqs_event(message)["Records"])  # the stopped invocation's message comes back

    while pending:  # SQS keeps delivering what waits for a retry; ePROM is well again
        batch, pending[:] = list(pending), []
        run([batch], None)
    assert sent(eprom, message) <= 1
    if sent(eprom, message) and not recorded():
        assert parked or resolved_in_admin, "ePROM took a message that is neither recorded nor parked for a person"
