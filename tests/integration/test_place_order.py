"""PlaceOrderFunction end to end: SQS event -> handler -> ePROM simulator (HTTP) -> moto DynamoDB / SQS (HTTP)."""

import json
import os
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Attr
from conftest import (
    ANY_INPUT,
    API_KEY,
    DEEP,
    EVENTS,
    FORM_ID,
    NONEXISTENT_NATIONAL_ID,
    PAPER_FORM_ID,
    UNPUBLISHED_FORM_ID,
    DeadLetters,
    failed_ids,
    order_message,
    sqs_event,
    unique_reference,
    wait_until_indexed,
)
from eprom.eprom_client import NO_ORDER_CREATED
from eprom.orders import MUST_BE_SIGNED_NO_DISTRIBUTION, MUST_BE_SIGNED_ON_BEHALF
from eprom.pacer import PACE_KEY
from hypothesis import HealthCheck, given, settings

from local.aws_resources import load_template
from local.eprom_simulator import Form
from local.sqs_poller import lambda_record


def items_for(table: Any, order_reference: str) -> list[dict[str, Any]]:
    """Every item of the orderReference, exactly: a consistent scan, not the index, whose reads lag behind writes
    (local/aws_limits.py) and so cannot prove that there is only one, or none."""
    scan = {"FilterExpression": Attr("orderReference").eq(order_reference), "ConsistentRead": True}
    items, page = [], table.scan(**scan)
    while True:
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        page = table.scan(**scan, ExclusiveStartKey=page["LastEvaluatedKey"])


def test_a_valid_order_is_placed_and_recorded(placer, eprom, dead_letters, orders_table, lambda_context) -> None:
    order = order_message()
    response = placer.lambda_handler(sqs_event(order), lambda_context)

    assert response == {"batchItemFailures": []}
    [sent] = eprom.order_requests
    assert sent["nationalId"] == order["nationalId"]
    assert isinstance(sent["metadata"], str)  # JSON encoded twice, as ePROM wants
    assert json.loads(sent["metadata"]) == {"age": 76, "orderReference": order["orderReference"]}
    assert sent["reminderDate"] is None
    assert sent["distributionRule"] == "Basic"
    assert "orderReference" not in sent
    assert eprom.order_headers[-1]["Authorization"] == f"Basic {API_KEY}"  # the raw key, not base64(user:pass)
    assert eprom.order_headers[-1]["Content-Type"] == "application/json;charset=utf-8"

    [item] = items_for(orders_table, order["orderReference"])
    assert item["status"] == "Placed"
    assert item["formId"] == FORM_ID
    assert item["preferredNotificationChannel"] == "Helsenorge"
    assert item["loginUrl"].endswith("/login")
    assert item["formOrderId"] in eprom.orders
    assert "singleUseCode" not in item
    assert dead_letters.messages() == []


def test_no_distribution_keeps_the_single_use_code(placer, eprom, orders_table, lambda_context) -> None:
    order = order_message(distributionRule=2)
    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    [item] = items_for(orders_table, order["orderReference"])
    assert item["preferredNotificationChannel"] == "None"
    assert len(item["singleUseCode"]) == 8


def test_the_sample_orders_in_events_are_placed(placer, eprom, orders_table, lambda_context) -> None:
    for name in ("basic.json", "no-distribution.json", "paper-with-address.json", "on-behalf-of.json"):
        order = json.loads((EVENTS / "orders" / name).read_text()) | {"orderReference": unique_reference("sample")}
        assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}, name
        assert items_for(orders_table, order["orderReference"]), name


REFUSALS = {
    "not JSON": ("{not json", "invalid order message: Invalid JSON"),
    "not an object": ("[1, 2]", "invalid order message: Input should be an object"),
    "unknown field": (order_message(distribusjonRule="Basic"), "invalid order message: an unknown field at the top"),
    "a national id as a key": (order_message(**{"17048522719": "x"}), "an unknown field at the top level"),
    "missing field": (order_message(formId=None), "formId: Field required"),
    "bad control digits": (order_message(nationalId="17048522719"), "nationalId: control digits do not match"),
    "H-nummer": (order_message(nationalId="15499923810"), "nationalId: H-nummer is not supported as national ID."),
    "FH-nummer": (order_message(nationalId="81263303652"), "nationalId: FH-nummer is not supported as national ID."),
    "synthetic id": (order_message(nationalId="26670271527"), "nationalId: synthetic test ids"),
    "bad onBehalfOf": (order_message(onBehalfOfNationalId="06496032258"), "onBehalfOfNationalId: H-nummer"),
    "signed without distribution": (
        order_message(mustBeSigned=True, distributionRule="NoDistribution"),
        MUST_BE_SIGNED_NO_DISTRIBUTION,
    ),
    "signed on behalf": (
        order_message(mustBeSigned=True, onBehalfOfNationalId="55019049891"),
        MUST_BE_SIGNED_ON_BEHALF,
    ),
    "bad metadata": (order_message(metadata="{age: 76"), "metadata: JSON in metadata is not valid"),
    "expired": (order_message(expiryDate="2020-01-01T00:00:00Z"), "expiryDate: must be in the future"),
    "bad orderReference": (order_message(orderReference="has spaces"), "orderReference: String should match"),
    "national id in orderReference": (
        order_message(orderReference="registry:pasient-26073941651"),
        "orderReference: must not contain a national id",
    ),
    "national id written with a separator elsewhere in orderReference": (
        order_message(orderReference="registry:2607-3941651"),
        "orderReference: must not contain a national id",
    ),
    "national id with a separator in orderReference": (
        order_message(orderReference="registry:260739-41651"),
        "orderReference: must not contain a national id",
    ),
    "testMode in production": (order_message(testMode=True), "testMode: testMode orders are not allowed"),
    "Arabic-Indic digits in the national id": (
        order_message(nationalId="\u0662" + "6073941651"),
        "nationalId: must be exactly",
    ),
    "Arabic-Indic digits in the postal code": (
        order_message(
            formId=PAPER_FORM_ID,
            distributionRule="PaperOnly",
            physicalAddress={
                "fullName": "K N",
                "addressLine1": "Gata 1",
                "postalCode": "\u0660\u0661\u0665\u0660",
                "postalPlace": "Oslo",
            },
        ),
        "physicalAddress.postalCode: String should match pattern '^[0-9]{4}$'",
    ),
    "NaN in metadata": ('{"metadata": {"age": NaN}}', "metadata: JSON in metadata is not valid: NaN and Infinity"),
    "Infinity in metadata text": (order_message(metadata='{"age": Infinity}'), "JSON in metadata is not valid: NaN"),
    "unreadable expiryDate": (
        order_message(expiryDate="2099-13-01 for 26073941651"),
        "expiryDate: must be a date-time such as",
    ),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_invalid_messages_go_to_the_dlq_with_a_reason_and_never_reach_eprom(
    case, placer, eprom, dead_letters, lambda_context
) -> None:
    body, expected_reason = REFUSALS[case]
    raw = body if isinstance(body, str) else json.dumps(body)

    response = placer.lambda_handler(sqs_event(raw), lambda_context)

    assert response == {"batchItemFailures": []}  # processed: deleted from OrderQueue, never retried
    assert eprom.order_requests == []
    [dead] = dead_letters.messages()
    assert dead["Body"] == raw  # the original body, untouched
    reason = dead["MessageAttributes"]["rejectionReason"]["StringValue"]
    assert expected_reason in reason
    assert dead["MessageAttributes"]["rejectionClass"]["StringValue"] == "InvalidMessage"
    for national_id in ("17048522719", "15499923810", "81263303652", "26670271527", "06496032258", "26073941651"):
        assert national_id not in reason
    assert "\u0662" not in reason and "2099-13-01" not in reason  # never the input value itself


@pytest.mark.parametrize(
    ("overrides", "expected_reason"),
    [
        ({"formId": "99999999-9999-4999-8999-999999999999"}, "No form with id='99999999-9999-4999-8999-999999999999'"),
        ({"formId": UNPUBLISHED_FORM_ID}, "The ordered form is not Published"),
        ({"distributionRule": "PaperOnly"}, f"Form with id='{FORM_ID}' is not paper enabled"),
        ({"nationalId": NONEXISTENT_NATIONAL_ID}, NO_ORDER_CREATED),
    ],
)
def test_eprom_refusals_go_to_the_dlq_with_eproms_message(
    overrides, expected_reason, placer, eprom, dead_letters, orders_table, lambda_context
) -> None:
    order = order_message(**overrides)
    response = placer.lambda_handler(sqs_event(order), lambda_context)

    assert response == {"batchItemFailures": []}
    assert len(eprom.order_requests) == 1
    [dead] = dead_letters.messages()
    assert expected_reason in dead["MessageAttributes"]["rejectionReason"]["StringValue"]
    assert dead["MessageAttributes"]["rejectionClass"]["StringValue"] == "RefusedByEprom"
    assert json.loads(dead["Body"]) == order
    assert items_for(orders_table, order["orderReference"]) == []

    # Re-sent (or redriven) without a fix: a refusal is not remembered, so ePROM is asked and refuses again.
    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    assert len(eprom.order_requests) == 2
    assert len(dead_letters.messages()) == 1


def test_a_refused_order_redriven_after_the_fix_is_placed(
    placer, eprom, dead_letters, orders_table, lambda_context
) -> None:
    order = order_message(formId=UNPUBLISHED_FORM_ID)
    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    [dead] = dead_letters.messages()
    assert "The ordered form is not Published" in dead["MessageAttributes"]["rejectionReason"]["StringValue"]

    eprom.config.forms[UNPUBLISHED_FORM_ID] = Form(published=True)  # the registry publishes the form in ePROM
    assert placer.lambda_handler(sqs_event(dead["Body"]), lambda_context) == {"batchItemFailures": []}
    [item] = items_for(orders_table, order["orderReference"])
    assert item["status"] == "Placed"
    assert eprom.orders_per_reference[order["orderReference"]] == 1
    assert dead_letters.messages() == []


def test_paper_order_for_a_paper_enabled_form_is_placed(placer, eprom, lambda_context) -> None:
    address = {"fullName": "Kari Nordmann", "addressLine1": "Storgata 1", "postalCode": "0150", "postalPlace": "Oslo"}
    order = order_message(formId=PAPER_FORM_ID, distributionRule="PaperOnly", physicalAddress=address)
    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    assert eprom.order_requests[0]["physicalAddress"]["postalCode"] == "0150"


def test_a_429_is_sent_again_in_the_same_invocation_once_eproms_pace_allows(
    placer, eprom, dead_letters, orders_table, lambda_context
) -> None:
    """ePROM limited to 1 order/s, our pace at 50/s: the orders ePROM turns away with 429 (nothing created) are sent
    again inside the invocation while the claim is held; the pace slows down; every order placed once."""
    eprom.config.rate_limit_per_second = 1.0
    eprom.reset(eprom.config)
    orders = [order_message() for _ in range(4)]

    assert placer.lambda_handler(sqs_event(*orders), lambda_context) == {"batchItemFailures": []}

    assert eprom.faults["rate_limited"] >= 1
    assert [eprom.orders_per_reference[order["orderReference"]] for order in orders] == [1, 1, 1, 1]
    assert all(items_for(orders_table, order["orderReference"]) for order in orders)
    assert dead_letters.messages() == []
    pace = boto3.client("dynamodb").get_item(TableName=os.environ["IDEMPOTENCY_TABLE"], Key={"id": {"S": PACE_KEY}})
    assert float(pace["Item"]["interval"]["N"]) > 1 / 50  # slowed down by the 429s that got through


def test_a_transient_failure_is_retried_and_succeeds_on_redelivery(
    placer, eprom, dead_letters, orders_table, lambda_context
) -> None:
    order = order_message()
    eprom.config.rate_500 = 1.0
    event = sqs_event(order)

    response = placer.lambda_handler(event, lambda_context)

    assert failed_ids(response) == {event["Records"][0]["messageId"]}
    assert items_for(orders_table, order["orderReference"]) == []
    assert dead_letters.messages() == []

    eprom.config.rate_500 = 0.0
    assert placer.lambda_handler(event, lambda_context) == {"batchItemFailures": []}  # SQS delivers it again
    [item] = items_for(orders_table, order["orderReference"])
    assert item["status"] == "Placed"
    assert eprom.orders_per_reference[order["orderReference"]] == 1


@pytest.mark.parametrize(
    ("fault", "created", "detail"),
    [
        ("rate_timeout", 0, "ePROM did not answer within 1 s after the order was sent"),
        ("rate_drop", 0, "the connection to ePROM broke after the order was sent"),
        ("rate_lost_answer", 1, "ePROM's gateway answered HTTP 504 after the order was sent"),
    ],
)
def test_an_order_ePROM_may_have_created_is_parked_never_sent_twice(
    fault, created, detail, placer, eprom, dead_letters, orders_table, lambda_context, captured_output
) -> None:
    order = order_message()
    setattr(eprom.config, fault, 1.0)
    eprom.config.timeout_seconds = 1.5  # longer than the placer's read timeout (1 s in tests)
    event = sqs_event(order)

    assert placer.lambda_handler(event, lambda_context) == {"batchItemFailures": []}  # not retried
    [dead] = dead_letters.messages()
    assert dead["MessageAttributes"]["rejectionClass"]["StringValue"] == "Ambiguous"
    reason = dead["MessageAttributes"]["rejectionReason"]["StringValue"]
    assert detail in reason
    assert f"for form {FORM_ID}" in reason and "ePROM Admin" in reason
    assert json.loads(dead["Body"]) == order
    assert len(eprom.order_headers) == 1  # one request reached ePROM
    assert eprom.orders_per_reference[order["orderReference"]] == created
    emf = [json.loads(line) for line in captured_output.text().splitlines() if '"OrdersAmbiguous"' in line]
    assert emf and emf[0]["OrdersAmbiguous"] == [1.0]

    # Remembered: the same message delivered again is parked again, never sent (see the tests below for the
    # redrive by a person).
    setattr(eprom.config, fault, 0.0)
    assert placer.lambda_handler(sqs_event(dead["Body"]), lambda_context) == {"batchItemFailures": []}
    assert len(eprom.order_headers) == 1
    assert items_for(orders_table, order["orderReference"]) == []
    assert len(dead_letters.messages()) == 1


def test_a_wrong_api_key_is_transient_not_a_refusal(placer, eprom, dead_letters, lambda_context) -> None:
    eprom.config.api_key = "rotated-in-eprom-admin"
    event = sqs_event(order_message())
    assert failed_ids(placer.lambda_handler(event, lambda_context)) == {event["Records"][0]["messageId"]}
    assert dead_letters.messages() == []


def test_only_the_failing_record_of_a_batch_is_retried(placer, eprom, dead_letters, lambda_context) -> None:
    good, invalid = order_message(), order_message(nationalId="15499923810")
    eprom.reset(replace(eprom.config, rate_500=0.5, seed=7))
    event = sqs_event(*(order_message() for _ in range(6)), good, invalid)
    response = placer.lambda_handler(event, lambda_context)
    failed = failed_ids(response)
    ids = [record["messageId"] for record in event["Records"]]
    assert ids[-1] not in failed  # the invalid one is refused, not retried
    assert len(dead_letters.messages()) == 1
    assert 0 < len(failed) == eprom.faults["500"]  # exactly the ones ePROM failed


def test_the_same_message_delivered_twice_orders_once(placer, eprom, dead_letters, orders_table, lambda_context):
    order = order_message()
    for _ in range(2):
        assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    assert len(eprom.order_requests) == 1
    assert len(items_for(orders_table, order["orderReference"])) == 1
    assert dead_letters.messages() == []


def test_the_same_order_reference_twice_in_one_batch_orders_once(
    placer, eprom, dead_letters, orders_table, lambda_context
) -> None:
    eprom.config.latency_seconds = 0.2  # both records are in flight together
    order = order_message()
    event = sqs_event(order, order)
    response = placer.lambda_handler(event, lambda_context)
    # One is placed; the other saw it in progress and is retried, then answered from the stored outcome.
    retry = [record for record in event["Records"] if record["messageId"] in failed_ids(response)]
    if retry:
        assert placer.lambda_handler({"Records": retry}, lambda_context) == {"batchItemFailures": []}
    assert len(eprom.order_requests) == 1
    assert len(items_for(orders_table, order["orderReference"])) == 1
    assert dead_letters.messages() == []


def test_an_order_reference_reused_with_other_content_is_refused(
    placer, eprom, dead_letters, orders_table, lambda_context
) -> None:
    first = order_message()
    second = first | {"nationalId": "01039494104"}
    assert placer.lambda_handler(sqs_event(first), lambda_context) == {"batchItemFailures": []}
    assert placer.lambda_handler(sqs_event(second), lambda_context) == {"batchItemFailures": []}
    assert len(eprom.order_requests) == 1
    [dead] = dead_letters.messages()
    assert json.loads(dead["Body"]) == second
    assert "orderReference was already used" in dead["MessageAttributes"]["rejectionReason"]["StringValue"]
    assert len(items_for(orders_table, first["orderReference"])) == 1


def test_a_callback_that_arrived_first_keeps_its_status(
    placer, callback_app, eprom, orders_table, lambda_context
) -> None:
    form_order_id = str(uuid.uuid4())
    callback = json.loads((EVENTS / "callback-ordered.json").read_text())
    callback["body"] = callback["body"].replace("184738d0-3c39-e611-9c2a-34e6d72e03c7", form_order_id)
    assert callback_app.lambda_handler(callback, lambda_context)["statusCode"] == 200

    eprom.config.next_form_order_ids = [form_order_id]
    order = order_message()
    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}

    item = orders_table.get_item(Key={"formOrderId": form_order_id})["Item"]
    assert item["status"] == "Ordered"  # not moved back to Placed
    assert item["orderReference"] == order["orderReference"]
    assert item["notificationChannel"] == "Helsenorge"


def test_a_refusal_is_retried_when_the_dlq_cannot_take_it(placer, eprom, aws, lambda_context) -> None:
    sqs = boto3.client("sqs")
    sqs.delete_queue(QueueUrl=aws["DEAD_LETTER_QUEUE_URL"])
    try:
        event = sqs_event(order_message(nationalId="15499923810"))
        response = placer.lambda_handler(event, lambda_context)
    finally:
        name = aws["DEAD_LETTER_QUEUE_URL"].rsplit("/", 1)[1]
        retention = load_template()["Resources"]["OrderDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"]
        assert sqs.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": str(retention)})["QueueUrl"]
    assert failed_ids(response) == {event["Records"][0]["messageId"]}  # never dropped


def test_a_batch_is_placed_in_parallel(placer, eprom, lambda_context, captured_output) -> None:
    eprom.config.latency_seconds = 0.3
    event = sqs_event(*(order_message() for _ in range(10)))
    started = time.perf_counter()
    response = placer.lambda_handler(event, lambda_context)
    elapsed = time.perf_counter() - started
    assert response == {"batchItemFailures": []}
    assert len(eprom.order_requests) == 10
    assert elapsed < 3.0, f"10 orders at 300 ms each took {elapsed:.2f} s: not parallel"  # sequential: >= 3 s
    [emf] = [json.loads(line) for line in captured_output.text().splitlines() if '"OrdersPlaced"' in line]
    assert emf["OrdersPlaced"] == [1.0] * 10  # counted from ten threads, none lost


def test_no_personal_data_in_logs_or_metrics(placer, eprom, dead_letters, lambda_context, captured_output) -> None:
    eprom.config.rate_500 = 0.3
    orders = [
        order_message(),
        order_message(distributionRule="NoDistribution", nationalId="01039494104"),
        order_message(nationalId="15499923810"),
        order_message(nationalId=NONEXISTENT_NATIONAL_ID),
        order_message(onBehalfOfNationalId="55019049891", nationalId="17048522718"),
        order_message(mustBeSigned=True, onBehalfOfNationalId="70090154174"),
        order_message(metadata={"age": 76, "diagnose": "sensitive-text"}),
    ]
    placer.lambda_handler(sqs_event(*orders, "{broken"), lambda_context)

    output = captured_output.text()
    records = captured_output.log_records()
    assert any(record["message"] == "order placed" for record in records)
    assert any(record["message"] == "message refused" for record in records)
    assert "OrdersPlaced" in output and "OrdersRefused" in output
    secrets = {API_KEY, "sensitive-text"}
    secrets |= {order[key] for order in orders for key in ("nationalId", "onBehalfOfNationalId") if key in order}
    secrets |= set(eprom.single_use_codes)
    assert eprom.single_use_codes
    for secret in secrets:
        assert secret not in output, "personal data or the ApiKey in the log output"


@pytest.mark.parametrize("fault", ["rate_lost_answer", "rate_timeout"])
def test_a_second_delivery_after_an_ambiguous_attempt_is_parked_not_sent(
    fault, placer, eprom, dead_letters, lambda_context
) -> None:
    """SQS delivers at least once: the same message again (or the upstream's resend) must not order a second
    time while nobody knows whether the first attempt created the order."""
    order = order_message()
    setattr(eprom.config, fault, 1.0)
    eprom.config.timeout_seconds = 1.5
    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    setattr(eprom.config, fault, 0.0)

    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    assert len(eprom.order_headers) == 1  # not sent again
    assert eprom.orders_per_reference[order["orderReference"]] <= 1
    classes = [dead["MessageAttributes"]["rejectionClass"]["StringValue"] for dead in dead_letters.messages()]
    assert classes == ["Ambiguous", "Ambiguous"]


def test_an_ambiguous_message_redriven_by_a_person_is_placed(
    placer, eprom, dead_letters, orders_table, lambda_context
) -> None:
    """The DLQ redrive keeps the message's rejectionClass: a redriven Ambiguous message is the operator's word
    that ePROM Admin has no such order."""
    order = order_message()
    eprom.config.rate_timeout, eprom.config.timeout_seconds = 1.0, 1.5
    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    [parked] = dead_letters.messages()
    eprom.config.rate_timeout = 0.0

    redriven = sqs_event(parked["Body"])
    redriven["Records"][0]["messageAttributes"] = {
        name: {"stringValue": value["StringValue"], "dataType": "String", "stringListValues": [],
               "binaryListValues": []}
        for name, value in parked["MessageAttributes"].items()
    }  # fmt: skip
    assert placer.lambda_handler(redriven, lambda_context) == {"batchItemFailures": []}
    assert eprom.orders_per_reference[order["orderReference"]] == 1
    assert len(items_for(orders_table, order["orderReference"])) == 1
    assert dead_letters.messages() == []

    # Sent again later by upstream (no rejectionClass): recognised by its item, not placed again.
    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    assert eprom.orders_per_reference[order["orderReference"]] == 1 and dead_letters.messages() == []


def test_a_redriven_ambiguous_message_that_meets_another_timeout_is_parked_again_not_sent_twice(
    placer, eprom, dead_letters, lambda_context
) -> None:
    order = order_message()
    eprom.config.rate_lost_answer, eprom.config.timeout_seconds = 1.0, 1.5  # ePROM creates it, the answer is lost
    redriven = sqs_event(order)
    redriven["Records"][0]["messageAttributes"] = {
        "rejectionClass": {"stringValue": "Ambiguous", "dataType": "String", "stringListValues": [],
                           "binaryListValues": []}
    }  # fmt: skip
    assert placer.lambda_handler(redriven, lambda_context) == {"batchItemFailures": []}
    assert len(eprom.order_headers) == 1  # one attempt, then parked again
    [dead] = dead_letters.messages()
    assert dead["MessageAttributes"]["rejectionClass"]["StringValue"] == "Ambiguous"


@pytest.mark.parametrize(
    ("extra", "where"),
    [({"01039494104": "x"}, "at the top level"), ({"physicalAddress": {"01039494104": "x"}}, "in physicalAddress")],
)
def test_an_unknown_key_that_is_a_national_id_goes_nowhere(
    extra, where, placer, eprom, dead_letters, outcome_events, lambda_context, captured_output
) -> None:
    """Key names are input: the refusal says where the unknown field is, in the DLQ attribute, the
    FormOrderRefused event and the log, and never what it is called."""
    order = order_message(**extra)
    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    [dead] = dead_letters.messages()
    reason = dead["MessageAttributes"]["rejectionReason"]["StringValue"]
    assert f"an unknown field {where}" in reason
    [event] = outcome_events.received()
    assert event["detailType"] == "FormOrderRefused" and event["rejectionReason"] == reason
    [logged] = [record for record in captured_output.log_records() if record["message"] == "message refused"]
    assert logged["rejection_reason"] == reason
    for text in (reason, json.dumps(event), captured_output.text()):
        assert "01039494104" not in text


def fingerprint_key(aws: dict[str, str]) -> bytes:
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=aws["ORDER_FINGERPRINT_SECRET_ID"])
    return secret["SecretString"].encode()


def test_the_fingerprint_is_keyed_so_it_cannot_be_reversed_to_the_national_id(
    placer, eprom, aws, orders_table, lambda_context
) -> None:
    """A plain SHA-256 of the order gave the national id back by trying the candidates of one birth year."""
    import hashlib
    import hmac

    from eprom.contracts import OrderMessage

    order = order_message()
    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    [item] = items_for(orders_table, order["orderReference"])
    content = OrderMessage.model_validate_json(json.dumps(order)).model_dump_json(by_alias=True).encode()
    assert (
        item["orderFingerprint"] == "hmac-sha256:" + hmac.new(fingerprint_key(aws), content, hashlib.sha256).hexdigest()
    )
    assert hashlib.sha256(content).hexdigest() not in item["orderFingerprint"]


def record_earlier_order(aws: dict[str, str], order: dict[str, Any], fingerprint: str) -> str:
    """An item an earlier message of this orderReference made, its idempotency record long expired."""
    from eprom.order_store import OrderStore
    from eprom.orders import OrderAnswer

    form_order_id = str(uuid.uuid4())
    OrderStore(aws["FORM_ORDERS_TABLE"], retention_days=1).record_placed(
        form_order_id, order_reference=order["orderReference"], order_fingerprint=fingerprint, form_id=FORM_ID,
        response=OrderAnswer(id=uuid.UUID(form_order_id)), order_expiry=datetime(2099, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    wait_until_indexed(order["orderReference"], aws["FORM_ORDERS_TABLE"])
    return form_order_id


@pytest.mark.slow
def test_a_resend_after_the_idempotency_window_is_told_apart_by_the_keyed_fingerprint(
    placer, eprom, aws, dead_letters, lambda_context
) -> None:
    from eprom.orders import read_order
    from place_order.placing import order_fingerprint

    def fingerprint(order: dict[str, Any]) -> str:
        read = read_order(json.dumps(order), allow_synthetic_national_ids=False, allow_test_mode_orders=False)
        return order_fingerprint(read, fingerprint_key(aws))

    same = order_message()
    record_earlier_order(aws, same, fingerprint(same))
    assert placer.lambda_handler(sqs_event(same), lambda_context) == {"batchItemFailures": []}
    assert eprom.order_requests == [] and dead_letters.messages() == []  # the same order again: nothing to do

    reused = order_message()
    record_earlier_order(aws, reused, fingerprint(reused | {"nationalId": "01039494104"}))
    assert placer.lambda_handler(sqs_event(reused), lambda_context) == {"batchItemFailures": []}
    [dead] = dead_letters.messages()
    assert dead["MessageAttributes"]["rejectionClass"]["StringValue"] == "ReusedOrderReference"
    assert eprom.order_requests == []


@pytest.mark.slow
def test_an_unkeyed_fingerprint_of_an_older_version_is_unknown_never_a_reuse(
    placer, eprom, aws, dead_letters, lambda_context
) -> None:
    """Items written before the fingerprint was keyed hold a bare SHA-256 hex digest: it cannot be compared, so
    a resend is taken as the same order (never placed again, and not refused as a reuse it may not be)."""
    order = order_message()
    record_earlier_order(aws, order, "9f" * 32)
    assert placer.lambda_handler(sqs_event(order), lambda_context) == {"batchItemFailures": []}
    assert eprom.order_requests == []
    assert dead_letters.messages() == []


# --- anything that fails while reading our input is an invalid message, at once ------------------------------------


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")  # the repr of a 100 kB body
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=ANY_INPUT)
def test_any_input_is_placed_or_refused_as_invalid_never_retried(
    body: str, placer, eprom, dead_letters, lambda_context
) -> None:
    """A failure while reading the message is the message's: `"[" * 50000` in metadata raised RecursionError, which
    was retried for a day as if ePROM were down (OrdersFailingAlarm), then parked as RetriesExhausted."""
    response = placer.lambda_handler(sqs_event(body), lambda_context)
    assert response == {"batchItemFailures": []}  # never left on the queue for a retry
    letters = dead_letters.messages()
    if letters:  # refused: as invalid, unless it was an order ePROM itself judged
        [dead] = letters
        assert dead["Body"] == body
        assert dead["MessageAttributes"]["rejectionClass"]["StringValue"] in ("InvalidMessage", "RefusedByEprom")


def test_metadata_nested_too_deep_is_an_invalid_message(placer, eprom, dead_letters, lambda_context) -> None:
    body = json.dumps(order_message(metadata="[" * DEEP + "]" * DEEP))
    assert placer.lambda_handler(sqs_event(body), lambda_context) == {"batchItemFailures": []}
    [dead] = dead_letters.messages()
    assert dead["MessageAttributes"]["rejectionClass"]["StringValue"] == "InvalidMessage"
    assert dead["MessageAttributes"]["rejectionReason"]["StringValue"] == (
        "invalid order message: metadata: JSON in metadata is not valid: nested too deep"
    )
    assert eprom.order_requests == []


# --- upstream's own message attributes stay with the message -------------------------------------------------------

UPSTREAM_ATTRIBUTES = {
    "traceId": {"DataType": "String", "StringValue": "trace-1"},
    "priority": {"DataType": "Number", "StringValue": "3"},
    "signature": {"DataType": "Binary", "BinaryValue": b"\x00\xffsig"},
    "source": {"DataType": "String.system", "StringValue": "registry-a"},
}


def received_order(aws: dict[str, str], body: str, attributes: dict[str, Any]) -> dict[str, Any]:
    """The message sent to OrderQueue with `attributes` and received as Lambda's event source receives it."""
    sqs, url = boto3.client("sqs"), aws["ORDER_QUEUE_URL"]
    DeadLetters(url).messages()  # drained of what earlier tests left
    sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)
    [message] = sqs.receive_message(QueueUrl=url, AttributeNames=["All"], MessageAttributeNames=["All"],
                                    WaitTimeSeconds=1)["Messages"]  # fmt: skip
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"Records": [lambda_record(message, arn)]}


def test_a_refused_message_keeps_upstreams_own_attributes(placer, eprom, aws, dead_letters, lambda_context) -> None:
    """A trace id upstream sent with the order was dropped when the message was dead-lettered."""
    event = received_order(aws, json.dumps(order_message(formId=UNPUBLISHED_FORM_ID)), UPSTREAM_ATTRIBUTES)
    assert placer.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    [dead] = dead_letters.messages()
    attributes = dead["MessageAttributes"]
    assert {name: attributes[name] for name in UPSTREAM_ATTRIBUTES} == UPSTREAM_ATTRIBUTES
    assert attributes["rejectionClass"]["StringValue"] == "RefusedByEprom"


def test_a_message_with_ten_attributes_of_its_own_is_dead_lettered_with_ours(
    placer, eprom, aws, dead_letters, lambda_context
) -> None:
    """SQS takes 10 attributes: ours (the reason and class) go first, upstream's fill the rest, and the reason says
    how many were left out (never their names: key names are input)."""
    own = {f"upstream{n:02d}": {"DataType": "String", "StringValue": str(n)} for n in range(10)}
    event = received_order(aws, "{not json", own)
    assert placer.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    [dead] = dead_letters.messages()
    attributes = dead["MessageAttributes"]
    assert len(attributes) == 10 and attributes["rejectionClass"]["StringValue"] == "InvalidMessage"
    assert sorted(attributes.keys() - {"rejectionClass", "rejectionReason"}) == sorted(own)[:8]
    assert attributes["rejectionReason"]["StringValue"].endswith(
        " (2 of the message's own 10 attributes left out: SQS takes 10)"
    )
