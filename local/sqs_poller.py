"""Feeds PlaceOrderFunction from OrderQueue the way Lambda's SQS event source does: batches of records,
delete what succeeded, and leave `batchItemFailures` on the queue untouched: they are received again when their
visibility timeout ends, the one the function set (its backoff) or else the queue's (the queue's redrive policy
moves a message to the DLQ after maxReceiveCount receives).
"""

import base64
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3

from local.aws_resources import load_template
from local.iam import running_as
from local.lambda_runtime import LambdaContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class SqsPoller:
    def __init__(
        self,
        queue_url: str,
        handler: Handler,
        *,
        function: str = "PlaceOrderFunction",
    ) -> None:
        """`function`: the logical id in template.yaml whose timeout and SQS event's batch size apply."""
        self._queue_url = queue_url
        self._handler = handler
        self._function = function
        properties = load_template()["Resources"][function]["Properties"]
        self._function_timeout_seconds = properties["Timeout"]
        source = next(event for event in properties["Events"].values() if event["Type"] == "SQS")
        batch_size = source["Properties"]["BatchSize"]
        self._batch_size = min(10, batch_size) if isinstance(batch_size, int) else 10  # a parameter: its default
        self._sqs = boto3.client("sqs")
        self._queue_arn = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self._stop = threading.Event()
        # The Lambda service polls with the function's role (local/iam.py decides, when enforced)
        self._thread = threading.Thread(target=running_as(function, self._run), name="sqs-poller", daemon=True)
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
        event = {"Records": [lambda_record(message, self._queue_arn) for message in messages]}
        context = LambdaContext(self._function, timeout_seconds=self._function_timeout_seconds)
        try:
            response = self._handler(event, context)
            failed = {failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])}
        except Exception:  # the whole invocation failed: every record goes back, as on Lambda
            failed = {message["MessageId"] for message in messages}
        self.invocations += 1
        for message in messages:
            if message["MessageId"] not in failed:
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])


def lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS event record as Lambda's event source makes it from a received message."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": base64.b64encode(value["BinaryValue"]).decode() if "BinaryValue" in value else None,
                "dataType": value["DataType"],
                "stringListValues": [],
                "binaryListValues": [],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }
