"""SQS: OrderDeadLetterQueue for orders that will not be placed, and the visibility of OrderQueue's messages.

Every dead letter carries the original body with `rejectionReason` (text, no personal data) and `rejectionClass`.
"""

from functools import cache
from typing import Any, Literal

from eprom.aws_clients import aws_client

type RejectionClass = Literal[
    "InvalidMessage", "RefusedByEprom", "ReusedOrderReference", "RetriesExhausted", "Ambiguous"
]

# SQS counts message attributes (names, types and values) in the message size. OrderDeadLetterQueue's
# MaximumMessageSize exceeds OrderQueue's by DEAD_LETTER_ATTRIBUTES_MAX_BYTES (template.yaml), so a refused
# message of the largest size OrderQueue takes still fits with its reason.
DEAD_LETTER_ATTRIBUTES_MAX_BYTES = 4096
_MAX_REASON_BYTES = 2048


class DeadLetterQueue:
    def __init__(self, queue_url: str, client: Any = None) -> None:
        self._queue_url = queue_url
        self._client = client or aws_client("sqs")

    def send(self, body: str, reason: str, rejection_class: RejectionClass) -> None:
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=body,
            MessageAttributes={
                "rejectionReason": {"DataType": "String", "StringValue": _truncate(reason, _MAX_REASON_BYTES)},
                "rejectionClass": {"DataType": "String", "StringValue": rejection_class},
            },
        )


class OrderQueue:
    """Sets when a message that failed is received again: the placer's backoff, instead of the queue's fixed
    visibility timeout (Lambda's event source leaves the visibility of a failed message as it is)."""

    def __init__(self, client: Any = None) -> None:
        self._client = client or aws_client("sqs")

    def retry_after(self, queue_arn: str, receipt_handle: str, seconds: int) -> None:
        self._client.change_message_visibility(
            QueueUrl=self._url(queue_arn), ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )

    @cache  # noqa: B019 - one OrderQueue lives as long as the Lambda environment; a queue's URL never changes
    def _url(self, queue_arn: str) -> str:
        *_, account, name = queue_arn.split(":")
        return self._client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


def _truncate(text: str, max_bytes: int) -> str:
    encoded = text.encode()
    return text if len(encoded) <= max_bytes else encoded[: max_bytes - 3].decode(errors="ignore") + "..."
