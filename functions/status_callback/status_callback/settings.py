"""StatusCallbackFunction's configuration: read once from the environment at start, failing fast on a missing value."""

import os

from pydantic import BaseModel, ConfigDict, Field


class CallbackSettings(BaseModel):
    model_config = ConfigDict(alias_generator=str.upper, extra="ignore", frozen=True)

    form_orders_table: str = Field(min_length=1)
    eprom_api_key_secret_id: str = Field(min_length=1)
    form_results_bucket: str = Field(min_length=1)
    api_key_max_age_seconds: int = Field(default=300, ge=1)
    # After a key mismatch the secret is read again at once, but not more often than this (key rotation).
    api_key_min_refresh_seconds: float = Field(default=10, ge=0)
    result_retention_days: int = Field(default=180, ge=1)


def load_settings() -> CallbackSettings:
    return CallbackSettings.model_validate(dict(os.environ))
