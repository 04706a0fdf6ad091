"""SendMessageFunction end to end: SQS event -> handler -> MessageDocumentsBucket (moto S3) and the ePROM simulator
(HTTP) -> MessagesTable and the message DLQ (moto), for letters, SMS and e-mail."""

import base64
import json
import time
import uuid
from typing import Any

import boto3
import pytest
from conftest import (
    API_KEY,
    CapturedOutput,
    email_message,
    failed_ids,
    letter_message,
    put_document,
    sms_message,
    sqs_event,
)
from eprom.document_collection import DocumentContent, LetterBody
from eprom.eprom_client import Transient

from local.eprom_simulator import signed_pdf

UNREACHABLE = "20076833487"  # local/stack.py: ePROM reaches this person on no channel


def item(table: Any, reference: str) -> dict[str, Any] | None:
    return table.get_item(Key={"messageReference": reference}, ConsistentRead=True).get("Item")


def classes(letters: list[dict[str, Any]]) -> list[str]:
    return [letter["MessageAttributes"]["rejectionClass"]["StringValue"] for letter in letters]


def reasons(letters: list[dict[str, Any]]) -> list[str]:
    return [letter["MessageAttributes"]["rejectionReason"]["StringValue"] for letter in letters]


def test_a_letter_is_sent_once_with_its_pdf_streamed_as_base64(
    sender, eprom, aws, messages_table, message_dead_letters, lambda_context
) -> None:
    pdf = signed_pdf("a-letter", 300_000)
    letter = letter_message(aws, documents=[
        {"key": put_document(aws, content=pdf), "title": "Resultater", "main": True},
        {"key": put_document(aws, size=5_000), "title": "Vedlegg", "main": False},
    ])  # fmt: skip
    assert sender.lambda_handler(sqs_event(letter), lambda_context) == {"batchItemFailures": []}

    [taken] = eprom.messages_titled(letter["messageReference"])
    assert taken.kind == "letter" and taken.documents == (len(pdf), 5_000)
    [headers] = eprom.message_headers
    assert headers["Authorization"] == f"Basic {API_KEY}"
    assert "Transfer-Encoding" not in headers  # streamed with its exact Content-Length, which the simulator read
    [body] = eprom.message_requests
    main = body["documentCollection"]["mainDocument"]
    assert base64.b64decode(main["content"]) == pdf
    assert (main["title"], main["mimeType"]) == ("Resultater", "application/pdf")
    assert [document["title"] for document in body["documentCollection"]["attachments"]] == ["Vedlegg"]
    assert body["notificationPriorityList"] == ["Helsenorge", "DigitalMailbox", "PhysicalMailbox"]
    assert "messageReference" not in body and "documents" not in body

    stored = item(messages_table, letter["messageReference"])
    assert stored["status"] == "Accepted" and stored["state"] == "Sent" and stored["kind"] == "letter"
    assert stored["messageToCitizenId"] == taken.message_to_citizen_id
    assert stored["notificationChannel"] == "Helsenorge"
    assert not {"nationalId", "documents", "messageInfo", "senderInfo", "sendingUntil"} & set(stored)
    assert message_dead_letters.messages() == []


def test_an_sms_carries_the_key_in_its_body_and_no_authorization_header(
    sender, eprom, messages_table, lambda_context
) -> None:
    sms = sms_message()
    assert sender.lambda_handler(sqs_event(sms), lambda_context) == {"batchItemFailures": []}
    [taken] = eprom.messages_titled(sms["messageReference"])
    assert (taken.kind, taken.to) == ("sms", "+4791234567")
    [headers] = eprom.message_headers
    assert "Authorization" not in headers
    stored = item(messages_table, sms["messageReference"])
    assert (stored["status"], stored["kind"]) == ("Accepted", "sms")
    assert "messageToCitizenId" not in stored and "+4791234567" not in json.dumps(stored, default=str)


def test_an_email_to_a_person_is_sent(sender, eprom, messages_table, lambda_context) -> None:
    email = email_message(emailAddress=None, nationalId="26073941651")
    assert sender.lambda_handler(sqs_event(email), lambda_context) == {"batchItemFailures": []}
    [taken] = eprom.messages_titled(email["messageReference"])
    assert (taken.kind, taken.to) == ("email", "26073941651")
    assert item(messages_table, email["messageReference"])["status"] == "Accepted"


def test_copies_of_a_message_are_sent_once(sender, eprom, aws, message_dead_letters, lambda_context) -> None:
    letter = letter_message(aws)
    assert sender.lambda_handler(sqs_event(letter, letter), lambda_context) == {"batchItemFailures": []}
    assert sender.lambda_handler(sqs_event(letter), lambda_context) == {"batchItemFailures": []}
    assert len(eprom.messages_titled(letter["messageReference"])) == 1
    assert message_dead_letters.messages() == []


def test_a_reference_reused_with_other_content_is_refused(sender, eprom, message_dead_letters, lambda_context) -> None:
    first = sms_message()
    other = first | {"text": "Noe annet"}
    assert sender.lambda_handler(sqs_event(first), lambda_context) == {"batchItemFailures": []}
    assert sender.lambda_handler(sqs_event(other), lambda_context) == {"batchItemFailures": []}
    assert classes(message_dead_letters.messages()) == ["ReusedMessageReference"]
    assert len(eprom.messages) == 1


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"typo": 1}, "an unknown field at the top level"),
        ({"nationalId": "15499923810"}, "H-nummer is not supported"),
        ({"messageInfo": {"title": "Til 26073941651"}}, "messageInfo.title: must not contain a national id"),
        ({"notificationPriorityList": []}, "notificationPriorityList"),
        ({"documents": [{"key": "elsewhere/a.pdf", "title": "A", "main": True}]}, "documents.0.key"),
        ({"testMode": True}, "testMode orders are not allowed"),
    ],
)
def test_an_invalid_letter_is_refused_before_eprom(
    sender, eprom, aws, message_dead_letters, lambda_context, changes: dict[str, Any], reason: str
) -> None:
    assert sender.lambda_handler(sqs_event(letter_message(aws, **changes)), lambda_context) == {"batchItemFailures": []}
    [letter] = message_dead_letters.messages()
    assert classes([letter]) == ["InvalidMessage"]
    assert reason in reasons([letter])[0]
    assert "26073941651" not in reasons([letter])[0] and "15499923810" not in reasons([letter])[0]
    assert eprom.message_headers == []


def test_two_main_documents_are_refused(sender, eprom, aws, message_dead_letters, lambda_context) -> None:
    two = [{"key": put_document(aws), "title": title, "main": True} for title in ("A", "B")]
    assert sender.lambda_handler(sqs_event(letter_message(aws, documents=two)), lambda_context) == {
        "batchItemFailures": []
    }
    assert reasons(message_dead_letters.messages()) == [
        "invalid message: documents: exactly one must be the main document (main: true)"
    ]
    assert eprom.message_headers == []


@pytest.mark.parametrize(
    ("text", "refused"),
    [("Husk timen din i morgen", False), ("Gjelder 26073941651", True), ("Gjelder 260739 41651", True)],
)
def test_an_sms_holding_a_national_id_is_refused(
    sender, eprom, message_dead_letters, lambda_context, text: str, refused: bool
) -> None:
    sms = sms_message(text=text)
    assert sender.lambda_handler(sqs_event(sms), lambda_context) == {"batchItemFailures": []}
    letters = message_dead_letters.messages()
    assert classes(letters) == (["InvalidMessage"] if refused else [])
    assert len(eprom.message_headers) == (0 if refused else 1)
    if refused:
        assert reasons(letters) == ["invalid message: text: must not contain a national id (it is sent unprotected)"]


@pytest.mark.parametrize(
    "message",
    [
        {"kind": "sms", "text": "Hei"},
        {"kind": "email", "title": "Hei", "text": "Hei"},
    ],
)
def test_an_sms_or_email_to_no_one_is_refused(sender, eprom, message_dead_letters, lambda_context, message) -> None:
    body = {"messageReference": f"to-no-one-{uuid.uuid4()}"} | message
    assert sender.lambda_handler(sqs_event(body), lambda_context) == {"batchItemFailures": []}
    assert classes(message_dead_letters.messages()) == ["InvalidMessage"]
    assert eprom.message_headers == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "documents[0]: no such document in MessageDocumentsBucket"),
        (b"<html>not a pdf</html>", "documents[0]: not a PDF (it does not start with %PDF-)"),
        (signed_pdf("cut", 4_000)[:3_000], "documents[0]: not a whole PDF (it does not end with %%EOF)"),
    ],
)
def test_a_letter_whose_document_is_missing_or_not_a_whole_pdf_is_refused_before_eprom(
    sender, eprom, aws, messages_table, message_dead_letters, lambda_context, content: bytes | None, reason: str
) -> None:
    key = put_document(aws, content=content) if content is not None else f"documents/{uuid.uuid4()}.pdf"
    letter = letter_message(aws, documents=[{"key": key, "title": "Brev", "main": True}])
    assert sender.lambda_handler(sqs_event(letter), lambda_context) == {"batchItemFailures": []}
    assert reasons(message_dead_letters.messages()) == [reason]
    assert eprom.message_headers == []
    assert item(messages_table, letter["messageReference"]) is None  # the claim was let go: a redrive tries afresh


def test_a_letter_above_30_mb_is_refused_before_eprom(sender, eprom, aws, message_dead_letters, lambda_context) -> None:
    key = put_document(aws, size=30 * 1024 * 1024 + 1)
    letter = letter_message(aws, documents=[{"key": key, "title": "Brev", "main": True}])
    assert sender.lambda_handler(sqs_event(letter), lambda_context) == {"batchItemFailures": []}
    assert reasons(message_dead_letters.messages()) == [
        "documents[0]: 31457281 bytes, more than the 31457280 ePROM takes"
    ]
    assert eprom.message_headers == []


def test_a_document_refused_then_fixed_is_sent_on_redrive(
    sender, eprom, aws, messages_table, message_dead_letters, lambda_context
) -> None:
    key = f"documents/{uuid.uuid4()}.pdf"
    letter = letter_message(aws, documents=[{"key": key, "title": "Brev", "main": True}])
    assert sender.lambda_handler(sqs_event(letter), lambda_context) == {"batchItemFailures": []}
    assert classes(message_dead_letters.messages()) == ["InvalidMessage"]
    boto3.client("s3").put_object(Bucket=aws["MESSAGE_DOCUMENTS_BUCKET"], Key=key, Body=signed_pdf(key, 1000))
    assert sender.lambda_handler(sqs_event(letter), lambda_context) == {"batchItemFailures": []}
    assert item(messages_table, letter["messageReference"])["status"] == "Accepted"


def test_a_letter_eprom_can_send_on_no_channel_is_not_delivered_at_once(
    sender, eprom, aws, messages_table, lambda_context
) -> None:
    letter = letter_message(aws, nationalId=UNREACHABLE)
    letter_callbacks = len([callback for callback in eprom.callbacks if callback.path == "/api/MessageToCitizen"])
    assert sender.lambda_handler(sqs_event(letter), lambda_context) == {"batchItemFailures": []}
    stored = item(messages_table, letter["messageReference"])
    assert (stored["status"], stored["notificationChannel"]) == ("NotDelivered", "None")
    assert "messageToCitizenId" not in stored  # ePROM answered the all-zero id: nothing to call back about
    # none scheduled for it (other tests' callbacks, a privacy change's say, may still be pending in the simulator)
    assert (
        len([callback for callback in eprom.callbacks if callback.path == "/api/MessageToCitizen"]) == letter_callbacks
    )


def test_eproms_refusal_never_quotes_the_key_it_echoes(
    sender, eprom, messages_table, message_dead_letters, lambda_context, capfd
) -> None:
    eprom.config.api_key = "another-key"  # ePROM does not know ours: it answers 400 "apiKey '<ours>' doesn't exists"
    sms = sms_message()
    captured = CapturedOutput(capfd)
    try:
        assert sender.lambda_handler(sqs_event(sms), lambda_context) == {"batchItemFailures": []}
        output = captured.text()
    finally:
        captured.restore()
    [letter] = message_dead_letters.messages()
    assert classes([letter]) == ["RefusedByEprom"]
    assert reasons([letter]) == ["ePROM refused the SMS: apiKey '(hidden)' doesn't exists"]
    assert API_KEY not in output and API_KEY not in json.dumps(letter)
    assert item(messages_table, sms["messageReference"]) is None


def test_a_transient_failure_is_retried_and_sent_once(sender, eprom, aws, messages_table, lambda_context) -> None:
    letter = letter_message(aws)
    eprom.config.rate_500 = 1.0
    event = sqs_event(letter)
    assert failed_ids(sender.lambda_handler(event, lambda_context)) == {event["Records"][0]["messageId"]}
    assert item(messages_table, letter["messageReference"]) is None
    eprom.config.rate_500 = 0.0
    assert sender.lambda_handler(sqs_event(letter), lambda_context) == {"batchItemFailures": []}
    assert len(eprom.messages_titled(letter["messageReference"])) == 1


def test_a_429_is_sent_again_inside_the_invocation(sender, eprom, messages_table, lambda_context) -> None:
    eprom.config.rate_429, eprom.config.max_faults_per_order = 1.0, 1
    sms = sms_message()
    assert sender.lambda_handler(sqs_event(sms), lambda_context) == {"batchItemFailures": []}
    assert eprom.faults["429"] == 1 and len(eprom.messages_titled(sms["messageReference"])) == 1
    assert item(messages_table, sms["messageReference"])["status"] == "Accepted"


@pytest.mark.parametrize("fault", ["rate_lost_answer", "rate_late_answer"])
def test_a_lost_answer_is_parked_and_every_copy_with_it(
    sender, eprom, aws, messages_table, message_dead_letters, lambda_context, fault: str
) -> None:
    letter = letter_message(aws)
    setattr(eprom.config, fault, 1.0)
    eprom.config.timeout_seconds = 1.5  # longer than the sender's read timeout (1 s)
    assert sender.lambda_handler(sqs_event(letter), lambda_context) == {"batchItemFailures": []}
    setattr(eprom.config, fault, 0.0)
    assert sender.lambda_handler(sqs_event(letter), lambda_context) == {"batchItemFailures": []}
    letters = message_dead_letters.messages()
    assert classes(letters) == ["Ambiguous", "Ambiguous"]
    assert "ePROM may have sent this letter" in reasons(letters)[0] and "ePROM Admin" in reasons(letters)[0]
    attempts = {letter["MessageAttributes"]["ambiguousAttemptId"]["StringValue"] for letter in letters}
    assert len(attempts) == 1
    assert item(messages_table, letter["messageReference"])["state"] == "Ambiguous"
    assert len(eprom.messages_titled(letter["messageReference"])) == 1  # ePROM did take it


def test_a_body_that_cannot_be_read_to_its_end_sends_nothing(sender, eprom) -> None:
    """A document read failing mid-request (S3 broke off, the object changed): the request is cut short of its
    Content-Length, ePROM takes nothing, and the letter is retried."""
    pdf = signed_pdf("broken", 600_000)

    def breaks_off() -> Any:
        yield pdf[:200_000]
        raise OSError("connection reset by S3")

    document = DocumentContent("Brev", "brev.pdf", len(pdf), breaks_off)
    body = LetterBody(lambda content: {"nationalId": "26073941651", "documentCollection": {
        "mainDocument": {"content": content(0)}}}, [document])  # fmt: skip
    result = sender.sender.eprom.send_letter(body, answer_by=time.time() + 30)
    assert isinstance(result, Transient)
    assert "cut short" in result.reason and "OSError" in result.reason
    assert eprom.messages == []


def test_nothing_personal_reaches_the_logs(sender, eprom, aws, lambda_context, capfd) -> None:
    letter = letter_message(aws, nationalId="26073941651")
    sms = sms_message(text="Husk skjemaet ditt", phoneNumber="+4798765432")
    email = email_message(emailAddress="kari.nordmann@example.no", text="Hei Kari")
    refused = sms_message(text="Gjelder 01039494104")
    captured = CapturedOutput(capfd)
    try:
        sender.lambda_handler(sqs_event(letter, sms, email, refused), lambda_context)
        output = captured.text()
    finally:
        captured.restore()
    assert "message sent" in output or "letter sent" in output
    for secret in ("26073941651", "+4798765432", "98765432", "kari.nordmann", "Husk skjemaet", "Hei Kari",
                   "01039494104", API_KEY):  # fmt: skip
        assert secret not in output
