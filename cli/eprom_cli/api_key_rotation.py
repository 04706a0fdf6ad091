"""The ePROM ApiKey in the stack's secret: the first key Hemit sends, a new one with the previous ones still
accepted on callbacks, and the end of that window. A new key is read from standard input, never from the command
line (that stays in the shell history and the process list); no message repeats a key."""

import getpass
import sys

from eprom.api_key import UNSENDABLE_API_KEY, ApiKeys, is_sendable, parse_api_keys, secret_string

from eprom_cli.target import Target


class KeyRefused(Exception):
    """Why the secret was not changed: one line for the operator, never the key."""


def read_new_key() -> str:
    new = getpass.getpass("new ApiKey: ") if sys.stdin.isatty() else sys.stdin.readline()
    new = new.strip()
    if not new:
        raise KeyRefused("no usable ApiKey on standard input (one line, no spaces)")
    if not is_sendable(new):
        raise KeyRefused(f"the ApiKey on standard input {UNSENDABLE_API_KEY}; nothing changed (ePROM Admin's keys are "
                         "ASCII)")  # fmt: skip
    return new


def set_first(target: Target, new: str) -> None:
    """Replace the placeholder the deploy generated; no previous key is kept."""
    _put(target, secret_string(new))


def keys(target: Target) -> ApiKeys:
    """The keys as the functions read them (ApiKeyConfigurationError names the secret, never its value), so the
    command accepts exactly what they do."""
    secret = target.client("secretsmanager").get_secret_value(SecretId=target.secret_id)["SecretString"]
    return parse_api_keys(secret, secret_id=target.secret_id)


def rotate(target: Target, keys: ApiKeys, new: str) -> list[str]:
    """Make `new` the current key; the keys still accepted on callbacks (the current one and those before it)."""
    if new == keys.current:
        raise KeyRefused("that is the current ApiKey already; nothing changed")
    kept = [key for key in keys.accepted if key != new]
    _put(target, secret_string(new, kept))
    return kept


def drop_previous(target: Target, keys: ApiKeys) -> int:
    """Accept only the current key from now on; how many previous ones were dropped."""
    _put(target, secret_string(keys.current))
    return len(keys.previous)


def _put(target: Target, value: str) -> None:
    target.client("secretsmanager").put_secret_value(SecretId=target.secret_id, SecretString=value)
