"""Upstream's contracts as pydantic models: the order message on OrderQueue (OrderMessage) and the message to a
citizen on MessageQueue (Letter, Sms, Email). The published schemas are generated from these (`make schemas`,
buildtools/schemas.py). The functions do not import them: the placer and the sender read by hand (eprom.orders,
eprom.citizen_messages: no pydantic on their cold start), with the same rule functions, held to these models by
tests/unit/test_readers_match_models.py.

Validate with `context={"allow_synthetic_national_ids": ..., "allow_test_mode_orders": ...}` (the stage's settings).
"""

from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from eprom.citizen_messages import (
    DOCUMENT_KEY_PATTERN,
    EMAIL_ADDRESS_PATTERN,
    ONE_MAIN_DOCUMENT,
    PHONE_NUMBER_PATTERN,
    unprotected_text,
)
from eprom.codes import DistributionRule, NotificationChannel
from eprom.models import OsloTimestamp, WireEnum, _as_pydantic_error, _CamelModel
from eprom.orders import (
    MUST_BE_SIGNED_NO_DISTRIBUTION,
    MUST_BE_SIGNED_ON_BEHALF,
    POSTAL_CODE_PATTERN,
    metadata_as_json_text,
)
from eprom.reading import REFERENCE_PATTERN, TEST_MODE_NOT_ALLOWED, national_id, reference

# --- the order message ---------------------------------------------------------------------------------------------


def _national_id(value: str, info: ValidationInfo) -> str:
    allow_synthetic = bool((info.context or {}).get("allow_synthetic_national_ids", False))
    return _as_pydantic_error(partial(national_id, allow_synthetic=allow_synthetic), "national_id")(value)


NationalId = Annotated[str, AfterValidator(_national_id)]
ELEVEN_ASCII_DIGITS = r"^[0-9]{11}$"  # not \d, which matches any Unicode digit ("٢"); ePROM reads ASCII only


class PhysicalAddress(_CamelModel):
    model_config = ConfigDict(extra="forbid")

    full_name: Annotated[str, StringConstraints(min_length=1), Field(repr=False)]
    address_line1: Annotated[str, StringConstraints(min_length=1), Field(repr=False)]
    postal_code: Annotated[str, StringConstraints(pattern=POSTAL_CODE_PATTERN), Field(repr=False)]
    postal_place: Annotated[str, StringConstraints(min_length=1), Field(repr=False)]


class EpromOrderRequest(_CamelModel):
    """The fields of ePROM's POST /api/v2/formorder (eprom.orders.Order.eprom_request writes the body), the base of
    the order message."""

    model_config = ConfigDict(extra="forbid")

    form_id: UUID
    national_id: Annotated[str, StringConstraints(pattern=ELEVEN_ASCII_DIGITS), Field(repr=False)]
    expiry_date: OsloTimestamp
    reminder_date: None = None  # ePROM ignores it; we always send null
    metadata: Annotated[
        str | None, BeforeValidator(_as_pydantic_error(metadata_as_json_text, "metadata")), Field(repr=False)
    ] = None
    dont_store_completed_form_in_pha: StrictBool = False
    distribution_rule: WireEnum[DistributionRule] = DistributionRule.Basic
    must_be_signed: StrictBool = False
    signing_text: str | None = None
    physical_address: PhysicalAddress | None = None
    test_mode: StrictBool = False
    on_behalf_of_national_id: Annotated[
        Annotated[str, StringConstraints(pattern=ELEVEN_ASCII_DIGITS)] | None, Field(repr=False)
    ] = None

    @model_validator(mode="after")
    def _signing_is_possible(self) -> "EpromOrderRequest":
        if self.must_be_signed and self.distribution_rule is DistributionRule.NoDistribution:
            raise PydanticCustomError("signing", MUST_BE_SIGNED_NO_DISTRIBUTION)
        if self.must_be_signed and self.on_behalf_of_national_id:
            raise PydanticCustomError("signing", MUST_BE_SIGNED_ON_BEHALF)
        return self


def _in_the_future(value: datetime) -> datetime:
    if value <= datetime.now(UTC):
        raise PydanticCustomError("expiry", "must be in the future")
    return value


OrderReference = Annotated[
    str,
    StringConstraints(pattern=REFERENCE_PATTERN),
    AfterValidator(_as_pydantic_error(reference, "order_reference")),
]


def _test_mode_allowed(value: bool, info: ValidationInfo) -> bool:
    if value and not (info.context or {}).get("allow_test_mode_orders", False):
        raise PydanticCustomError("test_mode", TEST_MODE_NOT_ALLOWED)
    return value


class OrderMessage(EpromOrderRequest):
    """What upstream systems put on OrderQueue: ePROM's request fields plus our idempotency key.

    Validate with `context={"allow_synthetic_national_ids": ..., "allow_test_mode_orders": ...}` (the stage's
    settings).
    """

    order_reference: OrderReference
    national_id: Annotated[NationalId, Field(repr=False)]
    on_behalf_of_national_id: Annotated[NationalId | None, Field(repr=False)] = None
    expiry_date: Annotated[OsloTimestamp, AfterValidator(_in_the_future)]
    # Accepted from upstream, never sent on (eprom.orders leaves it out): wider than the request's null.
    reminder_date: OsloTimestamp | None = None  # type: ignore[assignment]
    test_mode: Annotated[StrictBool, AfterValidator(_test_mode_allowed)] = False


# --- the message to a citizen ----------------------------------------------------------------------------------


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
