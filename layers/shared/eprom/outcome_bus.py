"""OutcomeBus (EventBridge): where outcome events are put for upstream, and how an event is identified.

An event is its detail-type and its detail as JSON text: the models of outcomes.py (pydantic, the published schema)
make theirs with outcomes.as_events; the placer's and the sender's refusals are made without pydantic
(refusal_events.py), so this module imports none either and those functions start without it.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from eprom.aws_clients import lazy_client

SOURCE = "eprom.integration"
PUT_EVENTS_MAX_ENTRIES = 10
_EVENT_IDS = uuid.UUID("6f1d3c3e-8f0a-4f5e-9d43-2c8a1b7e5a10")  # namespace of our deterministic event ids


def event_id(detail_type: str, *fact: object) -> str:
    """The same fact always gets the same eventId: a repeated event carries the same id, and consumers de-duplicate
    on it."""
    return str(uuid.uuid5(_EVENT_IDS, "|".join([detail_type, *map(str, fact)])))


@dataclass(frozen=True)
class OutcomeEvent:
    detail_type: str  # the detail's model name in outcomes.py (FormOrderPlaced, ...)
    detail: str  # JSON text, camelCase keys, as the published schema has it


class OutcomeEventsNotPut(Exception):
    """EventBridge refused some entries; the whole put is tried again (the same event ids)."""


class OutcomeBus:
    client = lazy_client("events")  # the placer only puts refusals

    def __init__(self, bus_name: str) -> None:
        self.bus_name = bus_name

    def put(self, events: Sequence[OutcomeEvent]) -> None:
        for start in range(0, len(events), PUT_EVENTS_MAX_ENTRIES):
            chunk = events[start : start + PUT_EVENTS_MAX_ENTRIES]
            answer = self.client.put_events(
                Entries=[
                    {"EventBusName": self.bus_name, "Source": SOURCE, "DetailType": event.detail_type,
                     "Detail": event.detail}
                    for event in chunk
                ]
            )  # fmt: skip
            if answer.get("FailedEntryCount"):
                codes = sorted({entry.get("ErrorCode", "?") for entry in answer["Entries"] if "ErrorCode" in entry})
                raise OutcomeEventsNotPut(f"{answer['FailedEntryCount']} of {len(chunk)} events refused: {codes}")
