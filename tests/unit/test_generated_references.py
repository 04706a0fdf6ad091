"""The orderReferences our own tools make, whatever their dated and random parts draw, are never refused for holding a
national id (national_id.contains_national_id) and are shown as they are (national_id.redact masks every run of
eleven digits or more, however separated)."""

from datetime import UTC, date, datetime

from eprom.national_id import contains_national_id, redact
from eprom_cli import smoke, verify
from hypothesis import given
from hypothesis import strategies as st

HEX = "0123456789abcdef"
DIGITS_FIRST = st.text("0123456789", min_size=8, max_size=8) | st.text(HEX, min_size=8, max_size=8)


def _never_read_as_an_id(reference: str) -> None:
    assert not contains_national_id(reference), reference
    assert redact(reference) == reference, reference


@given(DIGITS_FIRST, st.text(HEX, min_size=28, max_size=28), st.dates(min_value=date(2000, 1, 1)))
def test_smokes_daily_reference(start: str, rest: str, today: date) -> None:
    _never_read_as_an_id(smoke.todays_reference(f"{start}-{rest[:4]}-{rest[4:8]}-{rest[8:12]}-{rest[12:]}", today))


@given(st.datetimes(min_value=datetime(2000, 1, 1), timezones=st.just(UTC)), st.text(HEX, min_size=6, max_size=6))
def test_verifys_references(now: datetime, random_part: str) -> None:
    run_id = verify.new_run_id(now, random_part)
    for kind in ("basic", "signed", "on-behalf-of"):
        _never_read_as_an_id(f"verify-{run_id}-{kind}")
