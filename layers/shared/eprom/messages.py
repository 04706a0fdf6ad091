"""Messages to citizens (architecture.md, "Messages to citizens"; eprom-contract.md §7), as pydantic models: what
upstream puts on MessageQueue (a letter, an SMS or an e-mail), the contract its published schema is generated from,
and ePROM's status callback for letters. SendMessageFunction reads messages with eprom.citizen_messages (no pydantic
on its cold start), held to these models by tests/unit/test_readers_match_models.py.
"""

from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from eprom.citizen_messages import (
    DOCUMENT_KEY_PATTERN,
    DOCUMENTS_PREFIX,
    EMAIL,
    EMAIL_ADDRESS_PATTERN,
    LETTER,
    ONE_MAIN_DOCUMENT,
    PHONE_NUMBER_PATTERN,
    SMS,
    unprotected_text,
)
from eprom.codes import NotificationChannel, SentStatus
from eprom.models import (
    LenientWireEnum,
    NationalId,
    OrderReference,
    WireEnum,
    _as_pydantic_error,
    _CallbackPart,
    _CamelModel,
    _test_mode_allowed,
)

__all__ = ["DOCUMENTS_PREFIX", "EMAIL", "LETTER", "SMS", "SentStatus"]  # read from here by the CLI and the tools


# Text that ePROM shows or sends unprotected: an SMS, an e-mail, a letter's title.
UnprotectedText = Annotated[
    str,
    StringConstraints(min_length=1),
    AfterValidator(_as_pydantic_error(unprotected_text, "national_id_in_text")),
    Field(repr=False),
]
MessageReference = OrderReference  # the same characters and rules
PhoneNumber = Annotated[str, StringConstraints(pattern=PHONE_NUMBER_PATTERN)]
EmailAddress = Annotated[str, StringConstraints(pattern=EMAIL_ADDRESS_PATTERN, max_length=254)]
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

    key: Annotated[str, StringConstraints(pattern=DOCUMENT_KEY_PATTERN)]
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
            raise PydanticCustomError("documents", ONE_MAIN_DOCUMENT)
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


# --- ePROM's status callback for letters (eprom-contract.md §7) -----------------------------------------------------


class MessageToCitizenCallback(_CallbackPart):
    """ePROM's PUT /api/MessageToCitizen: a letter's fate. Only messageToCitizenId and apiKey must be readable; an
    unknown notificationChannel or sentStatus is kept as sent (it goes to the history and moves nothing)."""

    api_key: Annotated[SecretStr | None, Field(description="The ApiKey the letter was sent with")] = None
    message_to_citizen_id: UUID
    notification_channel: LenientWireEnum[NotificationChannel] = None
    sent_status: LenientWireEnum[SentStatus] = None
