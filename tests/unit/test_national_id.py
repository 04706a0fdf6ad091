"""Every vector of docs/national-id.md, plus properties over arbitrary input."""

import contextlib
import unicodedata
import uuid
from typing import Any

import pytest
from eprom.national_id import (
    FH_NUMMER_REFUSED,
    H_NUMMER_REFUSED,
    SYNTHETIC_REFUSED,
    contains_national_id,
    national_id_problem,
    redact,
)
from hypothesis import assume, given
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
        ("00000000-0000-0000-0000-02607394165199", "[redacted]"),  # too long for a GUID: digits joined by hyphens
        ("3207852271", "3207852271"),  # 10 digits
        ("pasient 260739 41651", "pasient [redacted]"),  # as an id is often written
        ("fnr.260739.41651, 260739-41651, 260739_41651", "fnr.[redacted], [redacted], [redacted]"),
        ("26.07.39 41651", "[redacted]"),
        ("26/07/39 - 41651", "[redacted]"),
        ("2607-3941651 and 0103949-4104", "[redacted] and [redacted]"),
        ("id 2\u00ad6073941651", "id [redacted]"),  # a soft hyphen inside
        ("id ²⁶⁰⁷³⁹⁴¹⁶⁵¹", "id [redacted]"),  # superscript digits
        ("id ٢٦٠٧٣٩٤١٦٥١", "id [redacted]"),  # Arabic-Indic digits
        (
            "id \uff12\uff16\uff10\uff17\uff13\uff19 \uff14\uff11\uff16\uff15\uff11",
            "id [redacted]",
        ),  # full-width digits
        ("ORD-20261201-000123", "ORD-[redacted]"),  # display masks what refusal keeps
        ("on 2026-12-06 at 12:00", "on 2026-12-06 at 12:00"),  # eight digits, four
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


# How the tests below write ids: these separators between digits, these invisible characters anywhere among them,
# digits of these scripts (values by unicodedata, a reading of the test's own).
SEPARATORS = " .-_:/\u00a0\u2009\u2011\u2013"
INVISIBLE = "\u00ad\u200b\u200c\u200d\u2060\ufeff"
# ASCII, Arabic-Indic, full-width and mathematical bold digits, and superscripts (not decimal digits to Python's re)
DIGIT_SCRIPTS = (
    *("".join(chr(zero + value) for value in range(10)) for zero in (0x30, 0x660, 0xFF10, 0x1D7CE)),
    "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079",
)


def _digits_left_standing(text: str) -> list[str]:
    """Every eleven digits (of any script) joined by at most one of SEPARATORS between each two, INVISIBLE
    characters skipped; a GUID standing alone ends them (its digits are a thing's id)."""
    in_guids = {index for start in range(len(text)) if _in_a_guid_standing_alone(text, start, start + 36)
                for index in range(start, start + 36)}  # fmt: skip
    found = []
    for start, char in enumerate(text):
        if unicodedata.digit(char, None) is None or (start and unicodedata.digit(text[start - 1], None) is not None):
            continue
        digits, index, separators = [], start, 0
        while index < len(text) and len(digits) < 11 and index not in in_guids:
            char = text[index]
            if unicodedata.digit(char, None) is not None:
                digits.append(index)
                separators = 0
            elif char in SEPARATORS and separators == 0 and digits:
                separators = 1
            elif char not in INVISIBLE:
                break
            index += 1
        if len(digits) == 11:
            found.append(text[digits[0] : digits[-1] + 1])
    return found


_GUIDS = st.builds(
    lambda first, last: f"{first}-0000-4000-8000-{last}",
    st.text(_HEX, min_size=8, max_size=8),
    st.text("0123456789", min_size=12, max_size=12) | st.text(_HEX, min_size=12, max_size=12),
)
_AROUND = st.text(alphabet="0123456789abcdefx-: ._", max_size=4)


@given(
    st.text(alphabet="0123456789abcdef-x: ._") | st.text() | st.tuples(_AROUND, _GUIDS, _AROUND).map("".join),
)
def test_redacted_text_has_no_eleven_digits_left_outside_a_guid(text: str) -> None:
    """Judged by another reading of the text than redact's own."""
    redacted = redact(text)
    assert _digits_left_standing(redacted) == [], redacted
    assert redact(redacted) == redacted


@given(_GUIDS, st.sampled_from(["", "x", " ", ":", "id="]), st.sampled_from(["", "x", " ", ",", "'"]))
def test_a_guid_standing_alone_is_kept_whole(guid: str, before: str, after: str) -> None:
    text = f"{before}{guid}{after}"
    assert redact(text) == text
    assert not contains_national_id(text)


@given(st.uuids())
def test_a_guid_of_32_hex_characters_is_never_refused(guid: uuid.UUID) -> None:
    assert not contains_national_id(guid.hex) and not contains_national_id(f"order-{guid.hex.upper()}")


def _valid_ids() -> st.SearchStrategy[str]:
    """Valid ids beyond the vectors: nine digits drawn, the control digits computed (old rule or the 2032 one)."""
    drawn = st.builds(
        lambda day, month, rest: _with_control_digits(f"{day:02d}{month:02d}{rest:05d}"),
        st.integers(1, 28) | st.integers(41, 68), st.integers(1, 12), st.integers(0, 99999),
    )  # fmt: skip
    return st.sampled_from(VALID + SYNTHETIC) | drawn.filter(lambda value: value is not None)  # type: ignore[arg-type]


@st.composite
def _written(draw: st.DrawFn, separators: str, scripts: tuple[str, ...] = ("0123456789",)) -> tuple[str, str]:
    """(a valid id, a way of writing it): some of its digits with one separator between them."""
    national_id = draw(_valid_ids())
    script = draw(st.sampled_from(scripts))
    gaps = draw(st.lists(st.sampled_from(separators) | st.just(""), min_size=10, max_size=10))
    return national_id, "".join(script[int(d)] + gap for d, gap in zip(national_id, [*gaps, ""], strict=True))


_REFERENCE_TEXT = "ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ0123456789._:-"


@given(
    _written("._:-"),
    st.text(_REFERENCE_TEXT, max_size=8).filter(lambda text: not text[-1:].isdigit()),
    st.text(_REFERENCE_TEXT, max_size=8).filter(lambda text: not text[:1].isdigit()),
)
def test_an_id_standing_alone_is_found_however_it_is_written(written: tuple[str, str], before: str, after: str):
    """In any of the forms an orderReference's characters allow: one separator here and there, no digit right
    before or after it."""
    _, form = written
    assert contains_national_id(f"{before}{form}{after}"), form


@given(
    _written(SEPARATORS, DIGIT_SCRIPTS),
    st.lists(st.sampled_from(INVISIBLE), max_size=3),
    st.randoms(use_true_random=False),
    st.text(max_size=12),
    st.text(max_size=12),
)
def test_an_id_is_masked_for_display_however_it_is_written_and_whatever_stands_around_it(
    written: tuple[str, str], invisible: list[str], random: Any, before: str, after: str
) -> None:
    national_id, form = written
    for char in invisible:  # invisible characters anywhere among its digits
        position = random.randint(1, len(form) - 1)
        form = form[:position] + char + form[position:]
    text = f"{before}{form}{after}"
    assume(not _in_a_guid_standing_alone(text, len(before), len(before) + len(form)))
    redacted = redact(text)
    assert _digits_left_standing(redacted) == [], redacted
    values = "".join(str(unicodedata.digit(char)) for char in redacted if unicodedata.digit(char, None) is not None)
    assert national_id not in values or national_id in "".join(
        str(unicodedata.digit(char)) for char in before + after if unicodedata.digit(char, None) is not None
    )


@given(st.sampled_from(FODSELSNUMMER), st.text("0123456789", max_size=6), st.text("0123456789", max_size=6))
def test_an_id_inside_a_longer_number_is_not_refused_but_is_masked(national_id: str, before: str, after: str):
    """Eleven digits inside a longer run are an upstream's number: refusing them refused real orders by the per cent
    (docs/national-id.md); display masks them all the same."""
    reference = f"ref-{before}{national_id}{after}"
    assert contains_national_id(reference) is (not (before or after))
    assert redact(reference) == "ref-[redacted]"


@pytest.mark.parametrize(
    ("text", "contains"),
    [
        ("registry:pasient-26073941651", True),
        ("fnr26670271527", True),  # synthetic test ids too
        ("case-12345678901", False),  # eleven digits, but no valid id
        ("ref-2607394165126", False),  # inside a longer number: an upstream's number
        ("ref-026073941651", False),
        ("ref-2607394165101", False),
        ("pasient-260739-41651", True),  # the date, a separator, the rest
        ("pasient-26.07.39.41651", True),
        ("2607-3941651", True),  # other places for the separator
        ("0103949-4104", True),
        ("2026-01-15-26073941651", True),  # a date before it: separated, so it stands alone
        ("ORD-20261201-26073941651", True),
        ("20260729-394165", False),  # a date and a time: eight and six digits
        ("ORD-20390726-041651", False),
        ("batch-202612-00001", False),  # month 26: no id
        ("ref-1234567890123", False),  # no window of it is a valid id
        ("3f2504e0-4f89-41d3-9a0c-a26073941651", False),  # inside a GUID
        ("3f2504e04f8941d39a0ca26073941651", False),  # inside a GUID of 32 hex characters
        ("sample-basic-1", False),
    ],
)
def test_contains_national_id_standing_alone_outside_a_guid(text: str, contains: bool) -> None:
    assert contains_national_id(text) is contains
