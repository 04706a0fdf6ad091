"""PlaceOrderFunction's configuration: read once from the environment at start, failing fast on a missing value."""

import os

from pydantic import BaseModel, ConfigDict, Field, HttpUrl


class PlacerSettings(BaseModel):
    model_config = ConfigDict(alias_generator=str.upper, extra="ignore", frozen=True)

    form_orders_table: str = Field(min_length=1)
    idempotency_table: str = Field(min_length=1)
    eprom_api_base_url: HttpUrl
    eprom_api_key_secret_id: str = Field(min_length=1)
    dead_letter_queue_url: str = Field(min_length=1)
    allow_synthetic_national_ids: bool = False
    # Records of one batch placed at once; the event source's MaximumConcurrency bounds the environments.
    max_concurrent_orders: int = Field(default=10, ge=1, le=100)
    # How long an orderReference is remembered: a re-sent order within this window is never placed again.
    idempotency_expiry_seconds: int = Field(default=7 * 24 * 3600, ge=3600)
    api_key_max_age_seconds: int = Field(default=300, ge=1)
    eprom_connect_timeout_seconds: float = Field(default=3.05, gt=0)
    eprom_read_timeout_seconds: float = Field(default=15, gt=0)


def load_settings() -> PlacerSettings:
    return PlacerSettings.model_validate(dict(os.environ))
