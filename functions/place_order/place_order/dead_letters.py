"""OrderDeadLetterQueue: refused messages go here with their original body and a `rejectionReason`."""

from typing import Any

import boto3

# SQS message attributes are limited to 256 KB with the body; a reason this long is already unreadable.
_MAX_REASON_LENGTH = 1024


class DeadLetterQueue:
    def __init__(self, queue_url: str, client: Any = None) -> None:
        self._queue_url = queue_url
        self._client = client or boto3.client("sqs")

    def send(self, body: str, reason: str) -> None:
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=body,
            MessageAttributes={"rejectionReason": {"DataType": "String", "StringValue": reason[:_MAX_REASON_LENGTH]}},
        )
