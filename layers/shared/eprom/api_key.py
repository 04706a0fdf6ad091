"""The ePROM ApiKey from Secrets Manager, cached by Powertools parameters for `max_age` seconds.

SecretString is `{"apiKey": "...", "previousApiKeys": ["..."]}` or the bare key. Previous keys are accepted on
callbacks during a rotation window; orders always use the current key.
"""

import json
from dataclasses import dataclass, field
from functools import cache

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from eprom.aws_clients import AWS_CLIENT_CONFIG


class ApiKeyConfigurationError(RuntimeError):
    """The secret holds no usable key. The message names the secret, never its value."""


@dataclass(frozen=True)
class ApiKeys:
    current: str = field(repr=False)
    previous: tuple[str, ...] = field(default=(), repr=False)

    @property
    def accepted(self) -> tuple[str, ...]:
        return (self.current, *self.previous)


@cache
def _secrets() -> SecretsProvider:
    # Built on first use, not at import: Powertools' own default provider would use the SDK's default timeouts.
    return SecretsProvider(boto_config=AWS_CLIENT_CONFIG)


def load_api_keys(secret_id: str, *, max_age_seconds: int) -> ApiKeys:
    raw = _secrets().get(secret_id, max_age=max_age_seconds)
    if isinstance(raw, bytes):
        raw = raw.decode()
    return parse_api_keys(raw, secret_id=secret_id)


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
