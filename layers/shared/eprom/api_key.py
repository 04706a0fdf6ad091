"""The ePROM ApiKey from Secrets Manager, cached for `max_age` seconds.

SecretString is `{"apiKey": "...", "previousApiKeys": ["..."]}` or the bare key. Previous keys are accepted on
callbacks during a rotation window; orders always use the current key.

When ePROM Admin regenerates the key ("Generer"), the old one dies at once: a callback with the new key, or a
401 from ePROM, may come while the cache still holds the old one. `ApiKeySource.refresh` then reads the secret
again at once, but at most once per `min_refresh_seconds` per environment, so wrong keys cannot hammer Secrets
Manager.
"""

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

from eprom.aws_clients import aws_client
from eprom.settings import ApiKeySettings

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


class ApiKeyConfigurationError(RuntimeError):
    """The secret holds no usable key. The message names the secret, never its value."""


UNSENDABLE_API_KEY = "is not printable ASCII without spaces, and ePROM's Authorization header cannot carry it"


def is_sendable(key: str) -> bool:
    """Whether `Authorization: Basic <key>` can carry the key: visible ASCII only. ePROM Admin's keys are such; an
    HTTP field value is visible ASCII (other bytes are "obs-text", obsolete: RFC 9110 section 5.5,
    https://www.rfc-editor.org/rfc/rfc9110#section-5.5), and requests would fail with UnicodeEncodeError on
    anything beyond latin-1. So anything else in a key is a mistake (a pasted "€", a space, a newline)."""
    return bool(key) and all("!" <= character <= "~" for character in key)


@dataclass(frozen=True)
class ApiKeys:
    current: str = field(repr=False)
    previous: tuple[str, ...] = field(default=(), repr=False)

    @property
    def accepted(self) -> tuple[str, ...]:
        return (self.current, *self.previous)


# SecretString by secret id, and when it expires. Kept by hand rather than by Powertools parameters, whose package
# costs every cold start more than these lines (docs/performance.md). Worker threads of one environment that find
# it expired at the same time each read the secret.
_cached: dict[str, tuple[str, float]] = {}


@cache
def _secrets() -> "SecretsManagerClient":
    return aws_client("secretsmanager")  # made at the first read, not at import


def read_secret(secret_id: str, *, max_age_seconds: int, force_fetch: bool = False) -> str:
    """A secret's SecretString (the ApiKey's, or the placer's fingerprint key), cached for `max_age_seconds`."""
    cached = _cached.get(secret_id)
    if cached is not None and not force_fetch and time.monotonic() < cached[1]:
        return cached[0]
    answer = _secrets().get_secret_value(SecretId=secret_id)
    value = answer.get("SecretString")
    if value is None and isinstance(answer.get("SecretBinary"), bytes):
        value = answer["SecretBinary"].decode()
    if not isinstance(value, str):
        raise ApiKeyConfigurationError(f"secret {secret_id} holds no SecretString")
    _cached[secret_id] = (value, time.monotonic() + max_age_seconds)
    return value


def load_api_keys(secret_id: str, *, max_age_seconds: int, force_fetch: bool = False) -> ApiKeys:
    raw = read_secret(secret_id, max_age_seconds=max_age_seconds, force_fetch=force_fetch)
    return parse_api_keys(raw, secret_id=secret_id)


class ApiKeySource:
    """The keys of one secret: cached for `max_age_seconds`, re-read on demand at most once per
    `min_refresh_seconds` by `clock` (the functions' worker threads share one source, hence the lock)."""

    def __init__(
        self,
        secret_id: str,
        *,
        max_age_seconds: int,
        min_refresh_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret_id = secret_id
        self._max_age = max_age_seconds
        self._min_refresh = min_refresh_seconds
        self.clock = clock
        self._refreshed_at = float("-inf")
        self._lock = threading.Lock()

    @classmethod
    def of(cls, settings: ApiKeySettings) -> "ApiKeySource":
        return cls(
            settings.eprom_api_key_secret_id,
            max_age_seconds=settings.api_key_max_age_seconds,
            min_refresh_seconds=settings.api_key_min_refresh_seconds,
        )

    def keys(self) -> ApiKeys:
        return load_api_keys(self._secret_id, max_age_seconds=self._max_age)

    def current(self) -> str:
        return self.keys().current

    def refreshed_current(self) -> str | None:
        """The current key as the secret holds it now; None when it was read again too recently."""
        keys = self.refresh()
        return keys.current if keys else None

    def refresh(self) -> ApiKeys | None:
        """The keys as the secret holds them now; None when it was read again too recently to ask once more."""
        with self._lock:
            now = self.clock()
            if now - self._refreshed_at < self._min_refresh:
                return None
            self._refreshed_at = now
        return load_api_keys(self._secret_id, max_age_seconds=self._max_age, force_fetch=True)


def secret_string(api_key: str, previous_api_keys: Sequence[str] = ()) -> str:
    """The SecretString `parse_api_keys` reads: the current key and those still accepted on callbacks."""
    return json.dumps({"apiKey": api_key, "previousApiKeys": list(previous_api_keys)})


def parse_api_keys(secret_string: str, *, secret_id: str) -> ApiKeys:
    try:
        content = json.loads(secret_string)
    except ValueError:
        content = secret_string  # a bare key that is not JSON
    if isinstance(content, str):
        content = {"apiKey": content}
    if not isinstance(content, dict):
        raise ApiKeyConfigurationError(f"secret {secret_id} must hold a JSON object with apiKey, or the bare key")

    current = content.get("apiKey")
    if not isinstance(current, str) or not current.strip():
        raise ApiKeyConfigurationError(f"secret {secret_id} has no apiKey (missing or empty)")
    previous = content.get("previousApiKeys") or []
    if not isinstance(previous, list) or not all(isinstance(key, str) for key in previous):
        raise ApiKeyConfigurationError(f"secret {secret_id}: previousApiKeys must be a list of strings")
    return ApiKeys(current.strip(), tuple(key.strip() for key in previous if key.strip()))
