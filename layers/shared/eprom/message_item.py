"""The MessagesTable items (architecture.md, "Messages to citizens"), parsed at the edges (message_store.py, the
table's stream). Attribute names are the models' aliases (camelCase).

- A message's item, keyed by its messageReference: the claim its sending rests on (eprom.claims: attemptId, state,
  fingerprint, ...), and, once ePROM answered, the message's status, messageToCitizenId (letters), channel and the
  history of ePROM's callbacks. Never the national id, phone number, address or text.
- A letter's link, keyed "messageToCitizenId#<id>": where ePROM's callbacks for that id are noted, strongly
  consistent, whichever comes first of the callback and the sender's answer, and which message (`linkedReference`)
  they belong to (message_store.py says why not the messageToCitizenId-index alone).

The statuses and their ranks, the claim's `Sent` and the link's key prefix are message_store.py's: the sender uses
them without this module's pydantic.
"""

from decimal import Decimal
from typing import Any

from pydantic import ConfigDict, Field

from eprom.message_store import LINK_PREFIX
from eprom.order_item import _ItemModel


class MessageHistoryEntry(_ItemModel):
    """One distinct callback, as the wire had it (an unknown value as its text, cut short)."""

    sent_status: str | None = None
    notification_channel: str | None = None
    received_at: str


class MessageItem(_ItemModel):
    model_config = ConfigDict(extra="ignore")  # the claim's own attributes (fingerprint, attemptId, ...)

    message_reference: str
    kind: str | None = None
    state: str | None = None  # the claim's: Sending, Ambiguous, Sent
    ambiguous_reason: str | None = None
    taken_at: Decimal | None = None
    status: str | None = None
    message_to_citizen_id: str | None = None
    notification_channel: str | None = None
    sent_at: str | None = None  # when ePROM answered
    updated_at: str | None = None
    status_history: list[MessageHistoryEntry] = Field(default_factory=list)
    history_keys: set[str] = Field(default_factory=set)
    linked_reference: str | None = None  # a link: the message its callbacks belong to
    expires_at: int | None = None

    @property
    def is_link(self) -> bool:
        return self.message_reference.startswith(LINK_PREFIX)

    def as_attributes(self) -> dict[str, Any]:
        """The item as read (the claim's own attributes aside): its attribute names, and only the attributes it has."""
        return self.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True)
