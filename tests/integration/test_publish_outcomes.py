"""PublishOutcomesFunction on real stream records of moto's FormOrdersTable, to a real EventBridge bus whose rule
copies every event to OutcomeQueue (read as upstream reads it)."""

import hashlib
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from conftest import EVENTS, failed_ids, order_message, sqs_event
from eprom.models import EpromCallback
from eprom.order_store import MAX_HISTORY_ENTRIES, OrderStore
from eprom.orders import read_order_answer
from eprom.results_store import ResultsStore

from local.aws_resources import create_outcome_bus
from local.eprom_simulator import signed_pdf
from local.stream_poller import lambda_record

SIGNED_FORM_ID = "5b1c3d2e-7f8a-4b9c-8d0e-1f2a3b4c5d6e"


@pytest.fixture
def store(aws: dict[str, str]) -> OrderStore:
    return OrderStore(aws["FORM_ORDERS_TABLE"])


def stream_records(
    aws: dict[str, str], form_order_id: str, *, table: str = "FORM_ORDERS_TABLE", key: str = "formOrderId"
) -> list[dict[str, Any]]:
    """This item's records of the table's stream (FormOrdersTable's, or `table`'s item whose `key` is `form_order_id`),
    as Lambda's event source hands them to the function."""
    streams = boto3.client("dynamodbstreams")
    arn = boto3.client("dynamodb").describe_table(TableName=aws[table])["Table"]["LatestStreamArn"]
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            answer = streams.get_records(ShardIterator=iterator, Limit=1000)
            records += answer["Records"]
            iterator = answer.get("NextShardIterator") if answer["Records"] else None
    return [lambda_record(record, arn) for record in records if record["dynamodb"]["Keys"][key]["S"] == form_order_id]


def a_whole_order(store: OrderStore, results: ResultsStore, *, signed: bool = False) -> str:
    form_order_id, reference = str(uuid.uuid4()), f"ref-{uuid.uuid4()}"
    response = read_order_answer(
        json.dumps(
            {
                "id": form_order_id,
                "loginUrl": "https://x/login",
                "notificationChannel": "None",
                "singleUseCode": "87654321",
            }
        )
    )
    store.record_placed(form_order_id, order_reference=reference, order_fingerprint="f", form_id="form-1",
                        response=response, order_expiry=datetime(2099, 1, 1, tzinfo=UTC))  # fmt: skip
    store.apply_callback(EpromCallback.model_validate({"formOrderId": form_order_id, "formOrderStatus": "Ordered",
                                                       "notificationChannel": 1}))  # fmt: skip
    form_return = {"formOrderId": form_order_id, "formOrderStatus": "Completed", "formData": '{"q": "hemmelig"}',
                   "signedFormId": SIGNED_FORM_ID if signed else str(uuid.UUID(int=0))}  # fmt: skip
    answers = results.put_answers(form_order_id, json.dumps(form_return).encode())
    store.apply_callback(EpromCallback.model_validate(form_return), answers=answers)
    return form_order_id


@pytest.mark.slow
def test_every_change_of_an_order_is_one_documented_event(publisher, store, aws, outcome_events, lambda_context):
    results = ResultsStore(aws["FORM_RESULTS_BUCKET"])
    form_order_id = a_whole_order(store, results)
    records = stream_records(aws, form_order_id)

    assert publisher.lambda_handler({"Records": records}, lambda_context) == {"batchItemFailures": []}
    events = outcome_events.received()
    assert [event["detailType"] for event in events] == [
        "FormOrderPlaced", "FormOrderStatusChanged", "FormOrderStatusChanged", "FormReturned",
    ]  # fmt: skip
    placed, ordered, completed, returned = events
    assert {event["source"] for event in events} == {"eprom.integration"}
    assert all(event["formOrderId"] == form_order_id and event["orderReference"] for event in events)
    assert placed["singleUseCode"] == "87654321" and placed["formId"] == "form-1" and placed["statusRank"] == 0
    assert (ordered["status"], ordered["previousStatus"], ordered["notificationChannel"]) == (
        "Ordered", "Placed", "Helsenorge"
    )  # fmt: skip
    assert (completed["status"], completed["statusRank"]) == ("Completed", 4)
    answers = returned["answers"]
    assert answers["bucket"] == aws["FORM_RESULTS_BUCKET"] and answers["key"] == f"answers/{form_order_id}.json"
    assert {"versionId", "sha256", "bytes"} <= set(answers)
    assert returned["signedDocumentExpected"] is False and returned["isPatientInitiated"] is False
    assert "hemmelig" not in json.dumps(events)  # no answers in events

    # The same records again (a retry): the same events, the same ids and content.
    assert publisher.lambda_handler({"Records": records}, lambda_context) == {"batchItemFailures": []}
    assert outcome_events.received() == events


@pytest.mark.slow
def test_a_signed_form_return_makes_a_signed_document_job(publisher, store, aws, outcome_events, lambda_context):
    form_order_id = a_whole_order(store, ResultsStore(aws["FORM_RESULTS_BUCKET"]), signed=True)
    assert (
        publisher.lambda_handler({"Records": stream_records(aws, form_order_id)}, lambda_context)["batchItemFailures"]
        == []
    )
    [returned] = [event for event in outcome_events.received() if event["detailType"] == "FormReturned"]
    assert returned["signedDocumentExpected"] is True
    jobs = [json.loads(message["Body"]) for message in _drain(aws["SIGNED_DOCUMENT_QUEUE_URL"])]
    assert {"formOrderId": form_order_id, "signedFormId": SIGNED_FORM_ID} in jobs


@pytest.mark.slow
def test_records_that_cannot_be_published_are_reported_for_retry(publisher, store, aws, lambda_context) -> None:
    form_order_id = a_whole_order(store, ResultsStore(aws["FORM_RESULTS_BUCKET"]))
    records = stream_records(aws, form_order_id)
    with outcome_bus_unavailable(aws):
        response = publisher.lambda_handler({"Records": records}, lambda_context)
    assert response["batchItemFailures"]  # the event source retries them (bisecting, then its destination)
    assert {failure["itemIdentifier"] for failure in response["batchItemFailures"]} <= {
        record["dynamodb"]["SequenceNumber"] for record in records
    }


def test_a_refusal_is_an_event_before_it_is_a_dead_letter(placer, eprom, dead_letters, outcome_events, lambda_context):
    order = order_message(nationalId="15499923810")  # an H-nummer
    event = sqs_event(order)
    assert placer.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    [refused] = outcome_events.received()
    assert refused["detailType"] == "FormOrderRefused"
    assert (refused["orderReference"], refused["formOrderId"]) == (order["orderReference"], None)
    assert refused["rejectionClass"] == "InvalidMessage" and "H-nummer" in refused["rejectionReason"]
    assert refused["status"] == "Refused" and refused["statusRank"] == -1
    assert "15499923810" not in json.dumps(refused)
    assert len(dead_letters.messages()) == 1


def test_an_invalid_order_reference_is_not_named_in_the_event(placer, eprom, dead_letters, outcome_events,
                                                               lambda_context):  # fmt: skip
    placer.lambda_handler(sqs_event(order_message(orderReference="pasient-26073941651")), lambda_context)
    [refused] = outcome_events.received()
    assert refused["orderReference"] is None and "26073941651" not in json.dumps(refused)


def test_a_refusal_whose_event_cannot_be_put_is_retried_not_dead_lettered(
    placer, eprom, dead_letters, aws, lambda_context
) -> None:
    event = sqs_event(order_message(nationalId="15499923810"))
    with outcome_bus_unavailable(aws):
        response = placer.lambda_handler(event, lambda_context)
    assert failed_ids(response) == {event["Records"][0]["messageId"]}
    assert dead_letters.messages() == []


@contextmanager
def outcome_bus_unavailable(aws: dict[str, str]) -> Iterator[None]:
    events, sqs = boto3.client("events"), boto3.client("sqs")
    events.remove_targets(Rule=f"{aws['OUTCOME_BUS_NAME']}-OutcomeQueueRule", EventBusName=aws["OUTCOME_BUS_NAME"],
                          Ids=["OutcomeQueue"])  # fmt: skip
    events.delete_rule(Name=f"{aws['OUTCOME_BUS_NAME']}-OutcomeQueueRule", EventBusName=aws["OUTCOME_BUS_NAME"])
    events.delete_event_bus(Name=aws["OUTCOME_BUS_NAME"])
    try:
        yield
    finally:
        queue_arn = sqs.get_queue_attributes(QueueUrl=aws["OUTCOME_QUEUE_URL"], AttributeNames=["QueueArn"])
        create_outcome_bus(aws["OUTCOME_BUS_NAME"], queue_arn["Attributes"]["QueueArn"])


def _drain(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    found = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        found += batch
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def test_the_sample_stream_event_in_events_publishes_what_it_says(publisher, outcome_events, lambda_context) -> None:
    event = json.loads((EVENTS / "publish-outcomes-stream.json").read_text())
    assert publisher.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert sorted(event["detailType"] for event in outcome_events.received()) == [
        "FormOrderStatusChanged", "FormReturned",
    ]  # fmt: skip


def form_return(form_order_id: str, template: str = "callback-completed.json", **fields: Any) -> dict[str, Any]:
    """A callback from events/ for this form order, with fields changed."""
    event = json.loads((EVENTS / template).read_text())
    event["body"] = json.dumps(json.loads(event["body"]) | {"formOrderId": form_order_id} | fields)
    return event


def returned_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in events if event["detailType"] == "FormReturned"]


@pytest.mark.slow
def test_returns_a_b_a_are_two_versions_each_announced_once(
    callback_app, publisher, aws, outcome_events, lambda_context
) -> None:
    form_order_id = str(uuid.uuid4())
    a, b = form_return(form_order_id, formData='{"q": "A"}'), form_return(form_order_id, formData='{"q": "B"}')
    for event in (a, b, a):  # the third is a replay of the first version, not the latest
        assert callback_app.lambda_handler(event, lambda_context)["statusCode"] == 200

    s3 = boto3.client("s3")
    key = f"answers/{form_order_id}.json"
    versions = s3.list_object_versions(Bucket=aws["FORM_RESULTS_BUCKET"], Prefix=key)["Versions"]
    assert len(versions) == 2
    records = stream_records(aws, form_order_id)
    assert publisher.lambda_handler({"Records": records}, lambda_context) == {"batchItemFailures": []}
    events = outcome_events.received()
    returned = returned_events(events)
    assert sorted(event["answers"]["versionId"] for event in returned) == sorted(v["VersionId"] for v in versions)
    answers_by_version = {}
    for event in returned:
        pointer = event["answers"]
        body = s3.get_object(Bucket=pointer["bucket"], Key=pointer["key"], VersionId=pointer["versionId"])["Body"]
        document = body.read()
        assert (len(document), hashlib.sha256(document).hexdigest()) == (pointer["bytes"], pointer["sha256"])
        answers_by_version[pointer["versionId"]] = json.loads(document)["formData"]
    assert sorted(answers_by_version.values()) == ['{"q": "A"}', '{"q": "B"}']
    assert len({event["eventId"] for event in returned}) == 2

    # The stream records again (a retry): the same events, ids and content
    assert publisher.lambda_handler({"Records": records}, lambda_context) == {"batchItemFailures": []}
    assert outcome_events.received() == events


@pytest.mark.slow
def test_a_different_return_after_completed_is_announced_with_its_version(
    callback_app, publisher, aws, outcome_events, lambda_context
) -> None:
    form_order_id = str(uuid.uuid4())
    expired = form_return(form_order_id, "callback-ordered.json", formOrderStatus="Expired")
    a, b = form_return(form_order_id, formData='{"q": "A"}'), form_return(form_order_id, formData='{"q": "B"}')
    for event in (expired, a, b):
        assert callback_app.lambda_handler(event, lambda_context)["statusCode"] == 200
    records = stream_records(aws, form_order_id)
    assert publisher.lambda_handler({"Records": records}, lambda_context) == {"batchItemFailures": []}
    events = outcome_events.received()
    assert [event["detailType"] for event in events] == [
        "FormOrderStatusChanged", "FormOrderStatusChanged", "FormReturned", "FormReturned",
    ]  # fmt: skip
    first, later = returned_events(events)
    item = boto3.resource("dynamodb").Table(aws["FORM_ORDERS_TABLE"]).get_item(Key={"formOrderId": form_order_id})
    assert first["answers"]["versionId"] == item["Item"]["answers"]["versionId"]  # the pointer stays on the first
    assert later["answers"]["versionId"] == item["Item"]["statusHistory"][-1]["answersVersionId"]
    assert later["answers"]["versionId"] != first["answers"]["versionId"]
    assert (later["status"], later["formOrderId"]) == ("Completed", form_order_id)
    assert later["occurredAt"] == item["Item"]["statusHistory"][-1]["receivedAt"]
    assert "hemmelig" not in json.dumps(events) and '"q"' not in json.dumps(events)


def test_a_repeated_refusal_is_the_same_event_with_the_same_content(
    placer, eprom, dead_letters, outcome_events, lambda_context
) -> None:
    event = sqs_event(order_message(nationalId="15499923810"), sent_seconds_ago=30)
    for _ in range(2):  # the same message again, as when its dead-lettering failed after the event was put
        assert placer.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    first, again = outcome_events.received()
    assert first == again
    sent_at = datetime.fromtimestamp(int(event["Records"][0]["attributes"]["SentTimestamp"]) / 1000, UTC)
    assert datetime.fromisoformat(first["occurredAt"]) == sent_at


@pytest.mark.slow
def test_a_different_return_is_announced_however_full_the_history_is(
    callback_app, publisher, aws, outcome_events, lambda_context
) -> None:
    """After 49 Ordered callbacks, returns A and then B: B was stored and acknowledged, but the history (50 entries at
    most) had no room for the entry the publisher announces a later return by, and no FormReturned came for it."""
    form_order_id = str(uuid.uuid4())
    for second in range(MAX_HISTORY_ENTRIES - 1):
        ordered = form_return(form_order_id, "callback-ordered.json",
                              timestampUtc=f"2026-01-01T10:00:{second:02d}Z")  # fmt: skip
        assert callback_app.lambda_handler(ordered, lambda_context)["statusCode"] == 200
    for answer in ("A", "B"):
        event = form_return(form_order_id, formData=json.dumps({"q": answer}))
        assert callback_app.lambda_handler(event, lambda_context)["statusCode"] == 200
    assert publisher.lambda_handler({"Records": stream_records(aws, form_order_id)}, lambda_context) == {
        "batchItemFailures": []
    }
    versions = boto3.client("s3").list_object_versions(Bucket=aws["FORM_RESULTS_BUCKET"],
                                                       Prefix=f"answers/{form_order_id}.json")["Versions"]  # fmt: skip
    returned = returned_events(outcome_events.received())
    assert sorted(event["answers"]["versionId"] for event in returned) == sorted(v["VersionId"] for v in versions)
    assert len(returned) == 2


@pytest.mark.slow
def test_a_later_return_with_another_signed_form_id_gets_its_document(
    callback_app, publisher, fetcher, eprom, aws, outcome_events, lambda_context
) -> None:
    """Its FormReturned said signedDocumentExpected, but its job asked for the first return's document again (already
    stored): the later one was never fetched."""
    form_order_id, first_signed, later_signed = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    for signed_form_id, answer in ((first_signed, "A"), (later_signed, "B")):
        eprom.documents[signed_form_id] = (0.0, signed_pdf(signed_form_id, 30_000))
        event = form_return(form_order_id, formData=json.dumps({"q": answer}), signedFormId=signed_form_id)
        assert callback_app.lambda_handler(event, lambda_context)["statusCode"] == 200
    assert publisher.lambda_handler({"Records": stream_records(aws, form_order_id)}, lambda_context) == {
        "batchItemFailures": []
    }
    returned = returned_events(outcome_events.received())
    assert [event["signedDocumentExpected"] for event in returned] == [True, True]
    jobs = [job for job in (m["Body"] for m in _drain(aws["SIGNED_DOCUMENT_QUEUE_URL"])) if form_order_id in job]
    assert sorted(json.loads(job)["signedFormId"] for job in jobs) == sorted([first_signed, later_signed])

    assert fetcher.lambda_handler(sqs_event(*jobs), lambda_context) == {"batchItemFailures": []}
    assert eprom.document_requests[first_signed] == eprom.document_requests[later_signed] == 1
    item = boto3.resource("dynamodb").Table(aws["FORM_ORDERS_TABLE"]).get_item(Key={"formOrderId": form_order_id},
                                                                              ConsistentRead=True)["Item"]  # fmt: skip
    documents = [item["signedDocument"], *item["laterSignedDocuments"]]
    s3 = boto3.client("s3")
    stored = {s3.get_object(Bucket=aws["FORM_RESULTS_BUCKET"], Key=document["key"],
                            VersionId=document["versionId"])["Body"].read() for document in documents}  # fmt: skip
    assert stored == {eprom.documents[first_signed][1], eprom.documents[later_signed][1]}

    records = stream_records(aws, form_order_id)
    assert publisher.lambda_handler({"Records": records}, lambda_context) == {"batchItemFailures": []}
    stored_events = [event for event in outcome_events.received() if event["detailType"] == "SignedDocumentStored"]
    assert sorted(event["document"]["versionId"] for event in stored_events) == sorted(
        document["versionId"] for document in documents
    )
