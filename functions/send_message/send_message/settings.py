"""SendMessageFunction's configuration (eprom.settings: read once from the environment at start)."""

from eprom.queues import MAX_RETRY_DELAY_SECONDS
from eprom.settings import EpromApiSettings
from pydantic import Field


class SenderSettings(EpromApiSettings):
    messages_table: str = Field(min_length=1)
    message_documents_bucket: str = Field(min_length=1)
    message_dead_letter_queue_url: str = Field(min_length=1)
    outcome_bus_name: str = Field(min_length=1)
    idempotency_table: str = Field(min_length=1)  # ePROM's pace: its item is there, shared with the placer
    order_fingerprint_secret_id: str = Field(min_length=1)  # the stack's key of the claims' fingerprints
    allow_synthetic_national_ids: bool = False
    allow_test_mode_orders: bool = False  # a letter's testMode too
    # ePROM's pace: requests per second, shared by every environment of both senders (eprom.pacer)
    eprom_requests_per_second: float = Field(default=2, gt=0, le=100)
    # A message's item (its claim and status) is deleted this long after it was taken.
    result_retention_days: int = Field(default=180, ge=1)
    # Transient failures: retried with exponential backoff (jitter inside the cap) from base to cap, for the window.
    retry_base_delay_seconds: int = Field(default=30, ge=1)
    retry_max_delay_seconds: int = Field(default=900, ge=1, le=MAX_RETRY_DELAY_SECONDS)
    message_retry_window_hours: float = Field(default=24, gt=0)
