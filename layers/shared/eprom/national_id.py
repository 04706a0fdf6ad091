"""Norwegian national ids as ePROM accepts them: fødselsnummer and D-nummer (rules in docs/national-id.md).

`national_id_problem` returns why an id is refused, or None when it is accepted. It never raises and never
puts the id itself into the reason, so reasons are safe for logs and the dead-letter queue.

What "looks like a national id" in other text (ePROM's error messages, orderReferences) is decided here once, on
one reading of the text into groups of digits (docs/national-id.md, "National ids in other text"): `redact` masks
for display every run of eleven digits or more, however they are written; `contains_national_id` tells whether a
valid id stands alone in the text, which is what refuses an orderReference.
"""

import re
import unicodedata
from calendar import isleap
from dataclasses import dataclass

_K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
# Numbers issued from 2032 may have a k1 whose weighted remainder is 0, 1, 2 or 3; older numbers use 0 only.
_K1_ALLOWED_REMAINDERS = frozenset({0, 1, 2, 3})

_NOT_SUPPORTED = "is not supported as national ID. The national ID must be either Norsk fødselsnummer or D-nummer."
H_NUMMER_REFUSED = f"H-nummer {_NOT_SUPPORTED}"
FH_NUMMER_REFUSED = f"FH-nummer {_NOT_SUPPORTED}"
SYNTHETIC_REFUSED = "synthetic test ids (Tenor or SyntPop) are not allowed in this stage"

_HEX = "[0-9A-Fa-f]"
# A GUID standing alone (no hex character beside it) is an id of a thing, never read as a person's: its last group
# may hold eleven digits by chance. Written with hyphens it is kept by both readings; as 32 hex characters (.NET's
# "N" format, Python's uuid.hex) only refusal skips it, display masks digits inside it as anywhere else.
_GUID = re.compile(rf"(?<!{_HEX}){_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}(?!{_HEX})")
_BARE_GUID = re.compile(rf"(?<!{_HEX}){_HEX}{{32}}(?!{_HEX})")
_GUIDS_OF_EITHER_FORM = re.compile(f"{_GUID.pattern}|{_BARE_GUID.pattern}")
# What people write between an id's digits ("260739 41651", "26.07.39 41651", "2607-3941651", "26/07/39 41651"):
# white space, dashes, and these marks. Format characters (the soft hyphen, zero-width space, direction marks) and
# combining marks are invisible and skipped; any other character ends a group of digits.
_SEPARATOR_MARKS = frozenset("._:/'\u2019\u00b7")  # and the right single quotation mark, the middle dot
# Display joins groups of digits across up to this many separators ("26.07.39 - 41651"); refusal across exactly one.
_DISPLAY_SEPARATORS = 3
_ID_DIGITS = 11


def national_id_problem(value: object, *, allow_synthetic: bool) -> str | None:
    if not isinstance(value, str) or len(value) != 11 or not value.isascii() or not value.isdigit():
        return "must be exactly 11 digits"
    digits = [int(c) for c in value]
    if digits[0] >= 8:
        return FH_NUMMER_REFUSED
    if not _control_digits_valid(digits):
        return "control digits do not match a fødselsnummer or D-nummer"

    day, month, year = int(value[0:2]), int(value[2:4]), int(value[4:6])
    if 41 <= month <= 52:
        return H_NUMMER_REFUSED
    if 66 <= month <= 77 or 81 <= month <= 92:
        if not allow_synthetic:
            return SYNTHETIC_REFUSED
        month -= 65 if month <= 77 else 80
    if day > 40:  # D-nummer: day + 40
        day -= 40
    if not _is_calendar_day(day, month, year):
        return "birth date part is not a calendar day"
    return None


def _control_digits_valid(digits: list[int]) -> bool:
    sum1 = sum(w * d for w, d in zip(_K1_WEIGHTS, digits[:9], strict=True))
    if (sum1 + digits[9]) % 11 not in _K1_ALLOWED_REMAINDERS:
        return False
    sum2 = sum(w * d for w, d in zip(_K2_WEIGHTS, digits[:10], strict=True))
    return (sum2 + digits[10]) % 11 == 0


def _is_calendar_day(day: int, month: int, two_digit_year: int) -> bool:
    if not 1 <= month <= 12 or day < 1:
        return False
    # The century is unknown (and after 2032 the individnummer no longer tells it): 29 February is a
    # real day when the year is a leap year in some century, which 2000 makes true for every YY % 4 == 0.
    days_in_month = (31, 29 if isleap(2000 + two_digit_year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    return day <= days_in_month[month - 1]


@dataclass
class _Group:
    """Digits in a row (invisible characters between them skipped), as their values 0-9."""

    start: int  # index of the first digit in the text
    end: int  # index after the last digit
    digits: str
    separators_before: int | None  # separators between the group before and this one; None: not joined to it


def _digit_groups(text: str, *, skip: re.Pattern[str] | None = None) -> list[_Group]:
    """The groups of digits of `text`, each knowing how it is joined to the one before. A digit is any character with
    a digit value: of any script, full-width, superscript, circled. `skip`: spans (GUIDs) read as neither digits nor
    separators."""
    skipped = {index for match in (skip.finditer(text) if skip else ()) for index in range(*match.span())}
    groups: list[_Group] = []
    gap: int | None = None  # separators since the last digit (0: right after it); None: something else came
    for index, char in enumerate(text):
        value = None if index in skipped else unicodedata.digit(char, None)
        if value is not None:
            if gap == 0:
                groups[-1].digits += str(value)
                groups[-1].end = index + 1
            else:
                groups.append(_Group(index, index + 1, str(value), gap))
            gap = 0
        elif index in skipped:
            gap = None
        elif unicodedata.category(char) in ("Cf", "Mn", "Me"):
            continue
        elif char.isspace() or char in _SEPARATOR_MARKS or unicodedata.category(char) == "Pd":
            gap = None if gap is None else gap + 1
        else:
            gap = None
    return groups


def _chains(groups: list[_Group], *, most_separators: int) -> list[list[_Group]]:
    """The groups joined into runs: each group to the one before when at most `most_separators` stand between."""
    chains: list[list[_Group]] = []
    for group in groups:
        joined = group.separators_before is not None and group.separators_before <= most_separators
        if joined and chains:
            chains[-1].append(group)
        else:
            chains.append([group])
    return chains


def redact(text: str, *, mask: str = "[redacted]") -> str:
    """`text` for display, with every run of eleven digits or more replaced by `mask`, however the digits are written
    (any script, superscripts, separators between them, invisible characters inside) and whatever stands around
    them; a GUID written with hyphens standing alone is kept. Valid or not: a mistyped id is still personal data."""
    spans = [
        (chain[0].start, chain[-1].end)
        for chain in _chains(_digit_groups(text, skip=_GUID), most_separators=_DISPLAY_SEPARATORS)
        if sum(len(group.digits) for group in chain) >= _ID_DIGITS
    ]
    for start, end in reversed(spans):
        text = text[:start] + mask + text[end:]
    return text


def contains_national_id(text: str) -> bool:
    """Whether a valid national id (a synthetic test id included) stands alone in `text`: eleven digits in a row, or
    written with one separator between some of them ("260739 41651", "26.07.39-41651", "2607-3941651"), with no
    digit right before or after. Eleven digits inside a longer run of digits are an upstream's number (an epoch in
    milliseconds, a database id, a date and a counter), never read as an id; nor is anything inside a GUID."""
    for chain in _chains(_digit_groups(text, skip=_GUIDS_OF_EITHER_FORM), most_separators=1):
        for first in range(len(chain)):
            digits = ""
            for group in chain[first:]:
                digits += group.digits
                if len(digits) >= _ID_DIGITS:
                    break
            if len(digits) == _ID_DIGITS and national_id_problem(digits, allow_synthetic=True) is None:
                return True
    return False
