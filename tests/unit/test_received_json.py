"""The answers object's text: the received callback minus its api key member(s), byte for byte otherwise."""

import json
import sys
from collections import Counter

import pytest
from eprom.models import EpromCallback
from hypothesis import given
from hypothesis import strategies as st
from status_callback.received_json import is_api_key_name, without_api_key

FORM_ORDER_ID = "184738d0-3c39-e611-9c2a-34e6d72e03c7"
KEY_SPELLINGS = ["apiKey", "apikey", "APIKEY", "ApiKey", "api_key", "API_KEY", "api-key", "Api-Key", "api key",
                 "a_p_i_k_e_y"]  # fmt: skip
# Numbers and escapes a re-serialiser would change (the items of issue 19 among them)
RAW_VALUES = ["1e400", "-1E-400", "0.1000000000000000055511151231257827", "1.50", "-0", "1E+2", "12345678901234567890",
              '"\\u00e6\\/\\"x\\""', '"\\ud800"', '"æ«verre»"', "[ 1 ,2\n]", '{"apiKey" : "nested, kept"}', "null",
              "true"]  # fmt: skip


@pytest.mark.parametrize(
    ("received", "stored"),
    [
        ('{"apiKey": "k", "formData": "{}"}', '{"formData": "{}"}'),
        ('{"formData": "{}", "apiKey": "k"}', '{"formData": "{}"}'),
        ('{"a": 1e400 ,\n "apiKey":"k",\t"b":0.1000000000000000055511151231257827 }',
         '{"a": 1e400 ,\n "b":0.1000000000000000055511151231257827 }'),
        ('  {"apiKey": "k"}  ', "  {}  "),
        ('{"api_key": "k", "API-KEY": "k", "\\u0061piKey": "k", "x": "\\u00e6"}', '{"x": "\\u00e6"}'),
        ("{}", "{}"),
    ],
)  # fmt: skip
def test_the_key_members_are_cut_and_nothing_else_changes(received: str, stored: str) -> None:
    assert without_api_key(received) == stored


@pytest.mark.parametrize("text", ["[]", '"x"', "", '{"a" 1}', '{"a": 1,}', '{"a": 1} x', "{'a': 1}"])
def test_what_is_not_a_json_object_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        without_api_key(text)


whitespace = st.text(alphabet=" \t\n\r", max_size=2)
names = st.one_of(st.text(max_size=8), st.sampled_from(KEY_SPELLINGS), st.sampled_from(["formData", "formOrderId"]))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=8,
)
raw_values = st.one_of(
    st.sampled_from(RAW_VALUES),
    st.builds(lambda value, ascii_only: json.dumps(value, ensure_ascii=ascii_only), json_values, st.booleans()),
)
raw_names = st.builds(lambda name, ascii_only: json.dumps(name, ensure_ascii=ascii_only), names, st.booleans())


@st.composite
def json_objects(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
    """A JSON object's text in any layout, with the raw text of each member."""
    members = draw(st.lists(st.tuples(raw_names, whitespace, whitespace, raw_values), max_size=6))
    raw_members = [f"{name}{before}:{after}{value}" for name, before, after, value in members]
    separators = [draw(whitespace) + "," + draw(whitespace) for _ in raw_members[1:]]
    text = draw(whitespace) + "{" + draw(whitespace)
    text += "".join(raw + separator for raw, separator in zip(raw_members, [*separators, ""], strict=False))
    text += draw(whitespace) + "}" + draw(whitespace)
    return text, [(json.loads(name), raw) for (name, *_), raw in zip(members, raw_members, strict=True)]


@given(json_objects())
def test_the_stored_text_reads_as_the_received_object_without_its_key(drawn: tuple[str, list[tuple[str, str]]]):
    text, members = drawn
    stored = without_api_key(text)
    received = json.loads(text)
    assert json.loads(stored) == {name: value for name, value in received.items() if not is_api_key_name(name)}
    kept = [raw for name, raw in members if not is_api_key_name(name)]
    if len(kept) == len(members):
        assert stored == text  # byte for byte
    position = 0
    for raw in kept:  # every other member exactly as written, in its place
        position = stored.index(raw, position) + len(raw)
    cut = Counter(text)  # what was cut: the key members, and only commas and whitespace besides
    cut.subtract(stored)
    cut.subtract("".join(raw for name, raw in members if is_api_key_name(name)))
    assert all(count == 0 or (count > 0 and character in ", \t\n\r") for character, count in cut.items())


def test_every_name_that_authenticates_is_a_name_that_is_stripped() -> None:
    """Authentication reads apiKey ignoring case (str.lower); stripping folds case (str.casefold) and drops `_`,
    `-` and the like. Every character whose lowercase is a letter of "apikey" (the Kelvin sign K is one) folds to
    the same letter, so a name that authenticates is always stripped."""
    letters = set("apikey")
    for code_point in range(sys.maxunicode + 1):
        character = chr(code_point)
        if character.lower() and set(character.lower()) <= letters:
            assert character.casefold() == character.lower(), hex(code_point)


spellings = st.lists(
    st.sampled_from(["a", "A", "p", "P", "i", "I", "k", "K", "\u212a", "e", "E", "y", "Y", "_", "-", " ", "."]),
    max_size=9,
).map("".join)


@given(st.one_of(spellings, st.sampled_from(KEY_SPELLINGS), st.text(max_size=7)))
def test_a_name_authenticates_only_when_it_is_stripped(name: str) -> None:
    callback = EpromCallback.model_validate({"formOrderId": FORM_ORDER_ID, name: "the-key"})
    if callback.api_key is not None:
        assert is_api_key_name(name), name
        assert without_api_key(json.dumps({name: "the-key", "a": 1})) == '{"a": 1}'


def test_only_apikey_in_any_case_authenticates() -> None:
    read = {name: EpromCallback.model_validate({"formOrderId": FORM_ORDER_ID, name: "k"}).api_key for name in
            ["apiKey", "APIKEY", "apikey", "api_key", "API_KEY", "api-key"]}  # fmt: skip
    assert [name for name, key in read.items() if key is not None] == ["apiKey", "APIKEY", "apikey"]
