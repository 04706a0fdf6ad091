"""StatusCallbackFunction's configuration (eprom.settings: read once from the environment at start)."""

from eprom.settings import ApiKeySettings
from pydantic import Field


class CallbackSettings(ApiKeySettings):
    form_orders_table: str = Field(min_length=1)
    form_results_bucket: str = Field(min_length=1)
    result_retention_days: int = Field(default=180, ge=1)
    messages_table: str = Field(min_length=1)  # letters' callbacks
    outcome_bus_name: str = Field(min_length=1)  # PrivacySettingChanged
