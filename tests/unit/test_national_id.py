"""Every vector of docs/national-id.md, plus properties over arbitrary input."""

import contextlib
import re
import uuid

import pytest
from eprom.national_id import (
    FH_NUMMER_REFUSED,
    H_NUMMER_REFUSED,
    SYNTHETIC_REFUSED,
    contains_national_id,
    national_id_problem,
    redact,
)
from hypothesis import given
from hypothesis import strategies as st

FODSELSNUMMER = [
    "26073941651",
    "01039494104",
    "17048522718",
    "03116231939",
    "29060884348",
    "20076833487",
    "24108108017",
]
VALID_ONLY_UNDER_2032_RULE = ["30108299939"]
D_NUMMER = ["55019049891", "70090154174", "55066830267", "67047311966", "51077580038", "41014061078", "69020025050"]
H_NUMMER = ["15499923810", "15497509707", "06496032258"]
FH_NUMMER = ["81263303652", "94072182892", "81216959396"]
SYNTHETIC = ["26670271527", "22676933526", "09727547727", "17848543845", "27828513090", "11847214726"]
INVALID = ["12345678901", "17048522719", "03116231930", "3207852271", "1704852271a"]
VALID = FODSELSNUMMER + VALID_ONLY_UNDER_2032_RULE + D_NUMMER


@pytest.mark.parametrize("national_id", VALID)
def test_fodselsnummer_and_d_nummer_are_accepted(national_id: str) -> None:
    assert national_id_problem(national_id, allow_synthetic=False) is None


def test_the_2032_vector_fails_the_old_rule_but_passes() -> None:
    digits = [int(c) for c in VALID_ONLY_UNDER_2032_RULE[0]]
    remainder = (sum(w * d for w, d in zip((3, 7, 6, 1, 8, 9, 4, 5, 2), digits, strict=False)) + digits[9]) % 11
    assert remainder != 0  # so only the 2032 rule can accept it
    assert national_id_problem(VALID_ONLY_UNDER_2032_RULE[0], allow_synthetic=False) is None


@pytest.mark.parametrize("national_id", H_NUMMER)
def test_h_nummer_is_refused_with_eproms_message(national_id: str) -> None:
    assert national_id_problem(national_id, allow_synthetic=True) == H_NUMMER_REFUSED
    assert H_NUMMER_REFUSED == (
        "H-nummer is not supported as national ID. The national ID must be either Norsk fødselsnummer or D-nummer."
    )


@pytest.mark.parametrize("national_id", FH_NUMMER)
def test_fh_nummer_is_refused_with_eproms_message(national_id: str) -> None:
    assert national_id_problem(national_id, allow_synthetic=True) == FH_NUMMER_REFUSED
    assert FH_NUMMER_REFUSED.startswith("FH-nummer is not supported as national ID.")


@pytest.mark.parametrize("national_id", SYNTHETIC)
def test_synthetic_ids_only_where_allowed(national_id: str) -> None:
    assert national_id_problem(national_id, allow_synthetic=False) == SYNTHETIC_REFUSED
    assert national_id_problem(national_id, allow_synthetic=True) is None


def test_hemits_verification_person_is_synthetic() -> None:
    assert national_id_problem("26670271527", allow_synthetic=False) == SYNTHETIC_REFUSED


@pytest.mark.parametrize("national_id", INVALID)
def test_invalid_ids_are_refused_with_a_reason_that_does_not_repeat_them(national_id: str) -> None:
    problem = national_id_problem(national_id, allow_synthetic=True)
    assert problem
    assert national_id not in problem


@pytest.mark.parametrize(
    ("national_id", "why"),
    [
        ("31020000000", "31 February"),  # no such day, whatever the control digits
        ("29029900000", "29 February in a YY that is never a leap year"),
    ],
)
def test_dates_must_be_calendar_days(national_id: str, why: str) -> None:
    candidate = _with_control_digits(national_id[:9])
    assert candidate is not None, why
    assert national_id_problem(candidate, allow_synthetic=True) == "birth date part is not a calendar day"


def test_29_february_of_yy_00_exists_in_2000() -> None:
    candidate = _with_control_digits("290200123")
    assert candidate is not None
    assert national_id_problem(candidate, allow_synthetic=False) is None


def _with_control_digits(first_nine: str) -> str | None:
    digits = [int(c) for c in first_nine]
    k1 = (-sum(w * d for w, d in zip((3, 7, 6, 1, 8, 9, 4, 5, 2), digits, strict=True))) % 11
    if k1 == 10:
        return None
    digits.append(k1)
    k2 = (-sum(w * d for w, d in zip((5, 4, 3, 2, 7, 6, 5, 4, 3, 2), digits, strict=True))) % 11
    return None if k2 == 10 else first_nine + str(k1) + str(k2)


@given(
    national_id=st.sampled_from(VALID + SYNTHETIC),
    position=st.integers(min_value=0, max_value=10),
    shift=st.integers(min_value=1, max_value=9),
)
def test_any_single_digit_change_of_a_valid_id_is_refused(national_id: str, position: int, shift: int) -> None:
    changed = national_id[:position] + str((int(national_id[position]) + shift) % 10) + national_id[position + 1 :]
    assert national_id_problem(changed, allow_synthetic=True) is not None


@given(
    st.one_of(
        st.text(), st.integers(), st.none(), st.binary(), st.text(alphabet="0123456789٣", min_size=11, max_size=11)
    )
)
def test_never_raises_on_arbitrary_input(value: object) -> None:
    problem = national_id_problem(value, allow_synthetic=True)
    assert problem is None or isinstance(problem, str)


# --- what looks like a national id in other text ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nationalId 26073941651 refused", "nationalId [redacted] refused"),
        ("pasient-26073941651", "pasient-[redacted]"),
        ("registry:pasient-26073941651", "registry:pasient-[redacted]"),
        ("fnr26073941651", "fnr[redacted]"),
        ("26073941651x", "[redacted]x"),
        ('{"nationalId":"12345678901"}', '{"nationalId":"[redacted]"}'),  # not a valid id, but maybe one mistyped
        ("26073941651,17048522718", "[redacted],[redacted]"),
        ("2607394165126073941651", "[redacted]"),  # a longer number: it may hold an id
        ("ref-2607394165101", "ref-[redacted]"),  # an id with a sequence number appended
        ("00000000-0000-0000-0000-02607394165199", "00000000-0000-0000-0000-[redacted]"),  # too long for a GUID
        ("3207852271", "3207852271"),  # 10 digits
        ("pasient 260739 41651", "pasient [redacted]"),  # as an id is often written
        ("fnr.260739.41651, 260739-41651, 260739_41651", "fnr.[redacted], [redacted], [redacted]"),
        ("2026-12-06 12:00:01", "2026-12-06 12:00:01"),
        ("", ""),
    ],
)
def test_redact_masks_every_run_of_eleven_digits_or_more(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "guid",
    [
        "3f2504e0-4f89-41d3-9a0c-a26073941651",  # the last group: a hex letter and eleven digits
        "3F2504E0-4F89-41D3-9A0C-26073941651A",
        "00000000-0000-0000-0000-026073941651",
    ],
)
def test_a_guid_is_kept_even_with_eleven_digits_in_it(guid: str) -> None:
    text = f"No form with id='{guid}' exists"
    assert redact(text) == text
    assert redact(f"{guid} 26073941651") == f"{guid} [redacted]"


def test_redact_takes_the_mask_to_use() -> None:
    assert redact("pasient-26073941651", mask="*" * 11) == "pasient-***********"


_HEX = "0123456789abcdefABCDEF"


def _in_a_guid_standing_alone(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] lies in a GUID as Python's uuid module reads one (36 characters, four hyphens), with no
    hex character on either side of it."""
    for first in range(max(0, end - 36), start + 1):
        candidate = text[first : first + 36]
        if len(candidate) < 36 or [candidate[i] for i in (8, 13, 18, 23)] != ["-"] * 4:
            continue
        if (first > 0 and text[first - 1] in _HEX) or text[first + 36 : first + 37] in set(_HEX):
            continue
        with contextlib.suppress(ValueError):
            uuid.UUID(candidate)
            return True
    return False


def _digits_left_standing(text: str) -> list[str]:
    """Every eleven ASCII digits in a row, or six and five with one separator between, outside a standalone GUID."""
    found = []
    for pattern in (r"(?=([0-9]{11}))", r"(?=([0-9]{6}[ ._:-][0-9]{5}))"):
        for window in re.finditer(pattern, text):
            if not _in_a_guid_standing_alone(text, window.start(), window.start() + len(window.group(1))):
                found.append(window.group(1))
    return found


_GUIDS = st.builds(
    lambda first, last: f"{first}-0000-4000-8000-{last}",
    st.text(_HEX, min_size=8, max_size=8),
    st.text("0123456789", min_size=12, max_size=12) | st.text(_HEX, min_size=12, max_size=12),
)
_AROUND = st.text(alphabet="0123456789abcdefx-: ._", max_size=4)


@given(st.text(alphabet="0123456789abcdef-x: ._") | st.text() | st.tuples(_AROUND, _GUIDS, _AROUND).map("".join))
def test_redacted_text_has_no_eleven_digits_left_outside_a_guid(text: str) -> None:
    """Judged by another reading of the text than redact's own pattern."""
    redacted = redact(text)
    assert _digits_left_standing(redacted) == [], redacted
    assert redact(redacted) == redacted


@given(_GUIDS, st.sampled_from(["", "x", " ", ":", "id="]), st.sampled_from(["", "x", " ", ",", "'"]))
def test_a_guid_standing_alone_is_kept_whole(guid: str, before: str, after: str) -> None:
    text = f"{before}{guid}{after}"
    assert redact(text) == text
    assert not contains_national_id(text)


@given(st.sampled_from(FODSELSNUMMER), st.text(alphabet="0123456789", max_size=6), st.text("0123456789", max_size=6))
def test_an_id_inside_a_longer_number_is_found(national_id: str, before: str, after: str) -> None:
    assert contains_national_id(f"ref-{before}{national_id}{after}")


@pytest.mark.parametrize(
    ("text", "contains"),
    [
        ("registry:pasient-26073941651", True),
        ("fnr26670271527", True),  # synthetic test ids too
        ("case-12345678901", False),  # eleven digits, but no valid id
        ("ref-2607394165126", True),  # inside a longer number
        ("ref-026073941651", True),
        ("pasient-260739-41651", True),  # the date, a separator, the rest
        ("batch-202612-00001", False),  # month 26: no id
        ("ref-1234567890123", False),  # no window of it is a valid id
        ("3f2504e0-4f89-41d3-9a0c-a26073941651", False),  # inside a GUID
        ("sample-basic-1", False),
    ],
)
def test_contains_national_id_in_any_run_outside_a_guid(text: str, contains: bool) -> None:
    assert contains_national_id(text) is contains
