"""PublishOutcomesFunction's configuration (eprom.settings: read once from the environment at start)."""

from dataclasses import dataclass

from eprom.settings import FunctionSettings, setting


@dataclass(frozen=True, kw_only=True)
class PublisherSettings(FunctionSettings):
    outcome_bus_name: str = setting(non_empty=True)
    signed_document_queue_url: str = setting(non_empty=True)
    form_results_bucket: str = setting(non_empty=True)  # named in the events, so upstream can fetch the objects
