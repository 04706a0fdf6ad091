"""Privacy settings (PVK): the contract of PrivacySettingsFunction (architecture.md, "Privacy settings (PVK)") and
of ePROM's three PVK calls and its replication callback (eprom-contract.md §8).

Plain dataclasses read by hand, no pydantic: pydantic's import alone is about a quarter of a cold start's baseline,
and this function's path needs none of it (docs/performance.md). The published JSON Schemas are still made from these
classes (pydantic reads a dataclass's `__pydantic_config__`, a plain dict here; buildtools/schemas.py), and the tests
hold the readers to the schemas.

Requests from upstream are strict (a typo must not pass silently; a refusal names the field, never its value).
ePROM's answers are read liberally (names or numbers, key casing ignored, unknown members ignored, a time that cannot
be read left out). National ids travel in requests and in ePROM's answers, never in a reply, a reason or a log line.
"""

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from enum import IntEnum
from typing import Any, ClassVar, Literal, Self

from eprom.reading import OSLO, Unreadable, code, guid, json_object, national_id
from eprom.reading import wire_name as camel_case

__all__ = ["Unreadable", "code", "json_object"]  # read from here by the PVK callback and the tests


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


def wire_name(name: str) -> str:
    """A field's name on the wire: camelCase (`error_class` is `class`)."""
    return "class" if name == "error_class" else camel_case(name)


# How pydantic reads these dataclasses when buildtools makes their JSON Schemas (a ConfigDict, as a plain dict)
_REQUEST_SCHEMA: dict[str, Any] = {"alias_generator": wire_name, "extra": "forbid"}
_REPLY_SCHEMA: dict[str, Any] = {"alias_generator": wire_name}


def _as_json(value: object) -> dict[str, Any]:
    return {wire_name(field.name): getattr(value, field.name) for field in fields(value)}  # type: ignore[arg-type]


# --- Requests and replies of PrivacySettingsFunction (upstream, Lambda Invoke) ----------------------------------------


@dataclass(frozen=True)
class GetRequest:
    """A person's setting of one definition."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _REQUEST_SCHEMA
    operation: Literal["get"]
    national_id: str
    type: PvkType
    pvk_id: uuid.UUID

    def __repr__(self) -> str:  # no national id in a traceback or a log line
        return f"{type(self).__name__}(pvk_id={self.pvk_id}, type={self.type.name})"


@dataclass(frozen=True, repr=False)
class SetRequest:
    """Set a person's setting of one definition to `status`: the state it names, never a toggle, so sending it again
    changes nothing more."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _REQUEST_SCHEMA
    operation: Literal["set"]
    national_id: str
    type: PvkType
    pvk_id: uuid.UUID
    status: PvkStatus

    __repr__ = GetRequest.__repr__


@dataclass(frozen=True)
class ListRequest:
    """Every resident with an active setting of the definition, written to FormResultsBucket."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _REQUEST_SCHEMA
    operation: Literal["list"]
    pvk_id: uuid.UUID


type PrivacyRequest = GetRequest | SetRequest | ListRequest
# Each operation's fields (wire names) and how each is read
_OPERATIONS = {"get": ("nationalId", "type", "pvkId"), "set": ("nationalId", "type", "pvkId", "status"),
               "list": ("pvkId",)}  # fmt: skip


def parse_request(payload: object, *, allow_synthetic_national_ids: bool) -> PrivacyRequest:
    """The request of one invocation; Unreadable names every field that is wrong (an unknown one only by where it
    is: key names are input too)."""
    if not isinstance(payload, dict):
        raise Unreadable("the request must be a JSON object")
    operation = payload.get("operation")
    if not isinstance(operation, str) or operation not in _OPERATIONS:
        raise Unreadable("operation: must be get, set or list")
    readers: dict[str, Callable[[object], object]] = {
        "nationalId": lambda value: national_id(value, allow_synthetic=allow_synthetic_national_ids),
        "type": lambda value: code(PvkType, value),
        "status": lambda value: code(PvkStatus, value),
        "pvkId": _guid,
    }
    read, problems = {}, []
    for name in _OPERATIONS[operation]:
        try:
            if name not in payload:
                raise Unreadable("required")
            read[name] = readers[name](payload[name])
        except Unreadable as problem:
            problems.append(f"{name}: {problem}")
    unknown = len(set(payload) - {"operation", *_OPERATIONS[operation]})
    if unknown:
        problems.append(
            "an unknown field at the top level" if unknown == 1 else f"{unknown} unknown fields at the top level"
        )
    if problems:
        raise Unreadable("; ".join(problems))
    if operation == "list":
        return ListRequest("list", read["pvkId"])  # type: ignore[arg-type]
    person = (read["nationalId"], read["type"], read["pvkId"])
    if operation == "get":
        return GetRequest("get", *person)  # type: ignore[arg-type]
    return SetRequest("set", *person, read["status"])  # type: ignore[arg-type]


def _guid(value: object) -> uuid.UUID:
    try:
        return guid(value)
    except Unreadable:
        raise Unreadable("must be a GUID") from None


@dataclass(frozen=True)
class PrivacySetting:
    """The reply to get: the person's setting of the definition as PVK has it (never the national id)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _REPLY_SCHEMA
    type: str | None
    pvk_id: str | None
    name: str | None
    status: str | None
    sequence_number: int | None
    created_date_time_offset: str | None
    last_changed_date_time_offset: str | None

    def as_json(self) -> dict[str, Any]:
        return _as_json(self)


@dataclass(frozen=True)
class SetReply:
    """The reply to set: whether this request changed the setting. False also when it was as requested already,
    and when an earlier attempt of this same request (whose answer was lost) made the change: either way the
    setting is now as requested."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _REPLY_SCHEMA
    changed: bool

    def as_json(self) -> dict[str, Any]:
        return _as_json(self)


@dataclass(frozen=True)
class ListReply:
    """The reply to list: where the NDJSON object of the definition's residents is (one JSON object per line:
    nationalId, sequenceNumber, createdDateTimeOffset, lastChangedDateTimeOffset), and how many lines it has."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _REPLY_SCHEMA
    bucket: str
    key: str
    version_id: str | None
    sha256: str
    count: int

    def as_json(self) -> dict[str, Any]:
        return _as_json(self)


@dataclass(frozen=True)
class ErrorDetail:
    __pydantic_config__: ClassVar[dict[str, Any]] = _REPLY_SCHEMA
    error_class: ErrorClass
    reason: str  # human readable; never a value of the request or personal data


@dataclass(frozen=True)
class ErrorReply:
    """A request that was not carried out, and why."""

    __pydantic_config__: ClassVar[dict[str, Any]] = _REPLY_SCHEMA
    error: ErrorDetail

    def as_json(self) -> dict[str, Any]:
        return {"error": _as_json(self.error)}


type PrivacyReply = PrivacySetting | SetReply | ListReply | ErrorReply


def error_reply(error_class: ErrorClass, reason: str) -> ErrorReply:
    return ErrorReply(ErrorDetail(error_class, reason))


def eprom_body(request: GetRequest | SetRequest) -> bytes:
    """The body of ePROM's get or set: its own fields (not our `operation`), codes as numbers (which ePROM's .NET
    binding always reads; names only with a converter the page does not promise for every field)."""
    body: dict[str, object] = {
        "nationalId": request.national_id,
        "type": request.type.value,
        "pvkId": str(request.pvk_id),
    }
    if isinstance(request, SetRequest):
        body["status"] = request.status.value
    return json.dumps(body).encode()


def page_request(pvk_id: uuid.UUID, paging_reference: int) -> bytes:
    return json.dumps({"pvkId": str(pvk_id), "pagingReference": paging_reference}).encode()


# --- ePROM's answers (eprom-contract.md §8), read liberally -----------------------------------------------------------


def _object(data: bytes | str) -> dict[str, Any]:
    """A JSON object with its member names in lower case (ePROM's casing varies: Hemit's list example writes
    NationalId and SequenceNumber)."""
    return {name.lower(): value for name, value in json_object(data).items()}


def _code_or_none[E: IntEnum](enum_cls: type[E], value: object) -> E | None:
    """A code we cannot read is left out of the reply rather than failing the whole answer."""
    try:
        return None if value is None else code(enum_cls, value)
    except Unreadable:
        return None


def _time_or_none(value: object) -> str | None:
    """ePROM's DateTimeOffset as ISO 8601 with its offset (Norwegian time when it has none); one we cannot read is
    left out rather than failing the whole answer."""
    try:
        moment = datetime.fromisoformat(value.strip()) if isinstance(value, str) else None
    except ValueError:
        return None
    if moment is None:
        return None
    return (moment.replace(tzinfo=OSLO) if moment.tzinfo is None else moment).isoformat()


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class EpromPrivacySetting:
    """ePROM's answer to getpersonverninnstilling; its echo of the national id is not kept."""

    setting: PrivacySetting

    @classmethod
    def from_json(cls, data: bytes) -> Self:
        answer = _object(data)
        pvk_type, status = _code_or_none(PvkType, answer.get("type")), _code_or_none(PvkStatus, answer.get("status"))
        try:
            pvk_id = str(uuid.UUID(answer["id"])) if isinstance(answer.get("id"), str) else None
        except ValueError:
            pvk_id = None
        return cls(PrivacySetting(
            type=pvk_type.name if pvk_type is not None else None,
            pvk_id=pvk_id,
            name=_str_or_none(answer.get("name")),
            status=status.name if status is not None else None,
            sequence_number=_int_or_none(answer.get("sequencenumber")),
            created_date_time_offset=_time_or_none(answer.get("createddatetimeoffset")),
            last_changed_date_time_offset=_time_or_none(answer.get("lastchangeddatetimeoffset")),
        ))  # fmt: skip


@dataclass(frozen=True)
class EpromSetAnswer:
    """ePROM's answer to setpersonverninnstilling."""

    instans_endret: InstansEndret

    @classmethod
    def from_json(cls, data: bytes) -> Self:
        try:
            return cls(code(InstansEndret, _object(data).get("instansendret")))
        except Unreadable as problem:
            raise Unreadable(f"instansEndret: {problem}") from None


@dataclass(frozen=True)
class ResidentsPage:
    """ePROM's answer to get-residents-active-pi-for-definition: a page of residents (as ePROM wrote them), and the
    reference of the next page (0: there is none)."""

    paging_reference: int
    residents: list[dict[str, Any]]

    @classmethod
    def from_json(cls, data: bytes) -> Self:
        page = _object(data)
        reference = page.get("pagingreference")
        if reference is None:
            reference = 0
        if isinstance(reference, str) and reference.strip().isascii() and reference.strip().isdigit():
            reference = int(reference)  # PVK's own API writes it as a string
        if not isinstance(reference, int) or isinstance(reference, bool) or reference < 0:
            raise Unreadable("pagingReference: not a number of 0 or more")
        residents = page.get("personverninnstillinger") or []
        if not isinstance(residents, list) or not all(isinstance(resident, dict) for resident in residents):
            raise Unreadable("personvernInnstillinger: not a list of objects")
        return cls(reference, residents)

    def ndjson(self) -> Iterator[bytes]:
        """Each resident as one line of the list object: nationalId, sequenceNumber, createdDateTimeOffset,
        lastChangedDateTimeOffset (ePROM's casing read liberally)."""
        for index, resident in enumerate(self.residents):
            entry = {name.lower(): value for name, value in resident.items()}
            national_id = entry.get("nationalid")
            if not isinstance(national_id, str) or not national_id:
                raise Unreadable(f"personvernInnstillinger[{index}].NationalId: missing")
            line = {"nationalId": national_id, "sequenceNumber": _int_or_none(entry.get("sequencenumber")),
                    "createdDateTimeOffset": _time_or_none(entry.get("createddatetimeoffset")),
                    "lastChangedDateTimeOffset": _time_or_none(entry.get("lastchangeddatetimeoffset"))}  # fmt: skip
            yield json.dumps(line, separators=(",", ":")).encode() + b"\n"


# --- The replication callback (PUT /api/PersonvernInnstilling) --------------------------------------------------------

_STATUS_CODE = re.compile(CHANGE_STATUS_PATTERN)
_ELEVEN_DIGITS = re.compile(r"^[0-9]{11}$")  # not \d, which takes any Unicode digit


@dataclass(frozen=True)
class PrivacyChange:
    """A change a person made in PVK (Helsenorge), as ePROM forwards it: `{nationalId, id, name, status}` (member
    names in any case). The national id is only checked to be one: the change is stored as received."""

    pvk_id: str
    name: str | None
    status: str

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Self:
        change = {name.lower(): value for name, value in body.items() if isinstance(name, str)}
        problems = []
        if not (isinstance(change.get("nationalid"), str) and _ELEVEN_DIGITS.match(change["nationalid"])):
            problems.append("nationalId: must be 11 digits")
        try:
            pvk_id = str(uuid.UUID(change["id"])) if isinstance(change.get("id"), str) else None
        except ValueError:
            pvk_id = None
        if pvk_id is None:
            problems.append("id: must be a GUID")
        name = change.get("name")
        if name is not None and not (isinstance(name, str) and len(name) <= 500):
            problems.append("name: must be text of at most 500 characters")
        status = change.get("status")
        if not (isinstance(status, str) and _STATUS_CODE.match(status)):
            problems.append("status: must be a Volven 7609 code (RES, IRES, SAM, ISAM)")
        if problems:
            raise Unreadable("; ".join(problems))
        return cls(pvk_id=str(pvk_id), name=name, status=str(status))
