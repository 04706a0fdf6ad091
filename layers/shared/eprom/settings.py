"""The functions' configuration: read once from the environment at start, failing fast on a missing value.

Each field is the environment variable of its name in capitals (template.yaml sets them). A function's settings
class declares its own fields and takes the groups it shares with others from here.

Frozen dataclasses read by `from_environment` (str, int, float, bool and Literal fields, with the bounds `setting`
gives), not pydantic models: the settings are all that some functions would import pydantic for, ~60 ms of their
cold start (docs/performance.md).
"""

import dataclasses
import math
import os
from collections.abc import Mapping
from typing import Any, Literal, Self, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

_TRUE = {"1", "true", "t", "yes", "y", "on"}  # what pydantic read as a bool, which these settings once were
_FALSE = {"0", "false", "f", "no", "n", "off"}


def setting(
    default: Any = dataclasses.MISSING,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    non_empty: bool = False,
    url: bool = False,
) -> Any:
    """A field with its default (none: required) and the values it takes: `ge`/`gt`/`le` bounds, `non_empty` text,
    an http(s) `url`."""
    bounds = {"ge": ge, "gt": gt, "le": le, "non_empty": non_empty, "url": url}
    return dataclasses.field(default=default, metadata=bounds)


class SettingsError(Exception):
    """A function's environment lacks a variable or holds an unusable value (the template sets them all)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class FunctionSettings:
    @classmethod
    def from_environment(cls, environment: Mapping[str, str] | None = None) -> Self:
        """From `environment` (os.environ when not given): FORM_ORDERS_TABLE for `form_orders_table`, and so on.
        SettingsError names every variable missing or unusable, without its value."""
        environment = os.environ if environment is None else environment
        types = get_type_hints(cls)
        values: dict[str, Any] = {}
        problems = []
        for field in dataclasses.fields(cls):
            variable = field.name.upper()
            if variable not in environment:
                if field.default is dataclasses.MISSING:
                    problems.append(f"{variable}: not set")
                continue
            try:
                values[field.name] = _value(environment[variable], types[field.name], field.metadata)
            except ValueError as unusable:
                problems.append(f"{variable}: {unusable}")
        if problems:
            raise SettingsError(f"{cls.__name__} cannot start: {'; '.join(problems)}")
        return cls(**values)


def _value(text: str, kind: Any, rules: Mapping[str, Any]) -> Any:
    """`text` read as `kind`, within `rules`; ValueError says what is wrong, never what the text was."""
    if get_origin(kind) is Literal:
        if text not in get_args(kind):
            raise ValueError(f"should be one of {', '.join(get_args(kind))}")
        return text
    if kind is bool:
        if text.strip().lower() not in _TRUE | _FALSE:
            raise ValueError("should be true or false")
        return text.strip().lower() in _TRUE
    if kind is int or kind is float:
        return _number(text, kind, rules)
    if rules.get("non_empty") and not text:
        raise ValueError("should not be empty")
    if rules.get("url"):
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("should be an http(s) URL")
    return text


def _number(text: str, kind: type[int] | type[float], rules: Mapping[str, Any]) -> int | float:
    try:
        value = int(text) if kind is int else float(text)
    except ValueError:
        raise ValueError("should be a whole number" if kind is int else "should be a number") from None
    if not math.isfinite(value):
        raise ValueError("should be a finite number")
    if rules.get("ge") is not None and not value >= rules["ge"]:
        raise ValueError(f"should be at least {rules['ge']:g}")
    if rules.get("gt") is not None and not value > rules["gt"]:
        raise ValueError(f"should be greater than {rules['gt']:g}")
    if rules.get("le") is not None and not value <= rules["le"]:
        raise ValueError(f"should be at most {rules['le']:g}")
    return value


@dataclasses.dataclass(frozen=True, kw_only=True)
class ApiKeySettings(FunctionSettings):
    """The secret that holds ePROM's ApiKey (api_key.py)."""

    eprom_api_key_secret_id: str = setting(non_empty=True)
    api_key_max_age_seconds: int = setting(300, ge=1)
    # After a key mismatch the secret is read again at once, but not more often than this (key rotation).
    api_key_min_refresh_seconds: float = setting(10, ge=0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class EpromApiSettings(ApiKeySettings):
    """ePROM's API and how long to wait for it (eprom_client.py)."""

    eprom_api_base_url: str = setting(url=True)
    eprom_connect_timeout_seconds: float = setting(3.05, gt=0)
    # The longest wait for ePROM's answer; the placer waits less when its invocation has less time left.
    eprom_read_timeout_seconds: float = setting(20, gt=0)
