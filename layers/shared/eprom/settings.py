"""The functions' configuration: read once from the environment at start, failing fast on a missing value.

Each field is the environment variable of its name in capitals (template.yaml sets them). A function's settings
class declares its own fields and takes the groups it shares with others from here.
"""

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError


class FunctionSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    @classmethod
    def from_environment(cls, environment: Mapping[str, str] | None = None) -> Self:
        """From `environment` (os.environ when not given): FORM_ORDERS_TABLE for `form_orders_table`, and so on."""
        environment = os.environ if environment is None else environment
        try:
            return cls.model_validate(
                {name: environment[name.upper()] for name in cls.model_fields if name.upper() in environment}
            )
        except ValidationError as invalid:  # named as the operator sets them, and without their values
            problems = [f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in invalid.errors()]
            raise SettingsError(f"{cls.__name__} cannot start: {'; '.join(problems)}") from None


class SettingsError(Exception):
    """A function's environment lacks a variable or holds an unusable value (the template sets them all)."""


class ApiKeySettings(FunctionSettings):
    """The secret that holds ePROM's ApiKey (api_key.py)."""

    eprom_api_key_secret_id: str = Field(min_length=1)
    api_key_max_age_seconds: int = Field(default=300, ge=1)
    # After a key mismatch the secret is read again at once, but not more often than this (key rotation).
    api_key_min_refresh_seconds: float = Field(default=10, ge=0)


class EpromApiSettings(ApiKeySettings):
    """ePROM's API and how long to wait for it (eprom_client.py)."""

    eprom_api_base_url: HttpUrl
    eprom_connect_timeout_seconds: float = Field(default=3.05, gt=0)
    # The longest wait for ePROM's answer; the placer waits less when its invocation has less time left.
    eprom_read_timeout_seconds: float = Field(default=20, gt=0)
