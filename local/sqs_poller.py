"""Feeds a function from its queue the way Lambda's SQS event source does, with the settings of the function's SQS
event in template.yaml (BatchSize, MaximumBatchingWindowInSeconds, ScalingConfig.MaximumConcurrency; a parameter's
default where the template refers to one):

- long polling (20 s), so a message is picked up as soon as it is sent, and an idle queue costs few receives;
- up to MaximumConcurrency batches at once, each an invocation of its own: one poller per invocation that may run,
  each receiving only when it can invoke, so no message waits received for an invocation (what MaximumConcurrency
  is for, unlike throttling by reserved concurrency);
- a batch as one receive returns it (up to 10 messages), or, with a batching window, gathered across receives until
  BatchSize or the window is reached;
- what succeeded is deleted; `batchItemFailures` stay on the queue untouched and are received again when their
  visibility timeout ends, the one the function set (its backoff) or else the queue's (the queue's redrive policy
  moves a message to the DLQ after maxReceiveCount receives).

https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html (long polling, concurrent batches, maximum
concurrency), https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html (BatchSize,
MaximumBatchingWindowInSeconds). Unlike Lambda, which gives each concurrent invocation an environment of its own,
the invocations here share the handler's module: what it keeps across invocations (clients, its worker threads) is
shared by them.
"""

import base64
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3

from local.aws_resources import load_template
from local.iam import running_as
from local.lambda_runtime import LambdaContext

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
LONG_POLL_SECONDS = 20  # the most SQS allows, as the event source uses it
MESSAGES_PER_RECEIVE = 10  # the most one ReceiveMessage returns


class SqsPoller:
    def __init__(
        self,
        queue_url: str,
        handler: Handler,
        *,
        function: str = "PlaceOrderFunction",
        maximum_concurrency: int | None = None,
    ) -> None:
        """`function`: the logical id in template.yaml whose timeout and SQS event apply; `maximum_concurrency`: in
        place of the event's MaximumConcurrency."""
        self._queue_url = queue_url
        self._handler = handler
        self._function = function
        template = load_template()
        properties = template["Resources"][function]["Properties"]
        self._function_timeout_seconds = properties["Timeout"]
        source = next(event for event in properties["Events"].values() if event["Type"] == "SQS")["Properties"]
        self._batch_size = _value(template, source.get("BatchSize", 10))
        self._batching_window_seconds = _value(template, source.get("MaximumBatchingWindowInSeconds", 0))
        concurrency = maximum_concurrency or _value(template, source.get("ScalingConfig", {}).get("MaximumConcurrency"))
        self._sqs = boto3.client("sqs")
        self._queue_arn = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self._stopping = False
        self._invoking = 0
        self._changes = threading.Condition()
        # The Lambda service polls with the function's role (local/iam.py decides, when enforced)
        self._threads = [
            threading.Thread(target=running_as(function, self._poll), name=f"sqs-poller-{n}", daemon=True)
            for n in range(concurrency or 1)
        ]
        self.invocations = 0
        self.last_activity = time.monotonic()

    @property
    def busy(self) -> bool:
        """An invocation is running."""
        return self._invoking > 0

    def start(self) -> "SqsPoller":
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Returns once the invocations running have ended. A poller waiting in a receive is left to it: what it
        receives now is not invoked (visible again after the queue's visibility timeout, as when an event source is
        disabled), and it ends with the process or with the queue's server."""
        with self._changes:
            self._stopping = True
            self._changes.wait_for(lambda: self._invoking == 0, timeout=self._function_timeout_seconds + 5)

    def _poll(self) -> None:
        while not self._stopping:
            try:
                messages = self._batch()
            except Exception:
                if self._stopping:  # the queue's server went away with the stack
                    return
                raise
            with self._changes:
                if self._stopping or not messages:
                    continue
                self._invoking += 1
            try:
                self._invoke(messages)
            finally:
                with self._changes:
                    self._invoking -= 1
                    self.invocations += 1
                    self.last_activity = time.monotonic()
                    self._changes.notify_all()

    def _batch(self) -> list["MessageTypeDef"]:
        """What one receive returns; with a batching window, more until BatchSize or the window's end."""
        messages = self._receive(LONG_POLL_SECONDS, self._batch_size)
        window_ends = time.monotonic() + self._batching_window_seconds
        while messages and len(messages) < self._batch_size and not self._stopping:
            left = window_ends - time.monotonic()
            if left <= 0:
                break
            messages += self._receive(min(LONG_POLL_SECONDS, max(1, int(left))), self._batch_size - len(messages))
        return messages

    def _receive(self, wait_seconds: int, up_to: int) -> list["MessageTypeDef"]:
        return self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=min(MESSAGES_PER_RECEIVE, up_to),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    def _invoke(self, messages: list["MessageTypeDef"]) -> None:
        event = {"Records": [lambda_record(message, self._queue_arn) for message in messages]}
        context = LambdaContext(self._function, timeout_seconds=self._function_timeout_seconds)
        try:
            response = self._handler(event, context)
            failed = {failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])}
        except Exception:  # the whole invocation failed: every record goes back, as on Lambda
            failed = {message["MessageId"] for message in messages}
        for message in messages:
            if message["MessageId"] not in failed:
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])


def _value(template: dict[str, Any], value: Any) -> Any:
    """A property's value, or the default of the parameter it refers to."""
    if isinstance(value, dict) and "Ref" in value:
        return template["Parameters"][value["Ref"]]["Default"]
    return value


def lambda_record(message: "MessageTypeDef", queue_arn: str) -> dict[str, Any]:
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
