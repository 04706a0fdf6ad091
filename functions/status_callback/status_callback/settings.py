"""StatusCallbackFunction's configuration (eprom.settings: read once from the environment at start)."""

from dataclasses import dataclass

from eprom.settings import ApiKeySettings, setting


@dataclass(frozen=True, kw_only=True)
class CallbackSettings(ApiKeySettings):
    form_orders_table: str = setting(non_empty=True)
    form_results_bucket: str = setting(non_empty=True)
    result_retention_days: int = setting(180, ge=1)
    messages_table: str = setting(non_empty=True)  # letters' callbacks
    outcome_bus_name: str = setting(non_empty=True)  # PrivacySettingChanged
