"""Feeds PlaceOrderFunction from OrderQueue the way Lambda's SQS event source does: batches of records,
delete what succeeded, leave `batchItemFailures` on the queue for a later receive (the queue's redrive policy
moves a message to the DLQ after maxReceiveCount receives).
"""

import threading
import time
from collections.abc import Callable
from typing import Any

import boto3

from local.lambda_runtime import LambdaContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class SqsPoller:
    def __init__(
        self,
        queue_url: str,
        handler: Handler,
        *,
        batch_size: int = 10,
        retry_after_seconds: int = 1,
        function_timeout_seconds: float = 30.0,
    ) -> None:
        self._queue_url = queue_url
        self._handler = handler
        self._batch_size = batch_size
        # Lambda leaves a failed message invisible for the queue's whole visibility timeout (180 s); locally we
        # make it visible again sooner, so a demo does not wait minutes for its retries.
        self._retry_after_seconds = retry_after_seconds
        self._function_timeout_seconds = function_timeout_seconds
        self._sqs = boto3.client("sqs")
        self._queue_arn = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqs-poller", daemon=True)
        self.invocations = 0
        self.busy = False
        self.last_activity = time.monotonic()

    def start(self) -> "SqsPoller":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._function_timeout_seconds + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            messages = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=self._batch_size,
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if messages:
                self.busy = True
                self._invoke(messages)
                self.last_activity = time.monotonic()
                self.busy = False

    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [self._record(message) for message in messages]}
        context = LambdaContext("PlaceOrderFunction", timeout_seconds=self._function_timeout_seconds)
        try:
            response = self._handler(event, context)
            failed = {failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])}
        except Exception:  # the whole invocation failed: every record goes back, as on Lambda
            failed = {message["MessageId"] for message in messages}
        self.invocations += 1
        for message in messages:
            if message["MessageId"] in failed:
                self._sqs.change_message_visibility(
                    QueueUrl=self._queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=self._retry_after_seconds,
                )
            else:
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "dataType": value["DataType"],
                    "stringListValues": [],
                    "binaryListValues": [],
                }
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._sqs.meta.region_name,
        }
