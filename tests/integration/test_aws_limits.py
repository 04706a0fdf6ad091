"""AWS's limits where moto has none (local/aws_limits.py, callback_front.py, lambda_runtime.py), and the code held
to them: S3's 403 for a missing key without s3:ListBucket, SQS's 12 h from the receive and message size,
EventBridge's entry size, DynamoDB's item size and eventually consistent GSIs, API Gateway's 10 MB and 29 s,
Lambda's 6 MB response."""

import hashlib
import io
import json
import math
import threading
import time
import uuid
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from conftest import API_KEY, CapturedOutput, DeadLetters
from eprom.order_store import ORDER_REFERENCE_INDEX
from eprom.queues import MAX_RETRY_DELAY_SECONDS, RECEIVE_MARGIN_SECONDS
from eprom.retrying_consumer import backoff_seconds
from fetch_signed_document.settings import FetcherSettings

from local.aws_resources import load_template
from local.callback_front import CallbackFront
from local.ports import MotoServer
from local.sqs_poller import lambda_record

TEMPLATE = load_template()


def error_code(error: ClientError) -> str:
    return error.response["Error"]["Code"]


# S3 (issue #18, item 2)


def test_a_read_of_a_missing_key_is_denied_as_s3_denies_a_role_without_list_bucket(aws) -> None:
    s3, bucket = boto3.client("s3"), aws["FORM_RESULTS_BUCKET"]
    with pytest.raises(ClientError) as head:
        s3.head_object(Bucket=bucket, Key=f"signed/{uuid.uuid4()}.pdf")
    with pytest.raises(ClientError) as get:
        s3.get_object(Bucket=bucket, Key=f"signed/{uuid.uuid4()}.pdf")
    assert (error_code(head.value), error_code(get.value)) == ("403", "AccessDenied")


@pytest.fixture
def signed_document_queue(aws) -> dict[str, str]:
    sqs, url = boto3.client("sqs"), aws["SIGNED_DOCUMENT_QUEUE_URL"]
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"url": url, "arn": arn}


def received_job(queue: dict[str, str], job: dict[str, str], receive_count: int = 1) -> dict[str, Any]:
    """The job sent to SignedDocumentQueue and received as Lambda's event source receives it."""
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=queue["url"], MessageBody=json.dumps(job))
    [message] = sqs.receive_message(QueueUrl=queue["url"], AttributeNames=["All"], WaitTimeSeconds=1)["Messages"]
    record = lambda_record(message, queue["arn"])
    record["attributes"]["ApproximateReceiveCount"] = str(receive_count)  # as on a later delivery
    return {"Records": [record]}


def versions(aws: dict[str, str], key: str) -> list[dict[str, Any]]:
    answer = boto3.client("s3").list_object_versions(Bucket=aws["FORM_RESULTS_BUCKET"], Prefix=key)
    return answer.get("Versions", [])


def test_a_signed_document_is_stored_although_a_missing_key_reads_as_403(
    fetcher, signed_order, signed_document_queue, orders_table, aws, lambda_context
) -> None:
    event = received_job(signed_document_queue, signed_order)
    assert fetcher.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    key = f"signed/{signed_order['formOrderId']}.pdf"
    item = orders_table.get_item(Key={"formOrderId": signed_order["formOrderId"]}, ConsistentRead=True)["Item"]
    assert item["signedDocument"]["key"] == key and len(versions(aws, key)) == 1


def test_a_pdf_stored_before_a_failure_is_not_stored_twice(
    fetcher, eprom, signed_order, signed_document_queue, orders_table, aws, lambda_context
) -> None:
    key, pdf = f"signed/{signed_order['formOrderId']}.pdf", eprom.documents[signed_order["signedFormId"]][1]
    # the job that then failed before it set the item
    sha256 = hashlib.sha256(pdf).hexdigest()
    results = fetcher.fetcher.results
    results.put_signed_document(signed_order["formOrderId"], io.BytesIO(pdf), sha256=sha256, size=len(pdf))
    event = received_job(signed_document_queue, signed_order, receive_count=2)
    assert fetcher.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    item = orders_table.get_item(Key={"formOrderId": signed_order["formOrderId"]}, ConsistentRead=True)["Item"]
    [version] = versions(aws, key)
    assert item["signedDocument"]["versionId"] == version["VersionId"]
    assert eprom.document_requests[signed_order["signedFormId"]] == 1


# SQS visibility (issue #18, item 4)


def test_sqs_refuses_a_visibility_ending_more_than_12_hours_after_the_receive(signed_document_queue) -> None:
    sqs, url = boto3.client("sqs"), signed_document_queue["url"]
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    [message] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    with pytest.raises(ClientError) as refused:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=43200)
    assert error_code(refused.value) == "InvalidParameterValue"
    assert "beyond the limit [43200 seconds]" in str(refused.value)
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=MAX_RETRY_DELAY_SECONDS
    )


def test_the_fetchers_longest_backoff_is_accepted_by_sqs(
    fetcher, eprom, signed_order, signed_document_queue, lambda_context, captured_output: CapturedOutput
) -> None:
    eprom.config.rate_document_500 = 1.0
    event = received_job(signed_document_queue, signed_order, receive_count=12)  # the backoff at its cap
    assert fetcher.lambda_handler(event, lambda_context)["batchItemFailures"]
    [retry] = [record for record in captured_output.log_records() if record["message"] == "message will be retried"]
    assert "could not set the retry delay" not in captured_output.text()  # SQS took it
    assert 0 < retry["retry_in_seconds"] <= MAX_RETRY_DELAY_SECONDS


def test_the_receive_margin_covers_every_queue_a_function_sets_visibility_on() -> None:
    # The receive was less than the queue's visibility timeout ago, else the receipt handle is of no use.
    for queue in ("OrderQueue", "SignedDocumentQueue"):
        assert TEMPLATE["Resources"][queue]["Properties"]["VisibilityTimeout"] <= RECEIVE_MARGIN_SECONDS, queue
    assert TEMPLATE["Parameters"]["OrderRetryMaxDelaySeconds"]["MaxValue"] <= MAX_RETRY_DELAY_SECONDS


def test_the_document_fetchers_windows_end_on_its_own_reason_not_on_the_redrive_safety_net() -> None:
    required = (
        "FORM_ORDERS_TABLE",
        "EPROM_API_KEY_SECRET_ID",
        "FORM_RESULTS_BUCKET",
        "SIGNED_DOCUMENT_DEAD_LETTER_QUEUE_URL",
    )
    settings = FetcherSettings.from_environment(dict.fromkeys(required, "x") | {"EPROM_API_BASE_URL": "https://x"})
    max_receives = TEMPLATE["Resources"]["SignedDocumentQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    window = settings.document_retry_window_hours * 3600
    elapsed, receives = 0.0, 1
    while elapsed < window:  # jitter only adds, so this is the most receives the window can take
        elapsed += min(
            settings.document_retry_max_delay_seconds, settings.document_retry_base_delay_seconds * 2 ** (receives - 1)
        )
        receives += 1
    assert receives < max_receives / 10
    assert backoff_seconds(receives, base=settings.document_retry_base_delay_seconds,
                           cap=settings.document_retry_max_delay_seconds) <= MAX_RETRY_DELAY_SECONDS  # fmt: skip


# SQS message size


def test_sqs_counts_bytes_and_attributes_in_a_message_size(aws) -> None:
    sqs, url = boto3.client("sqs"), aws["ORDER_QUEUE_URL"]
    largest = TEMPLATE["Resources"]["OrderQueue"]["Properties"]["MaximumMessageSize"]
    with pytest.raises(ClientError) as multibyte:
        sqs.send_message(QueueUrl=url, MessageBody="ø" * math.ceil(largest / 1.5))  # fewer characters than bytes
    attribute = {"note": {"DataType": "String", "StringValue": "x"}}
    with pytest.raises(ClientError) as with_attribute:
        sqs.send_message(QueueUrl=url, MessageBody="x" * largest, MessageAttributes=attribute)
    assert error_code(multibyte.value) == error_code(with_attribute.value) == "InvalidParameterValue"
    sqs.send_message(QueueUrl=url, MessageBody="x" * (largest - 20), MessageAttributes=attribute)
    sqs.purge_queue(QueueUrl=url)


def test_sqs_refuses_more_than_10_message_attributes(aws) -> None:
    """https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html"""
    sqs, url = boto3.client("sqs"), aws["DEAD_LETTER_QUEUE_URL"]
    attributes = {f"a{n}": {"DataType": "String", "StringValue": "x"} for n in range(11)}
    with pytest.raises(ClientError) as refused:
        sqs.send_message(QueueUrl=url, MessageBody="{}", MessageAttributes=attributes)
    assert error_code(refused.value) == "InvalidParameterValue"
    assert "Number of message attributes [11] exceeds the allowed maximum [10]" in str(refused.value)
    sqs.send_message(QueueUrl=url, MessageBody="{}", MessageAttributes=dict(list(attributes.items())[:10]))
    DeadLetters(url).messages()


# EventBridge and DynamoDB


def test_eventbridge_refuses_entries_over_256_kib(aws) -> None:
    entry = {"Source": "eprom-integration", "DetailType": "Test", "EventBusName": aws["OUTCOME_BUS_NAME"]}
    events = boto3.client("events")
    with pytest.raises(ClientError) as refused:
        events.put_events(Entries=[entry | {"Detail": json.dumps({"x": "y" * 262_144})}])
    assert error_code(refused.value) == "ValidationException"
    assert events.put_events(Entries=[entry | {"Detail": json.dumps({"x": "y" * 200_000})}])["FailedEntryCount"] == 0


def test_dynamodb_refuses_an_item_over_400_kb(aws) -> None:
    item = {"formOrderId": {"S": str(uuid.uuid4())}, "padding": {"S": "x" * 410_000}}
    with pytest.raises(ClientError) as refused:
        boto3.client("dynamodb").put_item(TableName=aws["FORM_ORDERS_TABLE"], Item=item)
    assert error_code(refused.value) == "ValidationException"


@pytest.mark.slow
def test_a_gsi_query_does_not_see_a_write_of_the_last_lag_seconds(aws) -> None:
    lagging = MotoServer().start()  # the same moto backends, behind limits of its own
    lagging.limits.gsi_lag_seconds = 1.0
    try:
        dynamodb = boto3.client("dynamodb", endpoint_url=lagging.url)
        form_order_id, reference = str(uuid.uuid4()), f"ref-{uuid.uuid4()}"
        item = {"formOrderId": {"S": form_order_id}, "orderReference": {"S": reference}}
        dynamodb.put_item(TableName=aws["FORM_ORDERS_TABLE"], Item=item)
        query = {
            "TableName": aws["FORM_ORDERS_TABLE"],
            "IndexName": ORDER_REFERENCE_INDEX,
            "KeyConditionExpression": "orderReference = :r",
            "ExpressionAttributeValues": {":r": {"S": reference}},
        }
        assert dynamodb.query(**query)["Items"] == []
        assert dynamodb.get_item(TableName=query["TableName"], Key={"formOrderId": {"S": form_order_id}},
                                 ConsistentRead=True)["Item"] == item  # fmt: skip
        deadline = time.monotonic() + 30
        while not (found := dynamodb.query(**query)["Items"]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [entry["formOrderId"]["S"] for entry in found] == [form_order_id]
    finally:
        lagging.stop()


def test_only_a_new_or_changed_index_key_lags_an_update_of_other_attributes_keeps_the_item_in_the_index(aws) -> None:
    """DynamoDB propagates an item to a GSI when its index key is written; an update of its other attributes leaves
    it where it is (the projected values catch up). The local stack hid the item for a second after any write:
    `eprom orders show` right after a callback said "no order with orderReference"."""
    lagging = MotoServer().start()  # the same moto backends, behind limits of its own
    lagging.limits.gsi_lag_seconds = 3600.0  # nothing written through it shows before the test ends
    try:
        dynamodb, table = boto3.client("dynamodb", endpoint_url=lagging.url), aws["FORM_ORDERS_TABLE"]
        form_order_id, reference = str(uuid.uuid4()), f"ref-{uuid.uuid4()}"
        key = {"formOrderId": {"S": form_order_id}}
        boto3.client("dynamodb").put_item(TableName=table, Item=key | {"orderReference": {"S": reference}})

        def indexed(order_reference: str) -> list[str]:
            answer = dynamodb.query(TableName=table, IndexName=ORDER_REFERENCE_INDEX,
                                    KeyConditionExpression="orderReference = :r",
                                    ExpressionAttributeValues={":r": {"S": order_reference}})  # fmt: skip
            return [item["formOrderId"]["S"] for item in answer["Items"]]

        assert indexed(reference) == [form_order_id]  # written long ago (not through the lagging server)
        dynamodb.update_item(TableName=table, Key=key, UpdateExpression="SET #s = :s",
                             ExpressionAttributeNames={"#s": "status"},
                             ExpressionAttributeValues={":s": {"S": "Ordered"}})  # fmt: skip
        assert indexed(reference) == [form_order_id]  # a callback's write: still there
        dynamodb.put_item(TableName=table, Item=key | {"orderReference": {"S": reference}, "status": {"S": "x"}})
        assert indexed(reference) == [form_order_id]  # written again with the same index key

        moved = f"ref-{uuid.uuid4()}"
        dynamodb.update_item(TableName=table, Key=key, UpdateExpression="SET orderReference = :r",
                             ExpressionAttributeValues={":r": {"S": moved}})  # fmt: skip
        assert indexed(moved) == []  # a changed index key lags
        other = str(uuid.uuid4())
        dynamodb.put_item(TableName=table, Item={"formOrderId": {"S": other}, "orderReference": {"S": reference}})
        assert indexed(reference) == []  # a new item lags
    finally:
        lagging.stop()


# API Gateway and Lambda (local/callback_front.py)


def test_api_gateway_refuses_a_body_over_10_mb_and_nothing_is_stored(callback_app, orders_table) -> None:
    form_order_id = str(uuid.uuid4())
    body = json.dumps({"formOrderId": form_order_id, "formOrderStatus": "Ordered", "pad": "x" * (10 * 1024 * 1024)})
    with CallbackFront(callback_app.lambda_handler) as front:
        answer = requests.put(f"{front.base_url}/api/PromsFormOrder", data=body, timeout=60)
    assert (answer.status_code, answer.json()) == (413, {"message": "Request Too Long"})
    assert "Item" not in orders_table.get_item(Key={"formOrderId": form_order_id}, ConsistentRead=True)


@pytest.mark.slow
def test_api_gateway_answers_504_when_the_integration_outlasts_its_timeout() -> None:
    release = threading.Event()

    def slow_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        release.wait(30)
        return {"statusCode": 200, "body": "late"}

    with CallbackFront(slow_handler) as front:
        front.integration_timeout_seconds = 0.5  # 29 s deployed: the same path, sooner
        answer = requests.put(f"{front.base_url}/api/PromsFormOrder", data="{}", timeout=30)
        release.set()
    assert (answer.status_code, answer.json()) == (504, {"message": "Endpoint request timed out"})


def test_an_event_over_lambdas_6_mb_never_reaches_the_function_and_api_gateway_answers_413() -> None:
    """API Gateway takes 10 MB of body, but the proxy event carries it escaped once more, and Lambda takes at most
    6,291,456 bytes of request (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html; the exact
    figure from Lambda's error, "Request must be smaller than 6291456 bytes"). Judged here by the event's size as the
    function receives it, counted by the test's own arithmetic: each further character of the body is one byte more."""
    sizes: list[int] = []

    def recording(event: dict[str, Any], context: Any) -> dict[str, Any]:
        sizes.append(len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()))
        return {"statusCode": 200, "body": "{}"}

    def put(letters: int) -> requests.Response:
        body = json.dumps({"formOrderId": str(uuid.uuid4()), "formData": "a" * letters})
        return requests.put(f"{front.base_url}/api/PromsFormOrder", data=body, timeout=60)

    with CallbackFront(recording) as front:
        assert put(4_000_000).status_code == 200  # as many digits in Content-Length as the ones below
        largest = 4_000_000 + 6_291_456 - sizes[-1]
        assert put(largest).status_code == 200 and sizes[-1] == 6_291_456
        refused = put(largest + 1)
    assert (refused.status_code, refused.json()) == (413, {"message": "Request Too Long"})
    assert len(sizes) == 2  # never invoked


def test_a_quote_heavy_form_return_of_4_mb_is_refused_413_and_nothing_is_stored(callback_app, orders_table) -> None:
    """4 MB of answers whose quotes the event escapes again make an 8 MB event: stored locally, lost on AWS."""
    form_order_id = str(uuid.uuid4())
    form_data = json.dumps({f"q{n}": '"svar"' for n in range(200_000)})
    body = json.dumps({"apiKey": API_KEY, "formOrderId": form_order_id, "formOrderStatus": "Completed",
                       "formData": form_data})  # fmt: skip
    assert 4_000_000 < len(body) < 10 * 1024 * 1024
    with CallbackFront(callback_app.lambda_handler) as front:
        answer = requests.put(f"{front.base_url}/api/PromsFormOrder", data=body, timeout=60)
    assert (answer.status_code, answer.json()) == (413, {"message": "Request Too Long"})
    assert "Item" not in orders_table.get_item(Key={"formOrderId": form_order_id}, ConsistentRead=True)


def test_a_function_response_over_6_mb_is_a_502() -> None:
    def large_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"statusCode": 200, "body": "x" * 6_300_000}

    with CallbackFront(large_handler) as front:
        answer = requests.put(f"{front.base_url}/api/PromsFormOrder", data="{}", timeout=30)
    assert (answer.status_code, answer.json()) == (502, {"message": "Internal server error"})
