"""Exactly one ePROM order per orderReference under every operator action (issue 19, item 1): parked copies
redriven together, in one batch and in parallel batches, an invocation that ended between its claim and ePROM's
answer, one that stopped between ePROM's answer and the order's item (the claim keeps the answer; an earlier
version's idempotency record is read once), and a property test over random interleavings of deliveries, redrives,
timeouts and claims expiring.

Everything real: the placer's handler, moto over HTTP (OrderQueue, the DLQ, both tables), the ePROM simulator.
"""

import json
import threading
import time
import uuid
from dataclasses import replace
from typing import Any

import boto3
import pytest
import requests
from conftest import API_KEY, DEFAULT_SIMULATOR, failed_ids, order_message, sqs_event, wait_until_indexed
from eprom.orders import read_order
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from place_order.placing import order_fingerprint

from local.lambda_runtime import LambdaContext
from local.sqs_poller import lambda_record

VALIDATION = {"allow_synthetic_national_ids": False, "allow_test_mode_orders": False}


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

    def dead_letters_of(self, reference: str) -> list[dict[str, Any]]:
        """This order's letters. Another test's letter can still turn up: one an earlier test received and left
        in flight becomes visible again when its visibility timeout ends, after the drain in __init__."""
        return [letter for letter in self.dead_letters() if _order_reference_of(letter["Body"]) == reference]

    def redrive(self, letters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The letters sent back to OrderQueue with their attributes, and received from it as Lambda records."""
        for letter in letters:
            attributes = {name: {"DataType": value["DataType"], "StringValue": value["StringValue"]}
                          for name, value in letter.get("MessageAttributes", {}).items()}  # fmt: skip
            self.sqs.send_message(QueueUrl=self.order_queue, MessageBody=letter["Body"], MessageAttributes=attributes)
        return [lambda_record(message, self.arn) for message in self.take_all(self.order_queue)]


def _order_reference_of(body: str) -> str | None:
    try:
        return json.loads(body).get("orderReference")
    except (ValueError, AttributeError):
        return None


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
    letters = queues.dead_letters_of(order["orderReference"])
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


@pytest.mark.slow
def test_redriving_every_parked_copy_in_one_batch_orders_once(placer, eprom, queues, lambda_context) -> None:
    order, letters = parked_copies(placer, eprom, queues, lambda_context, copies=3)
    eprom.config.latency_seconds = 0.3  # the copies of the batch are in flight together

    settle(placer, queues.redrive(letters), lambda_context)

    assert eprom.orders_per_reference[order["orderReference"]] == 1
    # The other copies were recognised as placed, not parked or refused.
    assert queues.dead_letters_of(order["orderReference"]) == []


@pytest.mark.slow
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
    assert queues.dead_letters_of(order["orderReference"]) == []
    assert json.loads(records[0]["body"]) == order


def eprom_request(order: dict[str, Any], eprom) -> None:
    """What an attempt sent before its invocation stopped: the order, as it reached ePROM."""
    request = read_order(json.dumps(order), **VALIDATION).eprom_request()
    answer = requests.post(f"{eprom.base_url}/api/v2/formorder", data=request,
                           headers={"Authorization": f"Basic {API_KEY}", "Content-Type": "application/json"},
                           timeout=10)  # fmt: skip
    assert answer.status_code == 200


def crash_after_claiming(placer, order: dict[str, Any]) -> bool:
    """An invocation that took the orderReference's claim and then stopped (crash or timeout) without a word: what
    it leaves behind. False when another attempt held the claim (the crashed one would not have sent)."""
    message = read_order(json.dumps(order), **VALIDATION)
    holder = placer.claims.take(
        message.order_reference,
        attempt_id=str(uuid.uuid4()),
        fingerprint=order_fingerprint(message, placer.fingerprint_key()),
        sending_until=time.time() - 1,  # its invocation has ended
        order_expiry=message.expiry_date,
    )
    return holder is None


@pytest.mark.parametrize("reached_eprom", [False, True])
def test_an_invocation_that_stopped_between_claim_and_answer_is_parked_never_sent_again(
    reached_eprom, placer, eprom, queues, orders_table, lambda_context
) -> None:
    order = order_message()
    assert crash_after_claiming(placer, order)
    if reached_eprom:
        eprom_request(order, eprom)
    sent_before = len(eprom.order_headers)

    # SQS delivers the crashed invocation's message again, with a duplicate: both parked, nothing sent.
    settle(placer, sqs_event(order, order)["Records"], lambda_context)
    letters = queues.dead_letters_of(order["orderReference"])
    assert classes(letters) == ["Ambiguous", "Ambiguous"]
    reason = letters[0]["MessageAttributes"]["rejectionReason"]["StringValue"]
    assert "ended without an answer" in reason and "ePROM Admin" in reason
    assert len(eprom.order_headers) == sent_before

    if not reached_eprom:  # the operator finds nothing in ePROM Admin and redrives both
        settle(placer, queues.redrive(letters), lambda_context)
        assert eprom.orders_per_reference[order["orderReference"]] == 1
        assert queues.dead_letters_of(order["orderReference"]) == []


@pytest.mark.slow
def test_an_item_from_before_claims_stops_a_second_order(placer, eprom, queues, aws, lambda_context) -> None:
    """Items written before claims were kept (or whose claim expired) are still found, through the index."""
    order = order_message()
    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    table = boto3.resource("dynamodb").Table(aws["IDEMPOTENCY_TABLE"])
    for item in table.scan()["Items"]:  # no idempotency record, no claim
        table.delete_item(Key={"id": item["id"]})
    wait_until_indexed(order["orderReference"], aws["FORM_ORDERS_TABLE"])  # the item is old by then

    settle(placer, sqs_event(order, order)["Records"], lambda_context)
    assert eprom.orders_per_reference[order["orderReference"]] == 1
    assert queues.dead_letters_of(order["orderReference"]) == []


def ordered(eprom, reference: str) -> list[str]:
    """The formOrderIds ePROM created for the reference (the test orders carry it in their metadata)."""

    def reference_of(body: dict[str, Any]) -> object:  # other tests' orders share the simulator: any metadata
        metadata = json.loads(body.get("metadata") or "{}")
        return metadata.get("orderReference") if isinstance(metadata, dict) else None

    return [form_order_id for form_order_id, body in eprom.orders.items() if reference_of(body) == reference]


def test_the_claim_keeps_eproms_answer_and_lives_as_long_as_the_item(
    placer, eprom, orders_table, aws, lambda_context
) -> None:
    order = order_message(distributionRule="NoDistribution")
    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    records = boto3.resource("dynamodb").Table(aws["IDEMPOTENCY_TABLE"]).scan()["Items"]
    [claim] = [record for record in records if record["id"] == f"orderReference#{order['orderReference']}"]
    assert claim["state"] == "Placed" and claim["formOrderId"] in eprom.orders
    item = orders_table.get_item(Key={"formOrderId": claim["formOrderId"]}, ConsistentRead=True)["Item"]
    assert item["orderReference"] == order["orderReference"]
    assert claim["expiration"] == item["expiresAt"]  # the order's expiryDate + ResultRetentionDays
    assert claim["expiration"] > time.time() + placer.settings.idempotency_expiry_seconds  # its shortest life
    answer = json.loads(claim["answer"])
    assert answer["id"] == claim["formOrderId"] and answer["singleUseCode"] == item["singleUseCode"]
    assert order["nationalId"] not in claim["answer"]  # ePROM echoes it; the claim keeps only what is ours
    assert not [record for record in records if ".place_order.app.place_once#" in record["id"]]  # one mechanism


def test_an_invocation_that_stopped_after_the_claim_kept_the_answer_has_its_item_written_by_the_next(
    placer, eprom, orders_table, lambda_context
) -> None:
    """The claim is written before the item: an invocation that stopped between the two left the answer in the
    claim, and the next delivery of the reference writes the item from it, without asking ePROM again."""
    order = order_message()
    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    [form_order_id] = ordered(eprom, order["orderReference"])
    placed = orders_table.get_item(Key={"formOrderId": form_order_id}, ConsistentRead=True)["Item"]
    orders_table.delete_item(Key={"formOrderId": form_order_id})  # as if the item had never been written

    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    item = orders_table.get_item(Key={"formOrderId": form_order_id}, ConsistentRead=True)["Item"]
    assert {name: item[name] for name in ("orderReference", "orderFingerprint", "loginUrl", "status")} == {
        name: placed[name] for name in ("orderReference", "orderFingerprint", "loginUrl", "status")
    }
    assert eprom.orders_per_reference[order["orderReference"]] == 1


def test_an_order_an_earlier_version_left_between_answer_and_item_ends_recorded(
    placer, eprom, queues, orders_table, aws, lambda_context
) -> None:
    """Upgrading from the version that kept Powertools' idempotency records beside the claims: its invocation that
    stopped after ePROM's answer, before the item, left a Sending claim and a COMPLETED record holding the answer.
    The record is written here by Powertools itself (as the earlier version did), not by our idea of its format."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
    from eprom.contracts import OrderMessage

    order = order_message()
    message = OrderMessage.model_validate(order, context=VALIDATION)  # what the earlier version's record was made of
    eprom_request(order, eprom)  # ePROM took the order
    [form_order_id] = ordered(eprom, order["orderReference"])
    records = DynamoDBPersistenceLayer(table_name=aws["IDEMPOTENCY_TABLE"])
    records.configure(IdempotencyConfig(event_key_jmespath="order_reference", payload_validation_jmespath="@"),
                      function_name="place_order.app.place_once")  # fmt: skip
    response = {"id": form_order_id, "single_use_code": None, "login_url": f"{eprom.base_url}/login",
                "notification_channel": "Helsenorge"}  # fmt: skip
    records.save_success(data=message.model_dump(), result={"response": response, "placed_before": None})
    assert crash_after_claiming(placer, order)
    sent_before = len(eprom.order_headers)

    settle(placer, sqs_event(order)["Records"], lambda_context)

    assert len(eprom.order_headers) == sent_before  # not asked again
    item = orders_table.get_item(Key={"formOrderId": form_order_id}, ConsistentRead=True)["Item"]
    assert item["orderReference"] == order["orderReference"] and item["status"] == "Placed"
    assert queues.dead_letters_of(order["orderReference"]) == []


def test_a_placed_claim_of_an_earlier_version_without_the_answer_is_placed_before(
    placer, eprom, queues, aws, lambda_context
) -> None:
    """An earlier version settled a claim only after the item was written, and kept no answer in it."""
    order = order_message()
    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    boto3.client("dynamodb").update_item(TableName=aws["IDEMPOTENCY_TABLE"],
                                         Key={"id": {"S": f"orderReference#{order['orderReference']}"}},
                                         UpdateExpression="REMOVE answer")  # fmt: skip
    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    assert eprom.orders_per_reference[order["orderReference"]] == 1
    assert queues.dead_letters_of(order["orderReference"]) == []


def expire_placed_claims(aws: dict[str, str]) -> None:
    """What DynamoDB's TTL deletes of the claims of placed orders, long after their items were written (a final
    status after an order's expiryDate keeps its item longer): by then the index has the items."""
    table = boto3.resource("dynamodb").Table(aws["IDEMPOTENCY_TABLE"])
    for item in table.scan()["Items"]:
        if item["id"].startswith("orderReference#") and item["state"] == "Placed":
            wait_until_indexed(item["id"].removeprefix("orderReference#"), aws["FORM_ORDERS_TABLE"])
            table.delete_item(Key={"id": item["id"]})


FAULTS = {None: None, "500": "rate_500", "timeout": "rate_timeout", "late answer": "rate_late_answer",
          "lost answer": "rate_lost_answer"}  # fmt: skip
faults = st.sampled_from([None, None, "500", "lost answer", "timeout", "late answer"])
steps = st.one_of(
    st.tuples(st.just("deliver"), st.integers(1, 3), faults),  # copies in one batch
    st.tuples(st.just("deliver in parallel"), st.integers(2, 3), faults),  # each copy in a batch of its own
    st.tuples(st.just("retry"), faults),  # SQS delivers again what is waiting for a retry
    st.tuples(st.just("redrive"), st.booleans(), faults),  # the operator's redrive of every parked copy
    st.tuples(st.just("expire placed claims")),
    st.tuples(st.just("crash"), st.booleans()),  # an invocation stops after its claim (its request sent or not)
)


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=st.lists(steps, min_size=1, max_size=6))
# Always tried, besides the drawn ones: the operator's redrive of issue 19 (copies parked after a timeout,
# redriven in one batch and in parallel batches), and a crash after ePROM took the order.
@example(script=[("deliver", 2, "timeout"), ("retry", None), ("redrive", False, None)])
@example(script=[("deliver in parallel", 3, "timeout"), ("retry", None), ("redrive", True, None)])
@example(script=[("crash", True), ("expire placed claims",), ("deliver", 2, None), ("redrive", True, None)])
@example(script=[("deliver", 1, None), ("expire placed claims",), ("crash", True)])  # the item answers, not a claim
def test_at_most_one_order_and_every_message_accounted_for(script, placer, eprom, queues, orders_table, aws) -> None:
    """Invariant: at most one ePROM order per orderReference, and every message ends placed, in the DLQ with a
    reason, or waiting for its retry; an order ePROM has is recorded or parked for a person."""
    eprom.reset(
        replace(DEFAULT_SIMULATOR, forms=dict(DEFAULT_SIMULATOR.forms), timeout_seconds=1.5, latency_seconds=0.05)
    )
    order = order_message()
    reference = order["orderReference"]
    pending: list[dict[str, Any]] = []  # records SQS will deliver again
    parked: list[dict[str, Any]] = []  # the DLQ's letters of this order
    resolved_in_admin = False  # the operator found the order in ePROM Admin and deleted the parked letters

    def placed() -> bool:
        ids = ordered(eprom, reference)
        return any(orders_table.get_item(Key={"formOrderId": i}, ConsistentRead=True).get("Item") for i in ids)

    def run(batches: list[list[dict[str, Any]]], fault: str | None) -> None:
        if fault:
            setattr(eprom.config, FAULTS[fault], 1.0)
        answers: list[dict[str, Any]] = [{} for _ in batches]

        def invoke(index: int) -> None:
            answers[index] = placer.lambda_handler({"Records": batches[index]}, LambdaContext("test-function"))

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
        assert eprom.orders_per_reference[reference] <= 1, "a second ePROM order"
        assert all(letter["MessageAttributes"]["rejectionClass"]["StringValue"] == "Ambiguous" for letter in letters)
        assert all(letter["MessageAttributes"].get("ambiguousAttemptId") for letter in letters)
        done = len(records) - len(failed)
        assert len(letters) == done or (placed() and len(letters) <= done), "a message neither placed nor parked"
        pending.extend(record for record in records if record["messageId"] in failed)
        parked.extend(letters)

    for step in script:
        match step:
            case ("deliver", copies, fault):
                run([sqs_event(*[order] * copies)["Records"]], fault)
            case ("deliver in parallel", copies, fault):
                run([sqs_event(order)["Records"] for _ in range(copies)], fault)
            case ("retry", fault) if pending:
                batch, pending[:] = list(pending), []
                run([batch], fault)
            case ("redrive", in_parallel, fault) if parked:
                letters, parked[:] = list(parked), []
                if eprom.orders_per_reference[reference]:  # ePROM Admin shows the order: the letters are deleted
                    resolved_in_admin = True
                    continue
                records = [lambda_record(letter, queues.arn) for letter in letters]
                run([[record] for record in records] if in_parallel else [records], fault)
            case ("expire placed claims",):
                expire_placed_claims(aws)
            case ("crash", reached_eprom):
                # An attempt that holds the claim sends only when the index has no item of the reference (placing.py:
                # after "expire placed claims" the claim is gone and the item still answers for the order)
                claimed = crash_after_claiming(placer, order)
                if claimed and reached_eprom and not placer.store.find_by_order_reference(reference):
                    eprom_request(order, eprom)
                pending.extend(sqs_event(order)["Records"])  # the stopped invocation's message comes back

    while pending:  # SQS keeps delivering what waits for a retry; ePROM is well again
        batch, pending[:] = list(pending), []
        run([batch], None)
    assert eprom.orders_per_reference[reference] <= 1
    if eprom.orders_per_reference[reference] and not placed():
        assert parked or resolved_in_admin, "ePROM has an order that is neither recorded nor parked for a person"
