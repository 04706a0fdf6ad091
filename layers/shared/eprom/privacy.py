"""Privacy settings (PVK): the contract of PrivacySettingsFunction (architecture.md, "Privacy settings (PVK)") and
of ePROM's three PVK calls and its replication callback (eprom-contract.md §8), as pydantic models.

Requests from upstream are strict (a typo must not pass silently; a refusal names the field, never its value).
ePROM's answers are read liberally (names or numbers, key casing ignored, unknown members ignored), as its callbacks
are. National ids travel in requests and in ePROM's answers, never in a reply, a reason or a log line.
"""

import json
from datetime import datetime
from enum import IntEnum
from functools import partial
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from eprom.models import (
    OSLO,
    NationalId,
    WireEnum,
    _CallbackPart,
    describe_validation_error,
    enum_from_wire,
    parse_timestamp,
)


class PvkType(IntEnum):
    """`type` of a privacy setting: a reservation against registration, or a consent."""

    Reservasjon = 0
    Samtykke = 1


class PvkStatus(IntEnum):
    """`status` of a privacy setting in get and set (not the Volven codes of the replication callback)."""

    IkkeAktiv = 0
    Aktiv = 1


class InstansEndret(IntEnum):
    """ePROM's answer to a set: whether the setting changed."""

    IkkeEndret = 0
    Endret = 1


# The replication callback's `status`: Volven code list 7609. A code ePROM adds later is stored and announced as it
# comes, as long as it is such a code (capital letters): nothing else can ride in it into an event.
CHANGE_STATUS_CODES = {
    "RES": "reserved against registration",
    "IRES": "reservation withdrawn",
    "SAM": "consent given",
    "ISAM": "consent withdrawn",
}
CHANGE_STATUS_PATTERN = r"^[A-Z]{1,10}$"

type ErrorClass = Literal["InvalidRequest", "RefusedByEprom", "Unauthorized", "PvkUnavailable", "Transient"]


def _timestamp_or_none(value: object) -> datetime | None:
    """ePROM's DateTimeOffset values; one we cannot read is left out rather than failing the whole answer."""
    try:
        parsed = parse_timestamp(value, offsetless_zone=OSLO)
    except PydanticCustomError:
        return None
    return parsed if isinstance(parsed, datetime) else None


LenientTimestamp = Annotated[datetime | None, BeforeValidator(_timestamp_or_none)]


# --- Requests and replies of PrivacySettingsFunction (upstream, Lambda Invoke) -------------------------------------


class _Contract(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        frozen=True,
        defer_build=True,  # built by the functions that use them, on first use
    )


class _Request(_Contract):
    model_config = ConfigDict(extra="forbid", validate_by_name=False)  # pvk_id is a typo of pvkId, not a spelling


class ListRequest(_Request):
    """Every resident with an active setting of the definition, written to FormResultsBucket."""

    operation: Literal["list"]
    pvk_id: UUID = Field(description="The reservation or consent definition (registered on the ordering system).")


class GetRequest(_Request):
    """A person's setting of one definition."""

    operation: Literal["get"]
    national_id: Annotated[NationalId, Field(repr=False, description="The person's fødselsnummer or D-nummer.")]
    type: WireEnum[PvkType] = Field(description="Reservasjon (0) or Samtykke (1), by name or number.")
    pvk_id: UUID = Field(description="The reservation or consent definition (registered on the ordering system).")


class SetRequest(GetRequest):
    """Set a person's setting of one definition to `status`: the state it names, never a toggle, so sending it again
    changes nothing more."""

    operation: Literal["set"]  # type: ignore[assignment]
    status: WireEnum[PvkStatus] = Field(description="IkkeAktiv (0) or Aktiv (1), by name or number.")


type PrivacyRequest = GetRequest | SetRequest | ListRequest
_REQUESTS: dict[str, type[GetRequest] | type[SetRequest] | type[ListRequest]] = {
    "get": GetRequest,
    "set": SetRequest,
    "list": ListRequest,
}


class InvalidRequest(Exception):
    """Why a request cannot be read: which field and what is wrong, never its value."""


def parse_request(payload: object, *, allow_synthetic_national_ids: bool) -> PrivacyRequest:
    """The request of one invocation; InvalidRequest names what is wrong."""
    if not isinstance(payload, dict):
        raise InvalidRequest("the request must be a JSON object")
    model = _REQUESTS.get(payload["operation"]) if isinstance(payload.get("operation"), str) else None
    if model is None:
        raise InvalidRequest("operation: must be get, set or list")
    try:
        return model.model_validate(payload, context={"allow_synthetic_national_ids": allow_synthetic_national_ids})
    except ValidationError as error:
        raise InvalidRequest(describe_validation_error(error)) from None


class PrivacySetting(_Contract):
    """The reply to get: the person's setting of the definition (never the national id)."""

    type: WireEnum[PvkType] | None = Field(description="Reservasjon or Samtykke.")
    pvk_id: UUID | None = Field(description="The definition.")
    name: str | None = Field(description="The definition's name, e.g. Reservasjon mot registrering.")
    status: WireEnum[PvkStatus] | None = Field(description="Aktiv: the reservation or consent is in force.")
    sequence_number: int | None = Field(description="PVK's sequence number of the setting: higher is later.")
    created_date_time_offset: datetime | None
    last_changed_date_time_offset: datetime | None


class SetReply(_Contract):
    """The reply to set: whether this request changed the setting. False also when it was as requested already,
    and when an earlier attempt of this same request (whose answer was lost) made the change: either way the
    setting is now as requested."""

    changed: bool


class ListReply(_Contract):
    """The reply to list: where the NDJSON object of the definition's residents is (one JSON object per line:
    nationalId, sequenceNumber, createdDateTimeOffset, lastChangedDateTimeOffset)."""

    bucket: str
    key: str
    version_id: str | None
    sha256: str
    count: int = Field(description="The number of lines (residents) in the object.")


class ErrorDetail(BaseModel):
    model_config = ConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    error_class: ErrorClass = Field(alias="class")
    reason: str = Field(description="Human readable; never contains a value of the request or personal data.")


class ErrorReply(BaseModel):
    """A request that was not carried out, and why."""

    model_config = ConfigDict(frozen=True)

    error: ErrorDetail


type PrivacyReply = PrivacySetting | SetReply | ListReply | ErrorReply


def error_reply(error_class: ErrorClass, reason: str) -> ErrorReply:
    return ErrorReply(error=ErrorDetail(error_class=error_class, reason=reason))


# --- ePROM's answers (eprom-contract.md §8) --------------------------------------------------------------------------


def _wire_enum_or_none[E: IntEnum](enum_cls: type[E], value: object) -> E | None:
    """A code we cannot read is left out of the reply rather than failing the whole answer."""
    try:
        return None if value is None else enum_from_wire(enum_cls, value)
    except PydanticCustomError:
        return None


class EpromPrivacySetting(_CallbackPart):
    """ePROM's answer to getpersonverninnstilling (its echo of the national id is not read)."""

    type: Annotated[PvkType | None, BeforeValidator(partial(_wire_enum_or_none, PvkType))] = None
    id: UUID | None = None
    name: str | None = None
    status: Annotated[PvkStatus | None, BeforeValidator(partial(_wire_enum_or_none, PvkStatus))] = None
    sequence_number: int | None = None
    created_date_time_offset: LenientTimestamp = None
    last_changed_date_time_offset: LenientTimestamp = None

    def as_reply(self) -> PrivacySetting:
        return PrivacySetting(
            type=self.type,
            pvk_id=self.id,
            name=self.name,
            status=self.status,
            sequence_number=self.sequence_number,
            created_date_time_offset=self.created_date_time_offset,
            last_changed_date_time_offset=self.last_changed_date_time_offset,
        )


class EpromSetAnswer(_CallbackPart):
    """ePROM's answer to setpersonverninnstilling."""

    instans_endret: WireEnum[InstansEndret]


class Resident(_CallbackPart):
    """One resident of a definition's list: Hemit's example writes NationalId and SequenceNumber capitalised (the
    keys are matched ignoring case). Written to the list object as one line, camelCase."""

    model_config = ConfigDict(serialize_by_alias=True)

    national_id: Annotated[str, StringConstraints(min_length=1), Field(repr=False)]
    sequence_number: int | None = None
    created_date_time_offset: LenientTimestamp = None
    last_changed_date_time_offset: LenientTimestamp = None

    def ndjson_line(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode() + b"\n"


def _paging_reference(value: object) -> object:
    """A number, or a number written as text (PVK's own API writes it as a string); null is the end."""
    if value is None:
        return 0
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value)
    return value


class ResidentsPage(_CallbackPart):
    """ePROM's answer to get-residents-active-pi-for-definition: a page, and the reference of the next (0: none)."""

    paging_reference: Annotated[int, BeforeValidator(_paging_reference), Field(ge=0)]
    personvern_innstillinger: list[Resident] = Field(default_factory=list)


def page_request(pvk_id: UUID, paging_reference: int) -> bytes:
    return json.dumps({"pvkId": str(pvk_id), "pagingReference": paging_reference}).encode()


def eprom_body(request: GetRequest | SetRequest) -> bytes:
    """The body of ePROM's get or set: its own fields (not our `operation`), codes as numbers (which ePROM's .NET
    binding always reads; names only with a converter the page does not promise for every field)."""
    body: dict[str, object] = {
        "nationalId": request.national_id,
        "type": int(request.type),
        "pvkId": str(request.pvk_id),
    }
    if isinstance(request, SetRequest):
        body["status"] = int(request.status)
    return json.dumps(body).encode()


# --- The replication callback (PUT /api/PersonvernInnstilling) -------------------------------------------------------


class PrivacyChange(_CallbackPart):
    """A change a person made in PVK (Helsenorge), as ePROM forwards it: `{nationalId, id, name, status}`."""

    national_id: Annotated[str, StringConstraints(pattern=r"^[0-9]{11}$"), Field(repr=False)]
    id: UUID
    name: Annotated[str | None, StringConstraints(max_length=500)] = None
    status: Annotated[str, StringConstraints(pattern=CHANGE_STATUS_PATTERN)]


def as_json_value(reply: PrivacyReply) -> dict[str, Any]:
    return reply.model_dump(mode="json", by_alias=True)
