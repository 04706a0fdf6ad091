"""A letter's fate from ePROM (PUT /api/MessageToCitizen): authenticated by the apiKey in its body, as a form's
callback is, then noted on MessagesTable (eprom.message_store: the link by messageToCitizenId, and the message's
item once linked)."""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from eprom.api_key import ApiKeySource
from eprom.message_store import MessageStore
from eprom.messages import MessageToCitizenCallback

from status_callback.callbacks import authenticate, loggable

logger = Logger(child=True)
metrics = Metrics()


def receive_message_callback(
    callback: MessageToCitizenCallback, *, api_keys: ApiKeySource, store: MessageStore
) -> None:
    authenticate([callback.api_key.get_secret_value()] if callback.api_key else [], api_keys)
    changed = store.apply_callback(callback)
    metrics.add_metric(name="CallbacksStored" if changed else "CallbacksUnchanged", unit=MetricUnit.Count, value=1)
    logger.info(
        "letter's callback stored" if changed else "letter's callback acknowledged without change (a replay)",
        message_to_citizen_id=str(callback.message_to_citizen_id),
        sent_status=loggable(callback.sent_status),
        notification_channel=loggable(callback.notification_channel),
    )
