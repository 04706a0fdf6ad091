"""ePROM's status callback for a letter (eprom-contract.md §7), as a pydantic model. The message upstream puts on
MessageQueue is eprom.contracts' (the schema) and eprom.citizen_messages' (the sender's reading)."""

from typing import Annotated
from uuid import UUID

from pydantic import Field, SecretStr

from eprom.codes import NotificationChannel, SentStatus
from eprom.models import LenientWireEnum, _CallbackPart


class MessageToCitizenCallback(_CallbackPart):
    """ePROM's PUT /api/MessageToCitizen: a letter's fate. Only messageToCitizenId and apiKey must be readable; an
    unknown notificationChannel or sentStatus is kept as sent (it goes to the history and moves nothing)."""

    api_key: Annotated[SecretStr | None, Field(description="The ApiKey the letter was sent with")] = None
    message_to_citizen_id: UUID
    notification_channel: LenientWireEnum[NotificationChannel] = None
    sent_status: LenientWireEnum[SentStatus] = None
