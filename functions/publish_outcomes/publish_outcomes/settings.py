"""PublishOutcomesFunction's configuration (eprom.settings: read once from the environment at start)."""

from eprom.settings import FunctionSettings
from pydantic import Field


class PublisherSettings(FunctionSettings):
    outcome_bus_name: str = Field(min_length=1)
    signed_document_queue_url: str = Field(min_length=1)
    form_results_bucket: str = Field(min_length=1)  # named in the events, so upstream can fetch the objects
