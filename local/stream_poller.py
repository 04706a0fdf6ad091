"""Feeds a function from a table's stream the way Lambda's DynamoDB event source does (with the settings of its
`Stream` event in template.yaml): records of a shard in order, in batches; `batchItemFailures` retried from
the first failed record (the records before it are done); a batch whose invocation fails as a whole is split in
two (BisectBatchOnFunctionError); after MaximumRetryAttempts a batch goes, as a pointer, to the on-failure queue.
"""

import json
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3

from local.aws_resources import load_template
from local.lambda_runtime import LambdaContext

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams.type_defs import RecordTypeDef

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class StreamPoller:
    def __init__(
        self, table_name: str, handler: Handler, *, function: str, on_failure_queue_url: str, event: str | None = None
    ) -> None:
        """`event`: the name of the function's stream event in template.yaml (its first one when not given)."""
        function_properties = load_template()["Resources"][function]["Properties"]
        events = function_properties["Events"]
        source = events[event] if event else next(e for e in events.values() if e["Type"] == "DynamoDB")
        self._settings = source["Properties"]
        self._function = function
        self._timeout = function_properties["Timeout"]
        self._handler = handler
        self._on_failure_queue_url = on_failure_queue_url
        self._dynamodb, self._streams, self._sqs = (
            boto3.client("dynamodb"),
            boto3.client("dynamodbstreams"),
            boto3.client("sqs"),
        )
        self._stream_arn = self._dynamodb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream-poller", daemon=True)
        self.invocations = 0
        self.failed_batches = 0
        self.busy = False
        self.last_activity = time.monotonic()

    def start(self) -> "StreamPoller":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._timeout + 5)

    def _run(self) -> None:
        iterators: dict[str, str | None] = {}
        while not self._stop.is_set():
            for shard in self._streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]["Shards"]:
                if shard["ShardId"] not in iterators:
                    iterators[shard["ShardId"]] = self._streams.get_shard_iterator(
                        StreamArn=self._stream_arn,
                        ShardId=shard["ShardId"],
                        ShardIteratorType=self._settings["StartingPosition"],
                    )["ShardIterator"]
            idle = True
            for shard_id, iterator in list(iterators.items()):
                if iterator is None:
                    continue
                answer = self._streams.get_records(ShardIterator=iterator, Limit=self._settings["BatchSize"])
                iterators[shard_id] = answer.get("NextShardIterator")
                if answer["Records"]:
                    idle = False
                    self.busy = True
                    self._deliver([lambda_record(record, self._stream_arn) for record in answer["Records"]], 0)
                    self.last_activity = time.monotonic()
                    self.busy = False
            if idle:
                self._stop.wait(0.2)

    def _deliver(self, records: list[dict[str, Any]], attempt: int) -> None:
        """Invoke until the batch is done: from the first failed record on, split on a whole failure, and after
        MaximumRetryAttempts to the on-failure destination."""
        while records:
            context = LambdaContext(self._function, timeout_seconds=self._timeout)
            try:
                response = self._handler({"Records": records}, context) or {}
                failures = [failure["itemIdentifier"] for failure in response.get("batchItemFailures", [])]
                whole_batch_failed = False
            except Exception:
                failures, whole_batch_failed = [records[0]["dynamodb"]["SequenceNumber"]], True
            self.invocations += 1
            if not failures:
                return
            sequence_numbers = [record["dynamodb"]["SequenceNumber"] for record in records]
            records = records[sequence_numbers.index(min(failures, key=int)) :]  # checkpoint before the first failure
            if attempt >= self._settings["MaximumRetryAttempts"]:
                self._give_up(records)
                return
            attempt += 1
            if whole_batch_failed and self._settings.get("BisectBatchOnFunctionError") and len(records) > 1:
                middle = len(records) // 2
                self._deliver(records[:middle], attempt)
                records = records[middle:]
            time.sleep(0.05)

    def _give_up(self, records: list[dict[str, Any]]) -> None:
        """What Lambda sends to an on-failure destination: where the records are, not the records."""
        self.failed_batches += 1
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        self._sqs.send_message(
            QueueUrl=self._on_failure_queue_url,
            MessageBody=json.dumps(
                {
                    "requestContext": {"condition": "RetryAttemptsExhausted", "functionArn": self._function},
                    "DDBStreamBatchInfo": {
                        "streamArn": self._stream_arn,
                        "startSequenceNumber": first["SequenceNumber"],
                        "endSequenceNumber": last["SequenceNumber"],
                        "batchSize": len(records),
                    },
                }
            ),
        )


def lambda_record(record: "RecordTypeDef", stream_arn: str) -> dict[str, Any]:
    """A stream record as Lambda's event source hands it to the function (times as epoch seconds, the ARN added)."""
    stream = dict(record["dynamodb"])
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        stream["ApproximateCreationDateTime"] = int(created.timestamp())
    return {**record, "dynamodb": stream, "eventSourceARN": stream_arn}
