"""Messages to citizens (architecture.md, "Messages to citizens"; eprom-contract.md §7), as pydantic models: what
upstream puts on MessageQueue (a letter, an SMS or an e-mail), what ePROM receives and answers for each, and its
status callback for letters.

Messages are strict, as orders are: unknown fields refused, every rule checked before ePROM is called. SMS and
e-mail travel unsecured (Strex, plain e-mail): a text or title holding a national id is refused, by the rule that
finds one in other text (eprom.national_id.contains_national_id). The letter's documentCollection is built in
document_collection.py, its shape's one place.
"""

from enum import IntEnum
from functools import cache
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from eprom.models import (
    LenientWireEnum,
    NationalId,
    NotificationChannel,
    OrderReference,
    WireEnum,
    _CallbackPart,
    _CamelModel,
    _test_mode_allowed,
    describe_errors,
)
from eprom.national_id import contains_national_id

LETTER, SMS, EMAIL = "letter", "sms", "email"
# Where upstream puts a letter's PDFs in MessageDocumentsBucket: the producer policy may write there, the sender read.
DOCUMENTS_PREFIX = "documents/"


class SentStatus(IntEnum):
    """sentStatus of ePROM's callback for a letter. Error: the person could not be notified."""

    Sent = 0
    Error = 1


def _no_national_id(value: str) -> str:
    if contains_national_id(value):
        raise PydanticCustomError("national_id_in_text", "must not contain a national id (it is sent unprotected)")
    return value


# Text that ePROM shows or sends unprotected: an SMS, an e-mail, a letter's title.
UnprotectedText = Annotated[str, StringConstraints(min_length=1), AfterValidator(_no_national_id), Field(repr=False)]
MessageReference = OrderReference  # the same characters and rules
PhoneNumber = Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{8,15}$")]
EmailAddress = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class SenderInfo(_CamelModel):
    model_config = ConfigDict(extra="forbid")

    organisation_name: NonEmpty
    organisation_nr: NonEmpty


class MessageInfo(_CamelModel):
    """`title` is shown unprotected ("ikke-sensitiv tittel"): no health information, no national id."""

    model_config = ConfigDict(extra="forbid")

    title: UnprotectedText
    description: str | None = None
    merknad: str | None = None


class LetterDocument(_CamelModel):
    model_config = ConfigDict(extra="forbid")

    key: Annotated[str, StringConstraints(pattern=rf"^{DOCUMENTS_PREFIX}\S.{{0,1000}}$")]
    title: NonEmpty
    main: StrictBool = False


class Letter(_CamelModel):
    """A letter: PDFs in MessageDocumentsBucket, sent through ePROM to the person's Helsenorge, digital mailbox or
    paper (notificationPriorityList, in order)."""

    model_config = ConfigDict(extra="forbid")

    message_reference: MessageReference
    kind: Literal["letter"]
    national_id: Annotated[NationalId, Field(repr=False)]
    sender_info: SenderInfo
    message_info: MessageInfo
    documents: Annotated[list[LetterDocument], Field(min_length=1)]
    notification_priority_list: Annotated[list[WireEnum[NotificationChannel]], Field(min_length=1)]
    paper_color_print: StrictBool = False
    test_mode: Annotated[StrictBool, AfterValidator(_test_mode_allowed)] = False

    @model_validator(mode="after")
    def _one_main_document(self) -> Self:
        if sum(document.main for document in self.documents) != 1:
            raise PydanticCustomError("documents", "documents: exactly one must be the main document (main: true)")
        return self

    def main_document(self) -> LetterDocument:
        return next(document for document in self.documents if document.main)

    def attachments(self) -> list[LetterDocument]:
        return [document for document in self.documents if not document.main]


class _ToPersonOrAddress(_CamelModel):
    model_config = ConfigDict(extra="forbid")

    message_reference: MessageReference
    national_id: Annotated[NationalId | None, Field(repr=False)] = None


class Sms(_ToPersonOrAddress):
    """A short text by SMS, to the person (nationalId) or a phone number. Not secure: non-sensitive content only."""

    kind: Literal["sms"]
    text: UnprotectedText
    phone_number: Annotated[PhoneNumber | None, Field(repr=False)] = None

    @model_validator(mode="after")
    def _someone(self) -> Self:
        if self.national_id is None and self.phone_number is None:
            raise PydanticCustomError("recipient", "either nationalId or phoneNumber must be given")
        return self

    def eprom_request(self) -> "EpromSmsRequest":
        return EpromSmsRequest(sms_text=self.text, national_id=self.national_id, phone_number=self.phone_number)


class Email(_ToPersonOrAddress):
    """An e-mail, to the person (nationalId) or an address. Not secure: non-sensitive content only."""

    kind: Literal["email"]
    title: UnprotectedText
    text: UnprotectedText
    email_address: Annotated[EmailAddress | None, Field(repr=False)] = None

    @model_validator(mode="after")
    def _someone(self) -> Self:
        if self.national_id is None and self.email_address is None:
            raise PydanticCustomError("recipient", "either nationalId or emailAddress must be given")
        return self

    def eprom_request(self) -> "EpromEmailRequest":
        return EpromEmailRequest(email_title=self.title, email_text=self.text, national_id=self.national_id,
                                 email_address=self.email_address)  # fmt: skip


type MessageToCitizen = Letter | Sms | Email


@cache
def _messages() -> TypeAdapter[Letter | Sms | Email]:
    return TypeAdapter(Annotated[Letter | Sms | Email, Field(discriminator="kind")])


def parse_message(body: str | bytes, context: dict[str, bool]) -> MessageToCitizen:
    """A message on MessageQueue; `context` as for orders (allow_synthetic_national_ids, allow_test_mode_orders)."""
    return _messages().validate_json(body, context=context)


def describe_message_error(error: ValidationError) -> str:
    """describe_validation_error's reason, with fields named as the message has them (not under its kind)."""
    kinds = {(LETTER,), (SMS,), (EMAIL,)}
    errors = []
    for detail in error.errors(include_input=False, include_url=False, include_context=False):
        if detail["type"] in ("union_tag_invalid", "union_tag_not_found"):  # pydantic's message quotes the kind
            detail = detail | {"loc": ("kind",), "msg": f"must be one of {LETTER}, {SMS}, {EMAIL}"}
        errors.append(detail | {"loc": detail["loc"][1:]} if detail["loc"][:1] in kinds else detail)
    return describe_errors(errors)


# --- what ePROM receives and answers (eprom-contract.md §7) --------------------------------------------------------


class EpromLetterRequest(_CamelModel):
    """The body of POST {base}/api/v2/messagetocitizen (the key goes in the Authorization header)."""

    national_id: Annotated[str, Field(repr=False)]
    sender_info: SenderInfo
    message_info: MessageInfo
    document_collection: dict[str, Any]  # document_collection.py
    notification_priority_list: list[WireEnum[NotificationChannel]]
    test_mode: bool
    paper_color_print: bool

    @classmethod
    def of(cls, letter: Letter, document_collection: dict[str, Any]) -> "EpromLetterRequest":
        return cls(
            national_id=letter.national_id,
            sender_info=letter.sender_info,
            message_info=letter.message_info,
            document_collection=document_collection,
            notification_priority_list=letter.notification_priority_list,
            test_mode=letter.test_mode,
            paper_color_print=letter.paper_color_print,
        )


class _UnsecureRequest(_CamelModel):
    """The key travels in the body here (Hemit's example has no Authorization header): `with_key` adds it."""

    national_id: Annotated[str | None, Field(repr=False)] = None

    def with_key(self, api_key: str) -> bytes:
        body = {"apiKey": api_key} | self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return TypeAdapter(dict[str, Any]).dump_json(body)


class EpromSmsRequest(_UnsecureRequest):
    """POST {base}/api/unsecuremessagesms."""

    sms_text: Annotated[str, Field(repr=False)]
    phone_number: Annotated[str | None, Field(repr=False)] = None


class EpromEmailRequest(_UnsecureRequest):
    """POST {base}/api/unsecuremessageemail."""

    email_title: Annotated[str, Field(repr=False)]
    email_text: Annotated[str, Field(repr=False)]
    email_address: Annotated[str | None, Field(repr=False)] = None


class EpromLetterAnswer(_CallbackPart):
    """ePROM's answer to a letter. notificationChannel 0 (also as "0") = nothing was sent: the person cannot be reached
    on any channel of the list, or does not exist."""

    notification_channel: WireEnum[NotificationChannel]
    message_to_citizen_id: Annotated[UUID | None, BeforeValidator(lambda value: value or None)] = None

    @property
    def nothing_sent(self) -> bool:
        return self.notification_channel is NotificationChannel["None"]


class EpromUnsecureAnswer(_CallbackPart):
    """ePROM's answer to an SMS or e-mail: {success} (Hemit's own script reads it as Success)."""

    success: StrictBool


class MessageToCitizenCallback(_CallbackPart):
    """ePROM's PUT /api/MessageToCitizen: a letter's fate. Only messageToCitizenId and apiKey must be readable; an
    unknown notificationChannel or sentStatus is kept as sent (it goes to the history and moves nothing)."""

    api_key: Annotated[SecretStr | None, Field(description="The ApiKey the letter was sent with")] = None
    message_to_citizen_id: UUID
    notification_channel: LenientWireEnum[NotificationChannel] = None
    sent_status: LenientWireEnum[SentStatus] = None
