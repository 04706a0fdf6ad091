"""A letter's fate: ePROM's PUT /api/MessageToCitizen through StatusCallbackFunction (REST proxy events) into
MessagesTable, and the events upstream gets from MessagesTable's stream through PublishOutcomesFunction."""

import json
import time
import uuid
from typing import Any

import boto3
import pytest
from conftest import EVENTS, PREVIOUS_API_KEY, letter_message, sms_message, sqs_event
from eprom.message_store import LINK_PREFIX, MessageStore
from test_publish_outcomes import stream_records as order_stream_records

from local import iam

HEMIT_EXAMPLE_ID = "184738d0-3c39-e611-9c2a-34e6d72e03c7"
UNREACHABLE = "20076833487"


def callback(message_to_citizen_id: str | None = None, **body: Any) -> dict[str, Any]:
    """events/callback-message-to-citizen.json (Hemit's example) for `message_to_citizen_id`, body fields changed."""
    event = json.loads((EVENTS / "callback-message-to-citizen.json").read_text())
    fields = json.loads(event["body"]) | {"messageToCitizenId": message_to_citizen_id or str(uuid.uuid4())} | body
    event["body"] = json.dumps({key: value for key, value in fields.items() if value is not None})
    return event


def put(callback_app: Any, event: dict[str, Any], context: Any) -> tuple[int, dict[str, Any]]:
    response = callback_app.lambda_handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def item(table: Any, key: str) -> dict[str, Any] | None:
    return table.get_item(Key={"messageReference": key}, ConsistentRead=True).get("Item")


def sent_letter(sender: Any, eprom: Any, aws: dict[str, str], context: Any, **changes: Any) -> tuple[str, str]:
    """A letter sent through the sender: (its messageReference, the messageToCitizenId ePROM gave it)."""
    letter = letter_message(aws, **changes)
    assert sender.lambda_handler(sqs_event(letter), context) == {"batchItemFailures": []}
    [taken] = eprom.messages_titled(letter["messageReference"])
    return letter["messageReference"], str(taken.message_to_citizen_id)


def test_hemits_documented_example_verbatim_is_kept_for_an_unknown_letter(
    callback_app, messages_table, lambda_context
) -> None:
    event = json.loads((EVENTS / "callback-message-to-citizen.json").read_text())
    assert put(callback_app, event, lambda_context) == (200, {"success": True})
    link = item(messages_table, LINK_PREFIX + HEMIT_EXAMPLE_ID)
    assert link["status"] == "Delivered"
    assert [entry["sentStatus"] for entry in link["statusHistory"]] == ["Sent"]
    assert "apiKey" not in json.dumps(link, default=str)


def test_a_letters_callback_moves_its_item_to_delivered_and_a_replay_changes_nothing(
    sender, callback_app, eprom, aws, messages_table, lambda_context
) -> None:
    reference, letter_id = sent_letter(sender, eprom, aws, lambda_context)
    for _ in range(3):  # ePROM sends again until acknowledged
        assert put(callback_app, callback(letter_id, notificationChannel=2), lambda_context) == (200, {"success": True})
    stored = item(messages_table, reference)
    assert (stored["status"], stored["notificationChannel"]) == ("Delivered", "DigitalMailbox")
    assert [(entry["sentStatus"], entry["notificationChannel"]) for entry in stored["statusHistory"]] == [
        ("Sent", "DigitalMailbox")
    ]


@pytest.mark.parametrize(
    ("body", "status", "history"),
    [
        ({"sentStatus": 1, "notificationChannel": 1}, "NotDelivered", ("Error", "Helsenorge")),
        ({"sentStatus": "Error", "notificationChannel": "Unsecure"}, "NotDelivered", ("Error", "Unsecure")),
        ({"sentStatus": "Sent", "notificationChannel": "Helsenorge"}, "Delivered", ("Sent", "Helsenorge")),  # 2021 docs
        ({"sentStatus": "0", "notificationChannel": "4"}, "Delivered", ("Sent", "PhysicalMailbox")),
        ({"sentStatus": 7}, "Accepted", ("7", "Helsenorge")),  # a status ePROM adds later: history only
    ],
)
def test_every_wire_form_of_a_letters_fate_is_stored(
    sender, callback_app, eprom, aws, messages_table, lambda_context, body, status, history
) -> None:
    reference, letter_id = sent_letter(sender, eprom, aws, lambda_context)
    assert put(callback_app, callback(letter_id, **body), lambda_context) == (200, {"success": True})
    stored = item(messages_table, reference)
    assert stored["status"] == status
    assert [(entry.get("sentStatus"), entry.get("notificationChannel")) for entry in stored["statusHistory"]] == [
        history
    ]


def test_the_fate_only_moves_forward_and_every_callback_is_kept(
    sender, callback_app, eprom, aws, messages_table, lambda_context
) -> None:
    reference, letter_id = sent_letter(sender, eprom, aws, lambda_context)
    put(callback_app, callback(letter_id, sentStatus=0, notificationChannel=1), lambda_context)
    put(callback_app, callback(letter_id, sentStatus=1, notificationChannel=1), lambda_context)
    stored = item(messages_table, reference)
    assert stored["status"] == "Delivered"  # NotDelivered has the same rank: the first fate stays
    assert [entry["sentStatus"] for entry in stored["statusHistory"]] == ["Sent", "Error"]


def test_a_callback_before_the_senders_write_reaches_the_item(
    sender, callback_app, eprom, aws, messages_table, lambda_context
) -> None:
    """ePROM may call back before (or just after) the sender has recorded its answer: the link keeps the callback,
    and the sender's link applies it. No index read decides anything (the local one lags, as DynamoDB's does)."""
    letter_id = str(uuid.uuid4())
    assert put(callback_app, callback(letter_id, notificationChannel=1), lambda_context) == (200, {"success": True})
    eprom.config.next_form_order_ids = [letter_id]
    reference, given = sent_letter(sender, eprom, aws, lambda_context)
    assert given == letter_id
    assert item(messages_table, reference)["status"] == "Delivered"


def test_a_callback_right_after_the_senders_write_reaches_the_item(
    sender, callback_app, eprom, aws, messages_table, lambda_context
) -> None:
    reference, letter_id = sent_letter(sender, eprom, aws, lambda_context)  # the index does not show it yet
    assert put(callback_app, callback(letter_id, notificationChannel=1), lambda_context) == (200, {"success": True})
    assert item(messages_table, reference)["status"] == "Delivered"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"apiKey": "wrong-key"}, 401),
        ({"apiKey": None}, 401),
        ({"messageToCitizenId": "not-a-guid"}, 400),
        ({"messageToCitizenId": None}, 400),
    ],
)
def test_a_callback_we_cannot_accept_writes_nothing(callback_app, aws, lambda_context, body, status) -> None:
    table = boto3.client("dynamodb")
    before = table.scan(TableName=aws["MESSAGES_TABLE"], Select="COUNT", ConsistentRead=True)["Count"]
    event = callback()
    event["body"] = json.dumps({key: value for key, value in (json.loads(event["body"]) | body).items()
                                if value is not None})  # fmt: skip
    code, reply = put(callback_app, event, lambda_context)
    assert (code, reply["success"]) == (status, False)
    assert "not-a-guid" not in json.dumps(reply) and "wrong-key" not in json.dumps(reply)
    assert table.scan(TableName=aws["MESSAGES_TABLE"], Select="COUNT", ConsistentRead=True)["Count"] == before


def test_the_previous_key_is_accepted_during_a_rotation(callback_app, messages_table, lambda_context) -> None:
    letter_id = str(uuid.uuid4())
    assert put(callback_app, callback(letter_id, apiKey=PREVIOUS_API_KEY), lambda_context)[0] == 200
    assert item(messages_table, LINK_PREFIX + letter_id)["status"] == "Delivered"


def test_the_trailing_slash_and_other_methods(callback_app, lambda_context) -> None:
    event = callback()
    event["path"] = "/api/MessageToCitizen/"
    assert put(callback_app, event, lambda_context) == (200, {"success": True})
    event["httpMethod"] = "GET"
    code, reply = put(callback_app, event, lambda_context)
    assert code == 405 and reply["success"] is False


def test_a_callback_that_cannot_be_stored_is_not_acknowledged(callback_app, aws, lambda_context) -> None:
    letter_id = str(uuid.uuid4())
    with iam.current().without("StatusCallbackFunction", "dynamodb:UpdateItem", "MessagesTable"):
        code, _ = put(callback_app, callback(letter_id), lambda_context)
    assert code >= 500
    assert item(boto3.resource("dynamodb").Table(aws["MESSAGES_TABLE"]), LINK_PREFIX + letter_id) is None


# --- events upstream gets ------------------------------------------------------------------------------------------


def stream_records(aws: dict[str, str], reference: str) -> list[dict[str, Any]]:
    """This item's records of MessagesTable's stream, as Lambda's event source hands them to the function."""
    return order_stream_records(aws, reference, table="MESSAGES_TABLE", key="messageReference")


def test_a_letters_life_is_announced_once_per_fact_without_personal_data(
    sender, callback_app, publisher, eprom, aws, outcome_events, lambda_context
) -> None:
    reference, letter_id = sent_letter(sender, eprom, aws, lambda_context)
    put(callback_app, callback(letter_id, notificationChannel=1), lambda_context)
    put(callback_app, callback(letter_id, notificationChannel=1), lambda_context)  # a replay
    records = stream_records(aws, reference)
    for _ in range(2):  # the event source delivers a batch again after a failure: the same events, the same ids
        assert publisher.lambda_handler({"Records": records}, lambda_context) == {"batchItemFailures": []}
    events = outcome_events.received()
    assert [event["detailType"] for event in events] == ["MessageAccepted", "MessageDelivered"] * 2
    accepted, delivered = events[:2]
    assert events[2:] == [accepted, delivered]
    assert (accepted["messageReference"], accepted["kind"], accepted["messageToCitizenId"]) == (
        reference, "letter", letter_id,
    )  # fmt: skip
    assert (accepted["status"], accepted["statusRank"]) == ("Accepted", 0)
    assert accepted["notificationChannel"] == "Helsenorge"
    assert (delivered["status"], delivered["statusRank"]) == ("Delivered", 1)
    assert "26073941651" not in json.dumps(events)


def test_an_sms_is_accepted_and_a_letter_to_no_channel_not_delivered(
    sender, publisher, eprom, aws, outcome_events, lambda_context
) -> None:
    sms = sms_message()
    letter = letter_message(aws, nationalId=UNREACHABLE)
    assert sender.lambda_handler(sqs_event(sms, letter), lambda_context) == {"batchItemFailures": []}
    records = stream_records(aws, sms["messageReference"]) + stream_records(aws, letter["messageReference"])
    assert publisher.lambda_handler({"Records": records}, lambda_context) == {"batchItemFailures": []}
    events = {event["messageReference"]: event for event in outcome_events.received()}
    assert events[sms["messageReference"]]["detailType"] == "MessageAccepted"
    assert events[sms["messageReference"]]["messageToCitizenId"] is None
    assert "+4791234567" not in json.dumps(events) and sms["text"] not in json.dumps(
        {k: v for k, v in events.items() if k != sms["messageReference"]}
    )
    not_delivered = events[letter["messageReference"]]
    assert (not_delivered["detailType"], not_delivered["status"], not_delivered["notificationChannel"]) == (
        "MessageNotDelivered", "NotDelivered", "None",
    )  # fmt: skip


def test_a_refused_message_is_announced_with_its_reason(sender, eprom, outcome_events, lambda_context) -> None:
    refused = sms_message(text="Gjelder 26073941651")
    assert sender.lambda_handler(sqs_event(refused), lambda_context) == {"batchItemFailures": []}
    [event] = outcome_events.received()
    assert (event["detailType"], event["rejectionClass"], event["status"], event["statusRank"]) == (
        "MessageRefused", "InvalidMessage", "Refused", -1,
    )  # fmt: skip
    assert event["messageReference"] == refused["messageReference"] and event["kind"] == "sms"
    assert "26073941651" not in json.dumps(event)


def test_a_link_item_is_never_announced(callback_app, publisher, aws, outcome_events, lambda_context) -> None:
    letter_id = str(uuid.uuid4())
    put(callback_app, callback(letter_id), lambda_context)
    records = stream_records(aws, LINK_PREFIX + letter_id)
    assert records and publisher.lambda_handler({"Records": records}, lambda_context) == {"batchItemFailures": []}
    assert outcome_events.received() == []


def test_the_store_finds_a_letter_by_its_id_for_people(sender, eprom, aws, lambda_context) -> None:
    reference, letter_id = sent_letter(sender, eprom, aws, lambda_context)
    store = MessageStore(aws["MESSAGES_TABLE"])
    found: list[str] = []
    for _ in range(100):  # the index lags behind the write (local/aws_limits.py), as DynamoDB's does
        if found := store.find_by_message_to_citizen_id(letter_id):
            break
        time.sleep(0.05)
    assert found == [reference]
