"""A message to a citizen as SendMessageFunction reads it from MessageQueue (a letter, an SMS or an e-mail), what ePROM
receives for each and what it answers (eprom-contract.md §7); plain dataclasses read by hand (eprom.reading says why:
no pydantic on the sender's cold start).

The contract is eprom.contracts (Letter, Sms, Email), the pydantic models the published schema is generated from; these
readers take and refuse what they do, with their words, and write a message's fingerprint byte for byte as they did
(tests/unit/test_readers_match_models.py). Messages are strict, as orders are. SMS and e-mail travel unsecured (Strex,
plain e-mail): a text or title holding a national id is refused. The letter's documentCollection is built in
document_collection.py, its shape's one place.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

from eprom.codes import NotificationChannel
from eprom.national_id import contains_national_id
from eprom.reading import (
    Fields,
    StageRules,
    Unreadable,
    code,
    guid,
    matching,
    non_empty,
    optional,
    read_json_object,
    reference,
    strict_bool,
    text,
    to_json,
)

LETTER, SMS, EMAIL = "letter", "sms", "email"
# Where upstream puts a letter's PDFs in MessageDocumentsBucket: the producer policy may write there, the sender read.
DOCUMENTS_PREFIX = "documents/"
ONE_MAIN_DOCUMENT = "documents: exactly one must be the main document (main: true)"
PHONE_NUMBER_PATTERN = r"^\+?[0-9]{8,15}$"
EMAIL_ADDRESS_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
DOCUMENT_KEY_PATTERN = rf"^{DOCUMENTS_PREFIX}\S.{{0,1000}}$"


def unprotected_text(value: object) -> str:
    """Text that ePROM shows or sends unprotected (an SMS, an e-mail, a letter's title): never a national id."""
    if contains_national_id(non_empty(value)):
        raise Unreadable("must not contain a national id (it is sent unprotected)")
    return str(value)


@dataclass(frozen=True)
class SenderInfo:
    organisation_name: str
    organisation_nr: str

    @classmethod
    def read(cls, fields: Fields) -> "SenderInfo":
        return cls(fields.read("organisationName", non_empty), fields.read("organisationNr", non_empty))

    def as_json(self) -> dict[str, Any]:
        return {"organisationName": self.organisation_name, "organisationNr": self.organisation_nr}


@dataclass(frozen=True)
class MessageInfo:
    """`title` is shown unprotected ("ikke-sensitiv tittel"): no health information, no national id."""

    title: str = field(repr=False)
    description: str | None
    merknad: str | None

    @classmethod
    def read(cls, fields: Fields) -> "MessageInfo":
        return cls(
            fields.read("title", unprotected_text),
            fields.read("description", optional(text), None),
            fields.read("merknad", optional(text), None),
        )

    def as_json(self) -> dict[str, Any]:
        return {"title": self.title, "description": self.description, "merknad": self.merknad}


@dataclass(frozen=True)
class LetterDocument:
    key: str
    title: str
    main: bool

    @classmethod
    def read(cls, fields: Fields) -> "LetterDocument":
        return cls(
            fields.read("key", matching(DOCUMENT_KEY_PATTERN)),
            fields.read("title", non_empty),
            fields.read("main", strict_bool, False),
        )

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "main": self.main}


@dataclass(frozen=True)
class Letter:
    """A letter: PDFs in MessageDocumentsBucket, sent through ePROM to the person's Helsenorge, digital mailbox or
    paper (notificationPriorityList, in order)."""

    message_reference: str
    kind: Literal["letter"]
    national_id: str = field(repr=False)
    sender_info: SenderInfo
    message_info: MessageInfo
    documents: list[LetterDocument]
    notification_priority_list: list[NotificationChannel]
    paper_color_print: bool
    test_mode: bool

    def main_document(self) -> LetterDocument:
        return next(document for document in self.documents if document.main)

    def attachments(self) -> list[LetterDocument]:
        return [document for document in self.documents if not document.main]

    def fingerprint_content(self) -> bytes:
        return to_json(
            {
                "messageReference": self.message_reference,
                "kind": self.kind,
                "nationalId": self.national_id,
                "senderInfo": self.sender_info.as_json(),
                "messageInfo": self.message_info.as_json(),
                "documents": [document.as_json() for document in self.documents],
                "notificationPriorityList": [channel.name for channel in self.notification_priority_list],
                "paperColorPrint": self.paper_color_print,
                "testMode": self.test_mode,
            }
        )

    def eprom_request(self, document_collection: dict[str, Any]) -> dict[str, Any]:
        """The body of POST {base}/api/v2/messagetocitizen (the key goes in the Authorization header), as JSON."""
        return {
            "nationalId": self.national_id,
            "senderInfo": self.sender_info.as_json(),
            "messageInfo": self.message_info.as_json(),
            "documentCollection": document_collection,
            "notificationPriorityList": [channel.name for channel in self.notification_priority_list],
            "testMode": self.test_mode,
            "paperColorPrint": self.paper_color_print,
        }


@dataclass(frozen=True)
class Sms:
    """A short text by SMS, to the person (nationalId) or a phone number. Not secure: non-sensitive content only."""

    message_reference: str
    national_id: str | None = field(repr=False)
    kind: Literal["sms"]
    text: str = field(repr=False)
    phone_number: str | None = field(repr=False)

    def fingerprint_content(self) -> bytes:
        return to_json({"messageReference": self.message_reference, "nationalId": self.national_id, "kind": self.kind,
                        "text": self.text, "phoneNumber": self.phone_number})  # fmt: skip

    def eprom_request(self, api_key: str) -> bytes:
        """POST {base}/api/unsecuremessagesms: the key travels in the body here (Hemit's example has no
        Authorization header)."""
        return _with_key(api_key, nationalId=self.national_id, smsText=self.text, phoneNumber=self.phone_number)


@dataclass(frozen=True)
class Email:
    """An e-mail, to the person (nationalId) or an address. Not secure: non-sensitive content only."""

    message_reference: str
    national_id: str | None = field(repr=False)
    kind: Literal["email"]
    title: str = field(repr=False)
    text: str = field(repr=False)
    email_address: str | None = field(repr=False)

    def fingerprint_content(self) -> bytes:
        return to_json({"messageReference": self.message_reference, "nationalId": self.national_id, "kind": self.kind,
                        "title": self.title, "text": self.text, "emailAddress": self.email_address})  # fmt: skip

    def eprom_request(self, api_key: str) -> bytes:
        """POST {base}/api/unsecuremessageemail, the key in the body as for an SMS."""
        return _with_key(api_key, nationalId=self.national_id, emailTitle=self.title, emailText=self.text,
                         emailAddress=self.email_address)  # fmt: skip


type MessageToCitizen = Letter | Sms | Email


def _with_key(api_key: str, **fields: str | None) -> bytes:
    return to_json({"apiKey": api_key} | {name: value for name, value in fields.items() if value is not None})


def read_message(body: str | bytes, *, allow_synthetic_national_ids: bool, allow_test_mode_orders: bool) -> (
    MessageToCitizen
):  # fmt: skip
    """A message on MessageQueue, by the stage's settings (as for orders); Unreadable names every problem."""
    rules = StageRules(allow_synthetic_national_ids, allow_test_mode_orders)

    def letter(fields: Fields) -> Letter:
        return Letter(
            message_reference=fields.read("messageReference", reference),
            kind=fields.read("kind", text),  # type: ignore[arg-type]
            national_id=fields.read("nationalId", rules.national_id),
            sender_info=fields.object("senderInfo", SenderInfo.read),  # type: ignore[arg-type]
            message_info=fields.object("messageInfo", MessageInfo.read),  # type: ignore[arg-type]
            documents=fields.list_of("documents", LetterDocument.read, objects=True),
            notification_priority_list=fields.list_of("notificationPriorityList", _channel),
            paper_color_print=fields.read("paperColorPrint", strict_bool, False),
            test_mode=fields.read("testMode", rules.test_mode, False),
        )

    def sms(fields: Fields) -> Sms:
        return Sms(
            message_reference=fields.read("messageReference", reference),
            national_id=fields.read("nationalId", optional(rules.national_id), None),
            kind=fields.read("kind", text),  # type: ignore[arg-type]
            text=fields.read("text", unprotected_text),
            phone_number=fields.read("phoneNumber", optional(matching(PHONE_NUMBER_PATTERN)), None),
        )

    def email(fields: Fields) -> Email:
        return Email(
            message_reference=fields.read("messageReference", reference),
            national_id=fields.read("nationalId", optional(rules.national_id), None),
            kind=fields.read("kind", text),  # type: ignore[arg-type]
            title=fields.read("title", unprotected_text),
            text=fields.read("text", unprotected_text),
            email_address=fields.read("emailAddress", optional(matching(EMAIL_ADDRESS_PATTERN, max_length=254)), None),
        )

    readers: dict[str, Callable[[Fields], MessageToCitizen]] = {LETTER: letter, SMS: sms, EMAIL: email}

    def message(fields: Fields) -> MessageToCitizen:
        kind = fields.peek("kind")
        if not isinstance(kind, str) or kind not in readers:
            raise Unreadable(f"kind: must be one of {LETTER}, {SMS}, {EMAIL}")
        return readers[kind](fields)

    read = read_json_object(body, message)
    if problem := _problem_of_the_whole(read):
        raise Unreadable(problem)
    return read


def _problem_of_the_whole(message: MessageToCitizen) -> str | None:
    """What is wrong with a message whose fields are each right."""
    match message:
        case Letter() if sum(document.main for document in message.documents) != 1:
            return ONE_MAIN_DOCUMENT
        case Sms(national_id=None, phone_number=None):
            return "either nationalId or phoneNumber must be given"
        case Email(national_id=None, email_address=None):
            return "either nationalId or emailAddress must be given"
    return None


def _channel(value: object) -> NotificationChannel:
    return code(NotificationChannel, value)


def message_reference_and_kind(body: str) -> tuple[str | None, str | None]:
    """The messageReference and kind of a message when they are valid ones (an invalid message's could hold anything,
    a national id too), for the refusal of a message that cannot be read."""
    try:
        content = json.loads(body)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(content, dict):
        return None, None
    try:
        message_reference: str | None = reference(content.get("messageReference"))
    except Unreadable:
        message_reference = None
    kind = content.get("kind")
    return message_reference, kind if kind in (LETTER, SMS, EMAIL) else None


# --- ePROM's answers: unknown fields ignored, key casing ignored (Hemit's own script reads Success) -----------------


@dataclass(frozen=True)
class LetterAnswer:
    """ePROM's answer to a letter. notificationChannel 0 (also as "0") = nothing was sent: the person cannot be reached
    on any channel of the list, or does not exist."""

    notification_channel: NotificationChannel
    message_to_citizen_id: UUID | None

    @property
    def nothing_sent(self) -> bool:
        return self.notification_channel is NotificationChannel["None"]


def read_letter_answer(content: bytes | str) -> LetterAnswer:
    def read(fields: Fields) -> LetterAnswer:
        return LetterAnswer(
            fields.read("notificationChannel", _channel),
            fields.read("messageToCitizenId", lambda value: guid(value) if value else None, None),
        )

    return read_json_object(content, read, ignore_unknown=True, ignore_case=True)


def read_unsecure_answer(content: bytes | str) -> bool:
    """ePROM's answer to an SMS or e-mail, {success}: whether it sent it."""
    return read_json_object(content, lambda fields: fields.read("success", strict_bool), ignore_unknown=True,
                            ignore_case=True)  # fmt: skip
