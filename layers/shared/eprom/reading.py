"""Reading JSON by hand, without pydantic, for the functions whose cold start cannot carry it: pydantic's import
alone is about a quarter of a cold start's baseline (docs/performance.md). Used by the order and message readers
(eprom.orders, eprom.citizen_messages) and the privacy settings (eprom.privacy).

A problem names the field and what is wrong, never the value. Where a rule is one the published schemas have (they are
generated from pydantic models: buildtools/schemas.py), the words are pydantic's, so a refusal reads the same whichever
side made it; tests/unit/test_readers_match_models.py holds the readers to those models.
"""

import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import IntEnum
from typing import Any, cast
from zoneinfo import ZoneInfo

from eprom.national_id import contains_national_id, national_id_problem

OSLO = ZoneInfo("Europe/Oslo")  # ePROM writes a time without an offset in Norwegian time
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NOT_A_DATETIME = "Input should be a valid datetime"
# The range of a number of seconds (or milliseconds) pydantic reads as a time, and its words outside it
_LAST_SECOND_OF_9999 = 253_402_300_799
_FIRST_SECOND_OF_YEAR_0 = -62_167_219_200
_FIRST_SECOND_OF_YEAR_1 = -62_135_596_800
# The UUID forms pydantic reads (simple, hyphenated, braced, URN); Python's uuid.UUID would take hyphens anywhere
_GUID = re.compile(
    r"(?:urn:uuid:)?(?P<h>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"|\{(?P<b>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}|(?P<s>[0-9a-fA-F]{32})"
)
REFERENCE_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
# pydantic's JSON parser refuses objects and arrays nested deeper; Python's takes about 1,000 levels
MAX_NESTING = 200
TEST_MODE_NOT_ALLOWED = "testMode orders are not allowed in this stage (ePROM never returns their answers)"


class Unreadable(ValueError):
    """What cannot be read: the field and the problem, never the value."""


def json_object(data: bytes | str) -> dict[str, Any]:
    """A JSON object (nested too deep, or a number too long to read, is not JSON either)."""
    try:
        content = json.loads(data)
    except (ValueError, RecursionError):
        raise Unreadable("not JSON") from None
    if not isinstance(content, dict):
        raise Unreadable("not a JSON object")
    return content


def to_json(content: object) -> bytes:
    """JSON as pydantic writes it (compact, non-ASCII as it is): what a fingerprint or ePROM's request is made of."""
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def wire_name(name: str) -> str:
    """A field's name on the wire: camelCase."""
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def _python_name(wire: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", wire).lower()


_REQUIRED: Any = object()
# U+001C-U+001F are \s to Python's regex, not to pydantic's; to the patterns here they are any other character
_NOT_WHITESPACE = dict.fromkeys(range(0x1C, 0x20), 0x01)


class Fields:
    """One JSON object's fields, read one by one by their wire names (or their Python names, as the models take
    them), every problem collected ("where.field: what"); an unknown field is counted, never named (key names are
    input too: `{"26073941651": "x"}`)."""

    def __init__(self, data: Mapping[str, Any], problems: "Problems", where: str = "", *, ignore_case: bool) -> None:
        self._data = data
        self._problems = problems
        self._where = where
        self._known: set[str] = set()
        self._keys_ignoring_case = {key.lower(): key for key in data} if ignore_case else None

    def peek(self, name: str) -> object:
        """The field's value as it is, not read (None when absent)."""
        return self._data.get(name)

    def list_of[T](self, name: str, read: Callable[[Any], T], *, objects: bool = False) -> list[T]:
        """A list of one or more items, each read by `read` (a Fields reader when `objects`); an item's problems are
        named `name.<index>`."""

        def read_list(value: object) -> list[T]:
            if not isinstance(value, list):
                raise Unreadable("Input should be a valid array")
            items = []
            for index, item in enumerate(value):
                where = f"{self._where}{name}.{index}"
                try:
                    items.append(self._problems.object(item, read, where=f"{where}.") if objects else read(item))
                except Unreadable as problem:
                    self._problems.add(where, str(problem))
            if not value:
                raise Unreadable("List should have at least 1 item after validation, not 0")
            return items

        return self.read(name, read_list)

    def read[T](self, name: str, read: Callable[[Any], T], default: T = _REQUIRED) -> T:
        """The field `name` (wire name) as `read` makes it; the default when it is absent. A problem is noted and
        the result is then meaningless: Problems.check() raises before it is used."""
        python_name = _python_name(name)
        key = name if name in self._data else python_name if python_name in self._data else None
        if self._keys_ignoring_case is not None:
            key = self._keys_ignoring_case.get(name.lower())
        if key is None:
            if default is _REQUIRED:
                self._problems.add(self._where + name, "Field required")
            return cast(T, default if default is not _REQUIRED else None)
        self._known.add(key)  # the other name, given beside it, is an unknown field (as the models have it)
        try:
            return read(self._data[key])
        except Unreadable as problem:  # named as given (ePROM's casing aside), as the models name it
            self._problems.add(self._where + (name if self._keys_ignoring_case is not None else key), str(problem))
            return cast(T, None)

    def object[T](self, name: str, read: Callable[["Fields"], T], *, optional: bool = False) -> T | None:
        """A nested object, read by `read` from its Fields (None, when optional, is null or absent)."""

        def nested(value: object) -> T | None:
            if value is None and optional:
                return None
            return self._problems.object(value, read, where=f"{self._where}{name}.")

        return self.read(name, nested, None if optional else _REQUIRED)

    def unknown_ones(self) -> None:
        unknown = sum(1 for key in self._data if key not in self._known)
        if unknown:
            self._problems.unknown(self._where.removesuffix(".") or None, unknown)


class Problems:
    """Every problem of one message, in the order of its fields, unknown fields last (as describe_errors has it)."""

    def __init__(self, *, ignore_unknown: bool = False, ignore_case: bool = False) -> None:
        self._parts: list[str] = []
        self._unknown: dict[str | None, int] = {}
        self._ignore_unknown = ignore_unknown
        self._ignore_case = ignore_case

    def add(self, where: str, problem: str) -> None:
        self._parts.append(f"{where}: {problem}" if where else problem)

    def unknown(self, where: str | None, count: int) -> None:
        self._unknown[where] = self._unknown.get(where, 0) + count

    def object[T](self, value: object, read: Callable[[Fields], T], *, where: str = "") -> T:
        """`value` as an object read by `read`, its unknown fields counted."""
        if not isinstance(value, dict):
            raise Unreadable("Input should be an object")
        fields = Fields(value, self, where, ignore_case=self._ignore_case)
        result = read(fields)
        if not self._ignore_unknown:
            fields.unknown_ones()
        return result

    def check(self) -> None:
        parts = list(self._parts)
        for where, count in self._unknown.items():
            place = f"in {where}" if where else "at the top level"
            parts.append(f"an unknown field {place}" if count == 1 else f"{count} unknown fields {place}")
        if parts:
            raise Unreadable("; ".join(parts))


def read_json_object[T](
    body: str | bytes, read: Callable[[Fields], T], *, ignore_unknown: bool = False, ignore_case: bool = False
) -> T:
    """JSON holding one object, read by `read`; Unreadable with every problem (unknown fields are one unless
    `ignore_unknown`; `ignore_case`: its members' names in any casing, as ePROM writes them)."""
    try:
        content = json.loads(body)
    except RecursionError:
        raise Unreadable("Invalid JSON: nested too deep") from None
    except ValueError as error:  # its message names a position, never the content
        raise Unreadable(f"Invalid JSON: {error}") from None
    if problem := _beyond_pydantics_parser(content):
        raise Unreadable(f"Invalid JSON: {problem}")
    problems = Problems(ignore_unknown=ignore_unknown, ignore_case=ignore_case)
    result = problems.object(content, read)
    problems.check()
    return result


def _beyond_pydantics_parser(content: object) -> str | None:
    """What Python's JSON parser takes and pydantic's does not: objects and arrays nested more than MAX_NESTING deep,
    and a \\u escape that is half a character (a lone surrogate, which no UTF-8 text can hold). Walked without
    recursion."""
    pending = [(content, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            try:
                value.encode()
            except UnicodeEncodeError:
                return "a \\u escape is half a character (a lone surrogate)"
            continue
        children = [*value, *value.values()] if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > MAX_NESTING:
            return "nested too deep"
        pending.extend((child, depth + 1) for child in children)
    return None


# --- the readers of single values: each returns the value as read, or raises Unreadable -------------------------------


def text(value: object) -> str:
    if not isinstance(value, str):
        raise Unreadable("Input should be a valid string")
    return value


def non_empty(value: object) -> str:
    if not text(value):
        raise Unreadable("String should have at least 1 character")
    return cast(str, value)


def matching(pattern: str, *, max_length: int | None = None) -> Callable[[object], str]:
    compiled = re.compile(pattern)

    def read(value: object) -> str:
        if max_length is not None and len(text(value)) > max_length:
            raise Unreadable(f"String should have at most {max_length} characters")
        # as pydantic's regex: `$` is the end, not a newline before it, and U+001C-U+001F are not \s
        if not compiled.fullmatch(text(value).translate(_NOT_WHITESPACE)):
            raise Unreadable(f"String should match pattern '{pattern}'")
        return cast(str, value)

    return read


def optional[T](read: Callable[[object], T]) -> Callable[[object], T | None]:
    return lambda value: None if value is None else read(value)


def strict_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise Unreadable("Input should be a valid boolean")
    return value


def guid(value: object) -> uuid.UUID:
    if not isinstance(value, str):
        raise Unreadable("UUID input should be a string, bytes or UUID object")
    found = _GUID.fullmatch(value)
    if not found:
        raise Unreadable("Input should be a valid UUID")
    return uuid.UUID(found.group("h") or found.group("b") or found.group("s"))


def code[E: IntEnum](enum_cls: type[E], value: object) -> E:
    """A code by its name (any case), its number, or its number in a string: ePROM writes enums every way."""
    if isinstance(value, enum_cls):
        return value
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str):
        stripped = value.strip()
        digits = stripped.removeprefix("-")
        if digits.isascii() and digits.isdigit() and len(digits) < 10:  # "٢" and "²" are digits to Python only
            number = int(stripped)
        for member in enum_cls:
            if member.name.lower() == stripped.lower():
                return member
    for member in enum_cls:
        if member.value == number:
            return member
    raise Unreadable(f"must be one of {', '.join(member.name for member in enum_cls)} (or their numbers)")


def timestamp(value: object, *, offsetless_zone: tzinfo) -> datetime:
    """All of ePROM's timestamp shapes (a value without offset is in `offsetless_zone`), and a number of seconds
    (or milliseconds, above 2e10) since 1970 as pydantic reads one."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())  # 3.13 takes 7 fractional digits, 'Z' and ' '
        except ValueError:
            # fromisoformat's message quotes the input, which may be anything (a national id, say)
            raise Unreadable("must be a date-time such as 2027-03-01T00:00:00+01:00") from None
        return moment.replace(tzinfo=offsetless_zone) if moment.tzinfo is None else moment
    if isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value):
        milliseconds = abs(value) > 2e10
        seconds = value / 1000 if milliseconds else value
        if seconds > _LAST_SECOND_OF_9999:
            raise Unreadable(f"{_NOT_A_DATETIME}, dates after 9999 are not supported as unix timestamps")
        if seconds < _FIRST_SECOND_OF_YEAR_0:
            raise Unreadable(f"{_NOT_A_DATETIME}, dates before 0000 are not supported as unix timestamps")
        if seconds < _FIRST_SECOND_OF_YEAR_1:
            raise Unreadable(f"{_NOT_A_DATETIME}, year 0 is out of range")
        return _EPOCH + (timedelta(milliseconds=value) if milliseconds else timedelta(seconds=seconds))
    raise Unreadable(_NOT_A_DATETIME)


def iso_time(moment: datetime) -> str:
    """A time as pydantic writes it: ISO 8601, UTC as Z, the offset in whole minutes (its seconds dropped)."""
    written = moment.replace(tzinfo=None).isoformat()
    offset = moment.utcoffset()
    if not offset:
        return written + "Z"
    minutes = int(abs(offset.total_seconds())) // 60
    return f"{written}{'-' if offset.total_seconds() < 0 else '+'}{minutes // 60:02d}:{minutes % 60:02d}"


def national_id(value: object, *, allow_synthetic: bool) -> str:
    problem = national_id_problem(text(value), allow_synthetic=allow_synthetic)
    if problem:
        raise Unreadable(problem)
    return cast(str, value)


@dataclass(frozen=True)
class StageRules:
    """What a stage allows in upstream's orders and messages (ALLOW_SYNTHETIC_NATIONAL_IDS, ALLOW_TEST_MODE_ORDERS),
    as the readers of the fields they govern."""

    allow_synthetic_national_ids: bool
    allow_test_mode_orders: bool

    def national_id(self, value: object) -> str:
        return national_id(value, allow_synthetic=self.allow_synthetic_national_ids)

    def test_mode(self, value: object) -> bool:
        if strict_bool(value) and not self.allow_test_mode_orders:
            raise Unreadable(TEST_MODE_NOT_ALLOWED)
        return bool(value)


def reference(value: object) -> str:
    """An orderReference or messageReference: logged on every line and travelling in events, so never a person's
    id."""
    matching(REFERENCE_PATTERN)(value)
    if contains_national_id(cast(str, value)):
        raise Unreadable("must not contain a national id (it is logged and shared)")
    return cast(str, value)
