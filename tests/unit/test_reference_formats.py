"""The orderReferences upstream systems make are not refused for holding a national id (docs/national-id.md).

Each format is a generator of references as an upstream system makes them (dates within three years of today). The
property test below draws from each; run this file to measure how many of N per format are refused, the table in
docs/national-id.md:

    PYTHONPATH=layers/shared .venv/bin/python tests/unit/test_reference_formats.py 100000
"""

import random
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from eprom.national_id import contains_national_id
from hypothesis import given, settings
from hypothesis import strategies as st

THREE_YEARS = timedelta(days=3 * 365)
TWITTER_EPOCH_MS = 1288834974657


def _moment(rng: random.Random) -> datetime:
    now = datetime.now(UTC)
    return now - THREE_YEARS + timedelta(seconds=rng.uniform(0, 2 * THREE_YEARS.total_seconds()))


def _digits(rng: random.Random, count: int) -> str:
    return str(rng.randint(1, 9)) + "".join(rng.choice("0123456789") for _ in range(count - 1))


FORMATS: dict[str, Callable[[random.Random], str]] = {
    "`YYYYmmdd-HHMMSS`": lambda rng: f"{_moment(rng):%Y%m%d-%H%M%S}",
    "`ORD-YYYYmmdd-NNNNNN` (a daily counter)": lambda rng: f"ORD-{_moment(rng):%Y%m%d}-{rng.randint(1, 999999):06d}",
    "`YYYYmmddHHMMSS`": lambda rng: f"{_moment(rng):%Y%m%d%H%M%S}",
    "`YYYY-mm-ddTHH:MM:SS`": lambda rng: f"{_moment(rng):%Y-%m-%dT%H:%M:%S}",
    "epoch milliseconds (13 digits)": lambda rng: str(int(_moment(rng).timestamp() * 1000)),
    "epoch microseconds (16 digits)": lambda rng: str(int(_moment(rng).timestamp() * 1_000_000)),
    "database ids of 13 to 19 digits": lambda rng: _digits(rng, rng.randint(13, 19)),
    "snowflake ids": lambda rng: str(
        (int(_moment(rng).timestamp() * 1000) - TWITTER_EPOCH_MS) << 22 | rng.getrandbits(22)
    ),
    "GUIDs, 32 hex characters": lambda rng: uuid.UUID(int=rng.getrandbits(128), version=4).hex,
    "GUIDs with hyphens, after `ref-`": lambda rng: f"ref-{uuid.UUID(int=rng.getrandbits(128), version=4)}",
}
# Not an upstream's number but the shape of an id written out (a date and five digits): refused when it is one.
SHAPED_LIKE_AN_ID = {"`YYmmdd-NNNNN`": lambda rng: f"{_moment(rng):%y%m%d}-{rng.randint(0, 99999):05d}"}


@pytest.mark.parametrize("name", FORMATS)
@settings(max_examples=300)
@given(rng=st.randoms(use_true_random=False))
def test_no_reference_of_an_upstream_format_is_refused(name: str, rng: random.Random) -> None:
    reference = FORMATS[name](rng)
    assert not contains_national_id(reference), reference


def measure(per_format: int, seed: int = 26) -> str:
    """The Markdown table of docs/national-id.md: refusals of `per_format` references of each format."""
    rng = random.Random(seed)
    lines = ["| format | example | refused of " + f"{per_format:,} |", "|---|---|---|"]
    for name, make in (FORMATS | SHAPED_LIKE_AN_ID).items():
        refused = sum(contains_national_id(make(rng)) for _ in range(per_format))
        lines.append(f"| {name} | `{make(rng)}` | {refused} ({100 * refused / per_format:.3f} %) |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
