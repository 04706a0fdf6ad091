"""PublishOutcomesFunction's configuration: read once from the environment at start, failing fast on a missing value."""

import os

from pydantic import BaseModel, ConfigDict, Field


class PublisherSettings(BaseModel):
    model_config = ConfigDict(alias_generator=str.upper, extra="ignore", frozen=True)

    outcome_bus_name: str = Field(min_length=1)
    signed_document_queue_url: str = Field(min_length=1)
    form_results_bucket: str = Field(min_length=1)  # named in the events, so upstream can fetch the objects


def load_settings() -> PublisherSettings:
    return PublisherSettings.model_validate(dict(os.environ))
