"""An order as PlaceOrderFunction reads it from OrderQueue, ePROM's request made from it, and ePROM's answer; plain
dataclasses read by hand (eprom.reading says why: no pydantic on the placer's cold start).

The contract is eprom.contracts.OrderMessage, the pydantic model the published schema is generated from; these readers
take and refuse what it does, with its words (tests/unit/test_readers_match_models.py compares them on every kind of
input), and write the same JSON: an order's fingerprint and ePROM's request are byte for byte what they were when the
model wrote them, so an order placed before an upgrade is still "the same order" after it.
"""

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eprom.codes import DistributionRule, NotificationChannel
from eprom.reading import (
    OSLO,
    Fields,
    StageRules,
    Unreadable,
    code,
    guid,
    iso_time,
    matching,
    non_empty,
    optional,
    read_json_object,
    reference,
    strict_bool,
    text,
    timestamp,
    to_json,
)

POSTAL_CODE_PATTERN = r"^[0-9]{4}$"
NO_ORDER_ID = UUID(int=0)  # ePROM answers 200 with this id when it created no order
MUST_BE_SIGNED_NO_DISTRIBUTION = (
    "The ordered form needs to be signed. This is not possible when using DistributionRule = 'NoDistribution'."
)
MUST_BE_SIGNED_ON_BEHALF = (
    "The ordered form needs to be signed. This is not possible when the form is ordered on behalf of someone."
)
_NOT_JSON_NUMBERS = "NaN and Infinity are not JSON (ePROM would receive invalid JSON)"
_NESTED_TOO_DEEP = "JSON in metadata is not valid: nested too deep"


@dataclass(frozen=True)
class PhysicalAddress:
    full_name: str = field(repr=False)
    address_line1: str = field(repr=False)
    postal_code: str = field(repr=False)
    postal_place: str = field(repr=False)

    @classmethod
    def read(cls, fields: Fields) -> "PhysicalAddress":
        return cls(
            fields.read("fullName", non_empty),
            fields.read("addressLine1", non_empty),
            fields.read("postalCode", matching(POSTAL_CODE_PATTERN)),
            fields.read("postalPlace", non_empty),
        )

    def as_json(self) -> dict[str, str]:
        return {"fullName": self.full_name, "addressLine1": self.address_line1, "postalCode": self.postal_code,
                "postalPlace": self.postal_place}  # fmt: skip


@dataclass(frozen=True)
class Order:
    """An order message, read (read_order): ePROM's request fields and our idempotency key, orderReference."""

    order_reference: str
    form_id: UUID
    national_id: str = field(repr=False)
    expiry_date: datetime
    reminder_date: datetime | None  # accepted from upstream, never sent on
    metadata: str | None = field(repr=False)
    dont_store_completed_form_in_pha: bool
    distribution_rule: DistributionRule
    must_be_signed: bool
    signing_text: str | None
    physical_address: PhysicalAddress | None = field(repr=False)
    test_mode: bool
    on_behalf_of_national_id: str | None = field(repr=False)

    def eprom_request(self) -> bytes:
        """The body of ePROM's POST /api/v2/formorder (reminderDate always null: ePROM ignores it)."""
        return to_json(self._request_fields(reminder_date=None))

    def fingerprint_content(self) -> bytes:
        """What the order's fingerprint is made of: all of it, as upstream gave it."""
        return to_json(
            self._request_fields(reminder_date=iso_time(self.reminder_date) if self.reminder_date else None)
            | {"orderReference": self.order_reference}
        )

    def _request_fields(self, *, reminder_date: str | None) -> dict[str, Any]:
        return {
            "formId": str(self.form_id),
            "nationalId": self.national_id,
            "expiryDate": iso_time(self.expiry_date),
            "reminderDate": reminder_date,
            "metadata": self.metadata,
            "dontStoreCompletedFormInPha": self.dont_store_completed_form_in_pha,
            "distributionRule": self.distribution_rule.name,
            "mustBeSigned": self.must_be_signed,
            "signingText": self.signing_text,
            "physicalAddress": self.physical_address.as_json() if self.physical_address else None,
            "testMode": self.test_mode,
            "onBehalfOfNationalId": self.on_behalf_of_national_id,
        }


def read_order(body: str | bytes, *, allow_synthetic_national_ids: bool, allow_test_mode_orders: bool) -> Order:
    """An order message from OrderQueue, by the stage's settings; Unreadable names every problem."""
    rules = StageRules(allow_synthetic_national_ids, allow_test_mode_orders)

    def read(fields: Fields) -> Order:
        # in the model's order of fields, so the problems come in the model's order
        return Order(
            form_id=fields.read("formId", guid),
            national_id=fields.read("nationalId", rules.national_id),
            expiry_date=fields.read("expiryDate", _future_time),
            reminder_date=fields.read("reminderDate", optional(_oslo_time), None),
            metadata=fields.read("metadata", metadata_as_json_text, None),
            dont_store_completed_form_in_pha=fields.read("dontStoreCompletedFormInPha", strict_bool, False),
            distribution_rule=fields.read("distributionRule", _distribution_rule, DistributionRule.Basic),
            must_be_signed=fields.read("mustBeSigned", strict_bool, False),
            signing_text=fields.read("signingText", optional(text), None),
            physical_address=fields.object("physicalAddress", PhysicalAddress.read, optional=True),
            test_mode=fields.read("testMode", rules.test_mode, False),
            on_behalf_of_national_id=fields.read("onBehalfOfNationalId", optional(rules.national_id), None),
            order_reference=fields.read("orderReference", reference),
        )

    order = read_json_object(body, read)
    if order.must_be_signed and order.distribution_rule is DistributionRule.NoDistribution:
        raise Unreadable(MUST_BE_SIGNED_NO_DISTRIBUTION)
    if order.must_be_signed and order.on_behalf_of_national_id:
        raise Unreadable(MUST_BE_SIGNED_ON_BEHALF)
    return order


def order_reference_of(body: str) -> str | None:
    """The orderReference of a message when it is a valid one (an invalid message's could hold anything, a national
    id too), for the refusal of a message that cannot be read."""
    try:
        return reference(json.loads(body).get("orderReference"))
    except (ValueError, RecursionError, AttributeError):  # Unreadable is a ValueError
        return None


def _distribution_rule(value: object) -> DistributionRule:
    return code(DistributionRule, value)


def _oslo_time(value: object) -> datetime:
    return timestamp(value, offsetless_zone=OSLO)


def _future_time(value: object) -> datetime:
    moment = _oslo_time(value)
    if moment <= datetime.now(UTC):
        raise Unreadable("must be in the future")
    return moment


def _refuse_non_json_number(_: str) -> None:
    raise ValueError(_NOT_JSON_NUMBERS)


def metadata_as_json_text(value: object) -> str | None:
    """ePROM wants metadata as a string holding JSON; upstream may send the object itself."""
    if isinstance(value, dict | list):
        try:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except ValueError:
            raise Unreadable(f"JSON in metadata is not valid: {_NOT_JSON_NUMBERS}") from None
        except RecursionError:
            raise Unreadable(_NESTED_TOO_DEEP) from None
    if value is None:
        return None
    try:
        json.loads(text(value), parse_constant=_refuse_non_json_number)
    except RecursionError:  # the parser recurses per level: "[" * 50000 exhausts Python's stack
        raise Unreadable(_NESTED_TOO_DEEP) from None
    except Unreadable:
        raise
    except ValueError as error:
        # ePROM's wording; the parser's message names a position, never the content
        raise Unreadable(f"JSON in metadata is not valid: {error}") from None
    return value  # type: ignore[return-value]


# --- ePROM's answer -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderAnswer:
    """ePROM's answer to an order. It echoes the request (national id included); we keep only what is ours."""

    id: UUID
    single_use_code: str | None = field(default=None, repr=False)
    login_url: str | None = None
    notification_channel: Any = None  # a NotificationChannel, or a value ePROM added later, as it came

    def as_json(self) -> bytes:
        """As a placed claim keeps it (read back by read_order_answer)."""
        return to_json(
            {
                "id": str(self.id),
                "singleUseCode": self.single_use_code,
                "loginUrl": self.login_url,
                "notificationChannel": _channel_as_json(self.notification_channel),
            }
        )


def read_order_answer(content: bytes | str) -> OrderAnswer:
    """ePROM's answer (unknown fields ignored); Unreadable when its id or a field we keep has a shape we cannot
    read."""

    def read(fields: Fields) -> OrderAnswer:
        return OrderAnswer(
            id=fields.read("id", guid),
            single_use_code=fields.read("singleUseCode", optional(text), None),
            login_url=fields.read("loginUrl", optional(text), None),
            notification_channel=fields.read("notificationChannel", _channel_or_as_given, None),
        )

    return read_json_object(content, read, ignore_unknown=True)


def _channel_or_as_given(value: object) -> object:
    """notificationChannel however ePROM writes it, or a value ePROM added after this code was written, kept as
    pydantic's lax reading has it: true, 2.0 and "2.0" are 1, 2 and 2; "7" is 7; "7.5" is 7.5; other text as it came."""
    if value is None:
        return None
    if not isinstance(value, int | float | str):
        raise Unreadable("Input should be a valid integer")
    try:
        return code(NotificationChannel, value)
    except Unreadable:
        pass
    number = _lax_number(value)
    try:
        return code(NotificationChannel, number) if isinstance(number, int) else number
    except Unreadable:
        return number


def _channel_as_json(channel: object) -> object:
    if isinstance(channel, NotificationChannel):
        return channel.name
    if isinstance(channel, float) and not math.isfinite(channel):
        return None  # as pydantic writes NaN and Infinity
    return channel


def _lax_number(value: int | float | str) -> int | float | str:
    """An integer if the value is a whole number (true, 2.0, " 2 ", "2.0"), else a number if it is one, else the
    text."""
    if isinstance(value, str):
        if re.fullmatch(r"\s*[+-]?[0-9]+(\.0*)?\s*", value):
            return int(float(value))
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(value, bool) or (isinstance(value, float) and value.is_integer()):
        return int(value)
    return value
