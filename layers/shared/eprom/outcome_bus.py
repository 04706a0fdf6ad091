"""OutcomeBus (EventBridge): where the outcome events of outcomes.py are put for upstream."""

from collections.abc import Sequence

from pydantic import BaseModel

from eprom.aws_clients import lazy_client
from eprom.outcomes import SOURCE

PUT_EVENTS_MAX_ENTRIES = 10


class OutcomeEventsNotPut(Exception):
    """EventBridge refused some entries; the whole put is tried again (the same event ids)."""


class OutcomeBus:
    client = lazy_client("events")  # the placer only puts refusals

    def __init__(self, bus_name: str) -> None:
        self.bus_name = bus_name

    def put(self, details: Sequence[BaseModel]) -> None:
        """Each detail (an event model of outcomes.py) as an event whose detail-type is the model's name."""
        for start in range(0, len(details), PUT_EVENTS_MAX_ENTRIES):
            chunk = details[start : start + PUT_EVENTS_MAX_ENTRIES]
            answer = self.client.put_events(
                Entries=[
                    {
                        "EventBusName": self.bus_name,
                        "Source": SOURCE,
                        "DetailType": type(detail).__name__,
                        "Detail": detail.model_dump_json(by_alias=True),
                    }
                    for detail in chunk
                ]
            )
            if answer.get("FailedEntryCount"):
                codes = sorted({entry.get("ErrorCode", "?") for entry in answer["Entries"] if "ErrorCode" in entry})
                raise OutcomeEventsNotPut(f"{answer['FailedEntryCount']} of {len(chunk)} events refused: {codes}")
