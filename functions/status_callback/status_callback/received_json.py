"""The answers object as ePROM sent it: the received JSON text with the api key member(s) cut out, byte for byte.

Re-serialising would change what ePROM sent (`1e400` becomes `Infinity`, `0.1000000000000000055511151231257827`
becomes `0.1`, escapes are rewritten), so the top-level members are found in the text itself and only the key's
spans are removed. The standard library's own JSON scanner (C-accelerated) finds where each key and value ends.
"""

import json
import re
from json.decoder import scanstring  # type: ignore[attr-defined]  # in CPython, not in typeshed

_WHITESPACE = re.compile(r"[ \t\n\r]*")  # JSON's four whitespace characters, nothing else
_DECODER = json.JSONDecoder()
_NOT_LETTER_OR_DIGIT = re.compile(r"[\W_]")


def is_api_key_name(name: str) -> bool:
    """A member that could carry the key: any spelling of apiKey (case, `_`, `-`, spaces...). Authentication reads
    only names equal to apiKey ignoring case (eprom.models), a subset of these, so the key used is never kept."""
    return _NOT_LETTER_OR_DIGIT.sub("", name.casefold()) == "apikey"


def without_api_key(text: str) -> str:
    """`text` (a JSON object, as json.loads reads it) without its top-level api key members; everything else as it
    was, whitespace and commas included. Raises ValueError when `text` is not a JSON object."""
    members = _member_spans(text)
    kept = [index for index, (_, _, name) in enumerate(members) if not is_api_key_name(name)]
    if len(kept) == len(members):
        return text
    pieces = [text[: members[0][0]]]  # "{" and whitespace
    for position, index in enumerate(kept):
        start, end, _ = members[index]
        pieces.append(text[start:end])
        if position + 1 < len(kept):
            pieces.append(text[end : members[index + 1][0]])  # the separator that followed it: "," and whitespace
    pieces.append(text[members[-1][1] :])  # whitespace and "}"
    return "".join(pieces)


def _member_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, name) of each top-level member `"name": value`, in order."""
    index = _skip_whitespace(text, 0)
    if text[index : index + 1] != "{":
        raise ValueError("not a JSON object")
    index = _skip_whitespace(text, index + 1)
    members: list[tuple[int, int, str]] = []
    if text[index : index + 1] == "}":
        return _at_the_end(text, index, members)
    while True:
        start = index
        if text[index : index + 1] != '"':
            raise ValueError("expected a member name")
        name, index = scanstring(text, index + 1)
        index = _skip_whitespace(text, index)
        if text[index : index + 1] != ":":
            raise ValueError("expected ':'")
        _, index = _DECODER.raw_decode(text, _skip_whitespace(text, index + 1))
        members.append((start, index, name))
        index = _skip_whitespace(text, index)
        if text[index : index + 1] == "}":
            return _at_the_end(text, index, members)
        if text[index : index + 1] != ",":
            raise ValueError("expected ',' or '}'")
        index = _skip_whitespace(text, index + 1)


def _at_the_end(text: str, closing_brace: int, members: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    if _skip_whitespace(text, closing_brace + 1) != len(text):
        raise ValueError("text after the object")
    return members


def _skip_whitespace(text: str, index: int) -> int:
    whitespace = _WHITESPACE.match(text, index)
    assert whitespace is not None  # `*` matches the empty string too
    return whitespace.end()
