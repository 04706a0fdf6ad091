"""FetchSignedDocumentFunction: SQS jobs -> the ePROM simulator's ExternalDocument (HTTP) -> moto S3 and DynamoDB."""

import hashlib
import json
import threading
import time
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from conftest import API_KEY, failed_ids, sqs_event

from local import iam
from local.eprom_simulator import signed_pdf
from local.lambda_runtime import LambdaContext


@pytest.fixture
def document_dead_letters(aws: dict[str, str]) -> Any:
    from conftest import DeadLetters

    queue = DeadLetters(aws["SIGNED_DOCUMENT_DEAD_LETTER_QUEUE_URL"])
    queue.messages()
    return queue


def item(orders_table: Any, form_order_id: str) -> dict[str, Any]:
    return orders_table.get_item(Key={"formOrderId": form_order_id}, ConsistentRead=True)["Item"]


def test_the_signed_pdf_is_stored_beside_the_answers(fetcher, eprom, signed_order, orders_table, aws, lambda_context):
    assert fetcher.lambda_handler(sqs_event(signed_order), lambda_context) == {"batchItemFailures": []}
    document = item(orders_table, signed_order["formOrderId"])["signedDocument"]
    assert document["key"] == f"signed/{signed_order['formOrderId']}.pdf"
    pdf = boto3.client("s3").get_object(Bucket=aws["FORM_RESULTS_BUCKET"], Key=document["key"])["Body"].read()
    assert pdf == eprom.documents[signed_order["signedFormId"]][1] and pdf.startswith(b"%PDF-")
    assert document["sha256"] == hashlib.sha256(pdf).hexdigest() and document["bytes"] == len(pdf)
    assert eprom.order_headers == []  # only the document was asked for
    assert eprom.document_requests[signed_order["signedFormId"]] == 1


def test_a_redelivered_job_does_not_download_again(fetcher, eprom, signed_order, orders_table, lambda_context):
    for _ in range(3):
        assert fetcher.lambda_handler(sqs_event(signed_order), lambda_context) == {"batchItemFailures": []}
    assert eprom.document_requests[signed_order["signedFormId"]] == 1
    assert item(orders_table, signed_order["formOrderId"])["signedDocument"]


def test_the_document_request_carries_the_raw_key(fetcher, eprom, signed_order, lambda_context) -> None:
    eprom.config.api_key = "rotated"  # ePROM no longer takes our key: 401, retried, never stored
    event = sqs_event(signed_order)
    assert failed_ids(fetcher.lambda_handler(event, lambda_context)) == {event["Records"][0]["messageId"]}
    eprom.config.api_key = API_KEY
    assert fetcher.lambda_handler(event, lambda_context) == {"batchItemFailures": []}


@pytest.mark.parametrize("fault", ["not ready", "500"])
def test_a_document_not_ready_or_failing_is_fetched_again_later(
    fault, fetcher, eprom, signed_order, orders_table, document_dead_letters, lambda_context
) -> None:
    ready_at, pdf = eprom.documents[signed_order["signedFormId"]]
    if fault == "500":
        eprom.config.rate_document_500 = 1.0
    else:
        eprom.documents[signed_order["signedFormId"]] = (time.monotonic() + 3600, pdf)
    event = sqs_event(signed_order)
    assert failed_ids(fetcher.lambda_handler(event, lambda_context)) == {event["Records"][0]["messageId"]}
    assert "signedDocument" not in item(orders_table, signed_order["formOrderId"])
    assert document_dead_letters.messages() == []

    eprom.config.rate_document_500 = 0.0
    eprom.documents[signed_order["signedFormId"]] = (ready_at, pdf)
    assert fetcher.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert item(orders_table, signed_order["formOrderId"])["signedDocument"]


@pytest.mark.parametrize(
    ("fault", "age_hours", "rejection_class", "reason"),
    [
        ("not found", 49, "DocumentNotFound", "ePROM has no document with that signedFormId (yet): still 404"),
        ("500", 7 * 24 + 1, "RetriesExhausted", "last error: ePROM answered HTTP 500 for the signed document"),
    ],
)
def test_a_job_gives_up_to_its_dead_letter_queue_with_a_reason(
    fault, age_hours, rejection_class, reason, fetcher, eprom, signed_order, document_dead_letters, lambda_context
) -> None:
    if fault == "500":
        eprom.config.rate_document_500 = 1.0
    else:
        del eprom.documents[signed_order["signedFormId"]]
    event = sqs_event(signed_order, sent_seconds_ago=age_hours * 3600)
    assert fetcher.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    [dead] = document_dead_letters.messages()
    assert json.loads(dead["Body"]) == signed_order
    assert dead["MessageAttributes"]["rejectionClass"]["StringValue"] == rejection_class
    assert reason in dead["MessageAttributes"]["rejectionReason"]["StringValue"]


def test_a_404_within_its_window_is_not_given_up(fetcher, eprom, signed_order, document_dead_letters, lambda_context):
    del eprom.documents[signed_order["signedFormId"]]
    event = sqs_event(signed_order, sent_seconds_ago=47 * 3600)
    assert failed_ids(fetcher.lambda_handler(event, lambda_context)) == {event["Records"][0]["messageId"]}
    assert document_dead_letters.messages() == []


def test_a_malformed_job_is_given_up_at_once(fetcher, document_dead_letters, lambda_context) -> None:
    assert fetcher.lambda_handler(sqs_event({"formOrderId": "x"}), lambda_context) == {"batchItemFailures": []}
    [dead] = document_dead_letters.messages()
    assert dead["MessageAttributes"]["rejectionClass"]["StringValue"] == "InvalidJob"


def test_a_document_that_cannot_be_stored_is_fetched_again_not_lost(
    fetcher, signed_order, orders_table, document_dead_letters, lambda_context
) -> None:
    event = sqs_event(signed_order)
    with iam.current().without("FetchSignedDocumentFunction", "s3:PutObject"):
        assert failed_ids(fetcher.lambda_handler(event, lambda_context)) == {event["Records"][0]["messageId"]}
    assert "signedDocument" not in item(orders_table, signed_order["formOrderId"])
    assert document_dead_letters.messages() == []
    assert fetcher.lambda_handler(event, lambda_context) == {"batchItemFailures": []}  # its next delivery
    assert item(orders_table, signed_order["formOrderId"])["signedDocument"]


def test_a_failure_that_repeats_past_the_retry_window_is_given_up_not_dropped(
    fetcher, signed_order, orders_table, document_dead_letters, lambda_context
) -> None:
    """With the backoff at its cap a job is received a few dozen times in SQS's 14-day retention, far from the
    queue's maxReceiveCount: the fetcher gives it up itself, or SQS would drop it."""
    event = sqs_event(signed_order, sent_seconds_ago=30 * 86400)
    with iam.current().without("FetchSignedDocumentFunction", "s3:PutObject"):
        assert fetcher.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    [dead] = document_dead_letters.messages()
    assert dead["Body"] == event["Records"][0]["body"]
    assert dead["MessageAttributes"]["rejectionClass"]["StringValue"] == "RetriesExhausted"
    assert dead["MessageAttributes"]["rejectionReason"]["StringValue"].endswith("last error: unexpected AccessDenied")
    assert "signedDocument" not in item(orders_table, signed_order["formOrderId"])


def test_a_job_whose_item_is_gone_is_not_downloaded_and_ends(
    fetcher, eprom, signed_order, orders_table, aws, document_dead_letters, lambda_context
) -> None:
    """The item's retention (TTL) ended first: nothing to store the document for (it was downloaded and kept as an
    orphan past the retention); no item is made again."""
    orders_table.delete_item(Key={"formOrderId": signed_order["formOrderId"]})
    assert fetcher.lambda_handler(sqs_event(signed_order), lambda_context) == {"batchItemFailures": []}
    assert eprom.document_requests[signed_order["signedFormId"]] == 0
    assert stored_pdf(aws, signed_order["formOrderId"]) is None
    assert "Item" not in orders_table.get_item(Key={"formOrderId": signed_order["formOrderId"]}, ConsistentRead=True)
    assert document_dead_letters.messages() == []


def test_a_job_for_a_signed_form_id_its_order_never_had_is_given_up(
    fetcher, eprom, signed_order, orders_table, aws, document_dead_letters, lambda_context
) -> None:
    """One person's document must not be stored under another's order: the job's signedFormId must be one the
    order's own form returns carried."""
    other = str(uuid.uuid4())
    eprom.documents[other] = (0.0, signed_pdf(other, 20_000))
    job = signed_order | {"signedFormId": other}
    assert fetcher.lambda_handler(sqs_event(job), lambda_context) == {"batchItemFailures": []}
    assert eprom.document_requests[other] == 0
    assert stored_pdf(aws, signed_order["formOrderId"]) is None
    [dead] = document_dead_letters.messages()
    assert dead["MessageAttributes"]["rejectionClass"]["StringValue"] == "InvalidJob"
    assert "signedFormId" in dead["MessageAttributes"]["rejectionReason"]["StringValue"]


def stored_pdf(aws: dict[str, str], form_order_id: str) -> bytes | None:
    try:
        answer = boto3.client("s3").get_object(Bucket=aws["FORM_RESULTS_BUCKET"], Key=f"signed/{form_order_id}.pdf")
    except ClientError as error:
        # the local stack answers a missing key as S3 answers a caller without s3:ListBucket (local/aws_limits.py)
        assert error.response["Error"]["Code"] == "AccessDenied"
        return None
    return answer["Body"].read()


@pytest.mark.parametrize(
    "fault", ["truncated", "cut", "pdf_header_only", "not_pdf", "cut_at_revision", "chunked_cut", "trailing_eof"]
)
def test_only_a_whole_pdf_is_stored_and_anything_else_is_fetched_again(
    fault, fetcher, eprom, signed_order, orders_table, aws, document_dead_letters, lambda_context
) -> None:
    eprom.config.document_fault = fault
    event = sqs_event(signed_order)
    assert failed_ids(fetcher.lambda_handler(event, lambda_context)) == {event["Records"][0]["messageId"]}
    assert eprom.faults[f"document_{fault}"] == 1
    assert stored_pdf(aws, signed_order["formOrderId"]) is None
    assert "signedDocument" not in item(orders_table, signed_order["formOrderId"])
    assert document_dead_letters.messages() == []

    eprom.config.document_fault = None  # the next delivery gets the whole document
    assert fetcher.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert stored_pdf(aws, signed_order["formOrderId"]) == eprom.documents[signed_order["signedFormId"]][1]
    assert item(orders_table, signed_order["formOrderId"])["signedDocument"]


@pytest.mark.parametrize("fault", ["unannounced", "chunked"])
def test_a_whole_pdf_without_content_length_is_stored_when_its_framing_or_structure_proves_it(
    fault, fetcher, eprom, signed_order, aws, lambda_context
) -> None:
    """Chunked framing ends with its last chunk; a body that ends where the connection does must prove itself by its
    structure: its last startxref points at a cross-reference, and its signature covers it to its end."""
    eprom.config.document_fault = fault
    assert fetcher.lambda_handler(sqs_event(signed_order), lambda_context) == {"batchItemFailures": []}
    assert eprom.faults[f"document_{fault}"] == 1
    assert stored_pdf(aws, signed_order["formOrderId"]) == eprom.documents[signed_order["signedFormId"]][1]


def test_a_document_never_whole_is_given_up_after_the_retry_window(
    fetcher, eprom, signed_order, aws, document_dead_letters, lambda_context
) -> None:
    eprom.config.document_fault = "pdf_header_only"
    event = sqs_event(signed_order, sent_seconds_ago=(7 * 24 + 1) * 3600)
    assert fetcher.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    [dead] = document_dead_letters.messages()
    assert dead["MessageAttributes"]["rejectionClass"]["StringValue"] == "RetriesExhausted"
    assert (
        "not whole: 5 bytes that do not end with %%EOF" in dead["MessageAttributes"]["rejectionReason"]["StringValue"]
    )
    assert stored_pdf(aws, signed_order["formOrderId"]) is None


@pytest.mark.parametrize("fault", ["huge", "huge_unannounced"])
def test_a_document_above_the_size_limit_is_given_up_at_once(
    fault, fetcher, eprom, signed_order, orders_table, aws, document_dead_letters, lambda_context
) -> None:
    limit = fetcher.settings.signed_document_max_bytes
    eprom.config.document_fault, eprom.config.document_huge_bytes = fault, limit + 1
    assert fetcher.lambda_handler(sqs_event(signed_order), lambda_context) == {"batchItemFailures": []}
    [dead] = document_dead_letters.messages()
    assert json.loads(dead["Body"]) == signed_order
    assert dead["MessageAttributes"]["rejectionClass"]["StringValue"] == "DocumentTooLarge"
    reason = dead["MessageAttributes"]["rejectionReason"]["StringValue"]
    assert f"more than the limit of {limit}" in reason and "SignedDocumentMaxBytes" in reason
    assert stored_pdf(aws, signed_order["formOrderId"]) is None
    assert "signedDocument" not in item(orders_table, signed_order["formOrderId"])


@pytest.mark.parametrize("fault", ["huge", "huge_unannounced"])
def test_a_large_document_within_the_limit_is_streamed_whole(fault, fetcher, eprom, signed_order, aws, lambda_context):
    eprom.config.document_fault, eprom.config.document_huge_bytes = fault, fetcher.settings.signed_document_max_bytes
    assert fetcher.lambda_handler(sqs_event(signed_order), lambda_context) == {"batchItemFailures": []}
    expected = signed_pdf(signed_order["signedFormId"], fetcher.settings.signed_document_max_bytes)
    assert stored_pdf(aws, signed_order["formOrderId"]) == expected


@pytest.mark.slow
def test_a_document_too_slow_for_the_invocation_is_left_for_the_backoff(
    fetcher, eprom, signed_order, orders_table, aws, document_dead_letters
) -> None:
    """A byte every 10 ms never trips the 1 s read timeout; the invocation's time is what must bound the read."""
    eprom.config.document_fault, eprom.config.document_drip_seconds = "drip", 0.01
    context = LambdaContext("fetcher", timeout_seconds=fetcher.settings.document_time_reserve_seconds + 2)
    event = sqs_event(signed_order)
    outcome: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: outcome.update(fetcher.lambda_handler(event, context)), daemon=True)
    worker.start()
    worker.join(timeout=context.timeout_seconds + 30)  # generous: a hang is what the test is about
    assert not worker.is_alive(), "the fetcher was still reading when its invocation's time had run out"
    assert context.get_remaining_time_in_millis() > 0  # it returned before its time ran out
    assert failed_ids(outcome) == {event["Records"][0]["messageId"]}
    assert stored_pdf(aws, signed_order["formOrderId"]) is None
    assert "signedDocument" not in item(orders_table, signed_order["formOrderId"])
    assert document_dead_letters.messages() == []
