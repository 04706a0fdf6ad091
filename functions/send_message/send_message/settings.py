"""SendMessageFunction's configuration (eprom.settings: read once from the environment at start)."""

from dataclasses import dataclass

from eprom.queues import MAX_RETRY_DELAY_SECONDS
from eprom.settings import EpromApiSettings, setting


@dataclass(frozen=True, kw_only=True)
class SenderSettings(EpromApiSettings):
    messages_table: str = setting(non_empty=True)
    message_documents_bucket: str = setting(non_empty=True)
    message_dead_letter_queue_url: str = setting(non_empty=True)
    outcome_bus_name: str = setting(non_empty=True)
    idempotency_table: str = setting(non_empty=True)  # ePROM's pace: its item is there, shared with the placer
    order_fingerprint_secret_id: str = setting(non_empty=True)  # the stack's key of the claims' fingerprints
    allow_synthetic_national_ids: bool = False
    allow_test_mode_orders: bool = False  # a letter's testMode too
    # ePROM's pace: requests per second, shared by every environment of both senders (eprom.pacer)
    eprom_requests_per_second: float = setting(2, gt=0, le=100)
    # A message's item (its claim and status) is deleted this long after it was taken.
    result_retention_days: int = setting(180, ge=1)
    # Transient failures: retried with exponential backoff (jitter inside the cap) from base to cap, for the window.
    retry_base_delay_seconds: int = setting(30, ge=1)
    retry_max_delay_seconds: int = setting(900, ge=1, le=MAX_RETRY_DELAY_SECONDS)
    message_retry_window_hours: float = setting(24, gt=0)
