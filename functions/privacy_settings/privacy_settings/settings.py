"""PrivacySettingsFunction's configuration (eprom.settings: read once from the environment at start)."""

from dataclasses import dataclass

from eprom.settings import EpromApiSettings, setting


@dataclass(frozen=True, kw_only=True)
class PrivacySettingsSettings(EpromApiSettings):
    idempotency_table: str = setting(non_empty=True)  # ePROM's shared pace lives there (eprom.pacer)
    form_results_bucket: str = setting(non_empty=True)  # privacy/lists/
    # ePROM's pace: requests per second from the whole stack, as the placer's (the same item, the same rate)
    eprom_requests_per_second: float = setting(2, gt=0, le=100)
    allow_synthetic_national_ids: bool = False
    # get and set keep trying ePROM (timeouts, 5xx, the pace's wait) this long, then answer Transient: less than an
    # SDK's default read timeout (boto3: 60 s), so the caller hears the outcome before it could send anything else.
    # list uses the whole invocation.
    privacy_call_seconds: float = setting(25, ge=5, le=600)  # at least a connect timeout and a read
