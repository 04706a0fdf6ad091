"""Norwegian national ids as ePROM accepts them: fødselsnummer and D-nummer (rules in docs/national-id.md).

`national_id_problem` returns why an id is refused, or None when it is accepted. It never raises and never
puts the id itself into the reason, so reasons are safe for logs and the dead-letter queue.

What "looks like a national id" in other text (ePROM's error messages, orderReferences) is decided here once:
`redact` masks it, `contains_national_id` tells whether one of those runs is a real id.
"""

import re
from calendar import isleap

_K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
# Numbers issued from 2032 may have a k1 whose weighted remainder is 0, 1, 2 or 3; older numbers use 0 only.
_K1_ALLOWED_REMAINDERS = frozenset({0, 1, 2, 3})

_NOT_SUPPORTED = "is not supported as national ID. The national ID must be either Norsk fødselsnummer or D-nummer."
H_NUMMER_REFUSED = f"H-nummer {_NOT_SUPPORTED}"
FH_NUMMER_REFUSED = f"FH-nummer {_NOT_SUPPORTED}"
SYNTHETIC_REFUSED = "synthetic test ids (Tenor or SyntPop) are not allowed in this stage"

_GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
# A GUID standing alone is matched whole and kept (its last group may hold eleven digits); otherwise any run of
# eleven digits or more, whatever stands around it ("pasient-26073941651", "fnr26073941651", "2607394165101": an
# id with a sequence number appended), and an id written with a separator after its date ("260739 41651").
_NATIONAL_ID_LIKE = re.compile(rf"(?<![0-9A-Fa-f]){_GUID}(?![0-9A-Fa-f])|(\d{{11,}}|\d{{6}}[ ._:-]\d{{5}})")


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


def redact(text: str, *, mask: str = "[redacted]") -> str:
    """`text` with every run of eleven digits or more, and every six digits and five with a separator between, replaced
    by `mask` (a GUID standing alone is kept): whether it holds a valid id or not, it may hold one mistyped."""
    return _NATIONAL_ID_LIKE.sub(lambda match: mask if match.group(1) else match.group(0), text)


def contains_national_id(text: str) -> bool:
    """Whether one of the runs `redact` would mask holds a national id (a synthetic test id included) in any of its
    windows of eleven digits (a separator left out)."""
    runs = (re.sub(r"\D", "", match.group(1)) for match in _NATIONAL_ID_LIKE.finditer(text) if match.group(1))
    windows = (run[start : start + 11] for run in runs for start in range(len(run) - 10))
    return any(national_id_problem(window, allow_synthetic=True) is None for window in windows)
