"""Pydantic models of ePROM's form callbacks (docs/eprom-contract.md) and our reply to them, and the pieces every
pydantic model here is built of (enums by name or number, ePROM's timestamps, camelCase); upstream's contracts built
of them are in eprom.contracts.

Callbacks are liberal: ePROM's wire formats vary, and a callback we cannot parse is a status we lose.
"""

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from enum import IntEnum
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PlainSerializer,
    PrivateAttr,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from eprom.codes import FormOrderStatus, FormOrderStatusErrorCode, NotificationChannel
from eprom.reading import OSLO, Unreadable, code, timestamp


def enum_from_wire[E: IntEnum](enum_cls: type[E], value: object) -> E:
    """ePROM sends enums as names (any case), integers or numeric strings; all mean the same member."""
    try:
        return code(enum_cls, value)
    except Unreadable as problem:
        raise PydanticCustomError("enum", str(problem)) from None


def _enum_or_as_given(enum_cls: type[IntEnum], value: object) -> object:
    if value is None:
        return None
    try:
        return enum_from_wire(enum_cls, value)
    except PydanticCustomError:
        return value  # a value ePROM added after this code was written: keep it, don't refuse the callback


def _wire_name(value: object) -> object:
    return value.name if isinstance(value, IntEnum) else value


if TYPE_CHECKING:  # what a field holds once validated (the runtime classes below build pydantic's Annotated)
    type WireEnum[E: IntEnum] = E
    type LenientWireEnum[E: IntEnum] = E | int | float | str | None
else:

    class WireEnum:
        """An enum field of an order, `WireEnum[Enum]`: name, integer or numeric string in; the name out."""

        def __class_getitem__(cls, enum_cls: type[IntEnum]) -> Any:
            return Annotated[
                enum_cls,
                BeforeValidator(partial(enum_from_wire, enum_cls)),
                PlainSerializer(_wire_name, when_used="json"),
            ]

    class LenientWireEnum:
        """An enum field of a callback, `LenientWireEnum[Enum]`: like WireEnum, but an unknown value is kept as
        given."""

        def __class_getitem__(cls, enum_cls: type[IntEnum]) -> Any:
            return Annotated[
                enum_cls | int | float | str | None,  # null is "not given", never a reason to refuse the callback
                Field(union_mode="left_to_right"),
                BeforeValidator(partial(_enum_or_as_given, enum_cls)),
                PlainSerializer(_wire_name, when_used="json"),
            ]


def parse_timestamp(value: object, *, offsetless_zone: tzinfo) -> object:
    """All of ePROM's timestamp shapes; a value without offset is in `offsetless_zone`."""
    if isinstance(value, str):
        return _as_pydantic_error(partial(timestamp, offsetless_zone=offsetless_zone), "datetime")(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=offsetless_zone)
    return value


OsloTimestamp = Annotated[datetime, BeforeValidator(partial(parse_timestamp, offsetless_zone=OSLO))]


def _readable_timestamp_or_none(zone: tzinfo, value: object) -> datetime | None:
    """An unreadable timestamp is an error of this field only: the callback leaves it out and notes it, and keeps
    the status it came with (EpromCallback)."""
    if value is None:
        return None
    try:
        parsed = parse_timestamp(value, offsetless_zone=zone)
        if isinstance(parsed, datetime):
            parsed.astimezone(UTC)  # .NET's unset DateTime (0001-01-01T00:00:00 in Oslo) is before year 1 in UTC
            return parsed
    except (ValueError, PydanticCustomError, OverflowError):
        pass
    raise PydanticCustomError("datetime", "must be a date-time such as 2027-03-01T00:00:00+01:00")


LenientOsloTimestamp = Annotated[datetime | None, BeforeValidator(partial(_readable_timestamp_or_none, OSLO))]
LenientUtcTimestamp = Annotated[datetime | None, BeforeValidator(partial(_readable_timestamp_or_none, UTC))]


def _as_pydantic_error[T](read: Callable[[object], T], error_type: str) -> Callable[[object], T]:
    """A reader of eprom.reading / eprom.orders as a pydantic validator: the same rule, in one place."""

    def validate(value: object) -> T:
        try:
            return read(value)
        except Unreadable as problem:
            raise PydanticCustomError(error_type, str(problem)) from None

    return validate


class _CamelModel(BaseModel):
    # defer_build: each function builds only the models it uses, on first use (the placer never needs the
    # callback models, nor the callback the order models); measured ~40 ms less cold start.
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, defer_build=True)


class _CallbackPart(_CamelModel):
    """Callback payloads: unknown keys ignored, key casing ignored (ePROM writes orderTimestampUTC and timestampUtc).
    Read by their wire names only: `api_key` is not apiKey (the answers object keeps what is not a key name)."""

    model_config = ConfigDict(extra="ignore", validate_by_name=False)

    @model_validator(mode="before")
    @classmethod
    def _match_keys_ignoring_case(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        aliases = {field.alias.lower(): field.alias for field in cls.model_fields.values() if field.alias}
        return {aliases.get(key.lower(), key) if isinstance(key, str) else key: v for key, v in data.items()}


def _json_text(value: object) -> object:
    """formData is a string holding JSON; should it come as JSON itself, keep it as JSON text."""
    return value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class FormDataWarning(_CallbackPart):
    field_name: str | None = None
    warning: str | None = None


class PatientInitiatedValues(_CallbackPart):
    form_id: str | None = None
    national_id: Annotated[str | None, Field(repr=False)] = None
    order_timestamp: LenientOsloTimestamp = None
    order_timestamp_utc: LenientUtcTimestamp = None


class FormOrderEvent(_CallbackPart):
    event_type: Any = None
    question_id: Any = None
    timestamp_utc: LenientUtcTimestamp = None


class FilledOutBy(_CallbackPart):
    filled_out_by_act_national_id: Annotated[str | None, Field(repr=False)] = None
    filled_out_by_act_type: Any = None


class EpromCallback(_CallbackPart):
    """Both kinds ePROM PUTs to /api/PromsFormOrder: an order status, or a form return (with answers)."""

    api_key: Annotated[SecretStr | None, Field(description="The ApiKey the order was placed with")] = None
    form_order_id: UUID
    form_order_status: LenientWireEnum[FormOrderStatus] = None
    form_order_status_error_code: LenientWireEnum[FormOrderStatusErrorCode] = None
    notification_channel: LenientWireEnum[NotificationChannel] = None
    timestamp: LenientOsloTimestamp = None
    timestamp_utc: LenientUtcTimestamp = None
    form_data: Annotated[str | None, BeforeValidator(_json_text), Field(repr=False)] = None
    form_data_warnings: list[FormDataWarning] | None = None
    signed_form_id: str | None = None
    scanned_paper_id: str | int | None = None
    is_patient_initiated: bool | None = None
    patient_initiated_values: PatientInitiatedValues | None = None
    form_order_event_log: list[FormOrderEvent] | None = None
    filled_out_by: FilledOutBy | None = None
    _unreadable_fields: tuple[str, ...] = PrivateAttr(default=())

    # Only formOrderId and apiKey must be readable. Any other field we cannot read is left out and named in
    # `unreadable_fields`: the callback is stored all the same (its answers object keeps the field as received).
    @model_validator(mode="wrap")
    @classmethod
    def _leave_out_unreadable_fields(
        cls, data: object, handler: ModelWrapValidatorHandler["EpromCallback"]
    ) -> "EpromCallback":
        try:
            return handler(data)
        except ValidationError as error:
            if not isinstance(data, dict):
                raise
            # Our documented names only, never an input key: locations start with the field's alias.
            side_fields = {field.alias for name, field in cls.model_fields.items() if name not in _MUST_BE_READABLE}
            unreadable = {str(detail["loc"][0]) for detail in error.errors() if detail["loc"]}
            if not unreadable or not unreadable <= side_fields:
                raise
            lowered = {name.lower() for name in unreadable}
            readable = {key: v for key, v in data.items() if not (isinstance(key, str) and key.lower() in lowered)}
            callback = handler(readable)
            callback._unreadable_fields = tuple(sorted(unreadable))
            return callback

    @property
    def unreadable_fields(self) -> tuple[str, ...]:
        """Names of the fields (ours, as documented) left out because their value had a shape we cannot read."""
        return self._unreadable_fields

    @property
    def status_time_utc(self) -> datetime | None:
        moment = self.timestamp_utc or self.timestamp
        return moment.astimezone(UTC) if moment else None

    @property
    def is_form_return(self) -> bool:
        return self.form_data is not None


_MUST_BE_READABLE = frozenset({"form_order_id", "api_key"})


class CallbackReply(BaseModel):
    """Our answer to ePROM: `{"success": true}`, or false with a short reason that never echoes the input."""

    success: bool
    reason: Annotated[str | None, Field(exclude_if=lambda reason: reason is None)] = None


# pydantic's messages of these kinds can quote part of the input ("found `x` at 1", a Python exception's text)
_MAY_QUOTE_INPUT = frozenset({"uuid_parsing", "value_error", "assertion_error"})


def describe_validation_error(error: ValidationError) -> str:
    return describe_errors(error.errors(include_input=False, include_url=False, include_context=False))


def describe_errors(errors: Sequence[Mapping[str, Any]]) -> str:
    """A reason for people and logs: which field and what is wrong, never the value itself; for an unknown field
    only where it was, never its name (key names are input too: `{"26073941651": "x"}`)."""
    parts = []
    unknown_fields: dict[str, int] = {}  # where -> how many
    for detail in errors:
        location = [str(part) for part in detail.get("loc", ())]
        if detail.get("type") == "extra_forbidden":  # the last part of its location is the unknown key itself
            where = f"in {'.'.join(location[:-1])}" if location[:-1] else "at the top level"
            unknown_fields[where] = unknown_fields.get(where, 0) + 1
            continue
        message = str(detail.get("msg", ""))
        if detail.get("type") in _MAY_QUOTE_INPUT:
            message = message.split(",")[0]
        parts.append(f"{'.'.join(location)}: {message}" if location else message)
    for where, count in unknown_fields.items():
        parts.append(f"an unknown field {where}" if count == 1 else f"{count} unknown fields {where}")
    return "; ".join(parts)
