"""AWS's limits where moto has none: a WSGI middleware in front of the local moto server that refuses what AWS
refuses, with AWS's error codes, so that a design needing more fails here first (issue #18).

- SQS: a ChangeMessageVisibility whose timeout would end more than 12 h after the message's receive (the receive
  time of each receipt handle is taken from the ReceiveMessage answers; moto 5.2 itself measures from the send,
  as AWS does not: stricter for a message received long after it was sent), a message whose body plus
  attributes exceeds the queue's MaximumMessageSize (moto counts characters of the body alone), and a message
  with more than 10 attributes.
- EventBridge: a PutEvents request whose entries add up to more than 256 KiB.
- S3: a read (GetObject, HeadObject) of a missing key answers 403 AccessDenied, not 404, as S3 answers a caller
  without s3:ListBucket on the bucket, which no function role has.
- DynamoDB: a query on a global secondary index does not see an item whose key in that index was written in the
  last `gsi_lag_seconds` (GSI reads are eventually consistent; moto's are immediate), so nothing that must be exact
  can rest on one: a new item is missing from the index for that long, as on AWS, and an item whose index key
  changed is missing too (AWS would show it under its old key). A write that leaves the index key as it was
  (an update of other attributes, a callback's) keeps the item in the index, as DynamoDB does: only its projected
  values would lag there (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Writes).
  moto itself refuses items over DynamoDB's 400 KB.

API Gateway's and Lambda's limits are in local/callback_front.py and local/lambda_runtime.py.
"""

import io
import json
import os
import threading
import time
from collections.abc import Iterable
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from moto.core.models import DEFAULT_ACCOUNT_ID

# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html
SQS_MAX_VISIBILITY_SECONDS = 43200
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html: 1 MiB since August
# 2025, body and message attributes (names, types and values) together.
SQS_MAX_MESSAGE_BYTES = 1_048_576
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html
SQS_MAX_MESSAGE_ATTRIBUTES = 10
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html
EVENTBRIDGE_MAX_REQUEST_BYTES = 262_144
# The lag of GSI reads behind writes in the local stack: real, and small. LOCAL_GSI_LAG_SECONDS overrides it.
DEFAULT_GSI_LAG_SECONDS = 1.0

_DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


class AwsLimits:
    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self.gsi_lag_seconds = float(os.environ.get("LOCAL_GSI_LAG_SECONDS", DEFAULT_GSI_LAG_SECONDS))
        self.missing_key_reads_denied = True
        self._lock = threading.Lock()
        self._received_at: dict[str, float] = {}  # receipt handle -> when ReceiveMessage returned it
        # (table, item key, index) -> when the item's key in that index was last written (new or changed)
        self._indexed_at: dict[tuple[str, str, str], float] = {}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        service, _, operation = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")
        if service in ("AmazonSQS", "AWSEvents") or service.startswith("DynamoDB_"):
            return self._json_call(service, operation, environ, start_response)
        if self.missing_key_reads_denied and _is_s3_object_read(environ):
            return self._missing_key_denied(environ, start_response)
        return self.app(environ, start_response)

    def _json_call(self, service: str, operation: str, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        request = json.loads(body or b"{}")
        refusal = self._refusal(service, operation, request, environ)
        if refusal:
            error_type, message = refusal
            return _error(start_response, 400, error_type, message)
        writes = operation in _DYNAMODB_WRITES and service.startswith("DynamoDB_")
        before = _index_keys(operation, request) if writes else {}  # DynamoDB requests come one at a time (ports.py)
        status, headers, answer = _call(self.app, environ)
        if status.startswith("200"):
            self._observe(service, operation, request, answer)
            if writes:
                self._observe_index_keys(before, _index_keys(operation, request))
        start_response(status, headers)
        return [self._lagged(operation, request, answer) if service.startswith("DynamoDB_") else answer]

    def _refusal(
        self, service: str, operation: str, request: dict[str, Any], environ: dict[str, Any]
    ) -> tuple[str, str] | None:
        if service == "AmazonSQS" and operation == "ChangeMessageVisibility":
            received_at = self._received_at.get(request.get("ReceiptHandle", ""))
            timeout = int(request.get("VisibilityTimeout", 0))
            if received_at is not None and time.monotonic() - received_at + timeout > SQS_MAX_VISIBILITY_SECONDS:
                return "com.amazonaws.sqs#InvalidParameterValue", (
                    f"Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout "
                    f"for the message is beyond the limit [{SQS_MAX_VISIBILITY_SECONDS} seconds]"
                )
        if service == "AmazonSQS" and operation == "SendMessage":
            if (count := len(request.get("MessageAttributes") or {})) > SQS_MAX_MESSAGE_ATTRIBUTES:
                maximum = SQS_MAX_MESSAGE_ATTRIBUTES
                return "com.amazonaws.sqs#InvalidParameterValue", (
                    f"Number of message attributes [{count}] exceeds the allowed maximum [{maximum}]."
                )
            limit = min(SQS_MAX_MESSAGE_BYTES, _queue_max_message_size(request["QueueUrl"], environ))
            if sqs_message_bytes(request) > limit:
                return "com.amazonaws.sqs#InvalidParameterValue", (
                    f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes."
                )
        entries = request.get("Entries", []) if (service, operation) == ("AWSEvents", "PutEvents") else []
        if sum(map(event_entry_bytes, entries)) > EVENTBRIDGE_MAX_REQUEST_BYTES:
            return "ValidationException", "Total size of the entries in the request is over the limit."
        return None

    def _observe(self, service: str, operation: str, request: dict[str, Any], answer: bytes) -> None:
        now = time.monotonic()
        with self._lock:
            if service == "AmazonSQS" and operation == "ReceiveMessage":
                for message in json.loads(answer).get("Messages", []):
                    self._received_at[message["ReceiptHandle"]] = now

    def _observe_index_keys(self, before: dict[tuple[str, str, str], str | None],
                            after: dict[tuple[str, str, str], str | None]) -> None:  # fmt: skip
        """An item lags in an index when this write gave it a key there it did not have before."""
        now = time.monotonic()
        with self._lock:
            for where, index_key in after.items():
                if index_key is not None and index_key != before.get(where):
                    self._indexed_at[where] = now

    def _lagged(self, operation: str, request: dict[str, Any], answer: bytes) -> bytes:
        """A Query of a GSI without the items whose key in it was written in the last gsi_lag_seconds."""
        if operation != "Query" or "IndexName" not in request or self.gsi_lag_seconds <= 0:
            return answer
        result = json.loads(answer)
        if "Items" not in result:
            return answer
        table, index, fresh_after = request["TableName"], request["IndexName"], time.monotonic() - self.gsi_lag_seconds
        with self._lock:
            indexed_at = [self._indexed_at.get((table, _key_of(table, item), index)) for item in result["Items"]]
        visible = [
            item for item, at in zip(result["Items"], indexed_at, strict=True) if at is None or at <= fresh_after
        ]
        result["Items"], result["Count"] = visible, len(visible)
        return json.dumps(result).encode()

    def _missing_key_denied(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        status, headers, answer = _call(self.app, environ)
        is_head = environ["REQUEST_METHOD"] == "HEAD"
        if not status.startswith("404") or not (is_head or b"<Code>NoSuchKey</Code>" in answer):
            start_response(status, headers)
            return [answer]
        denied = (
            b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
            b"<Message>Access Denied</Message></Error>"
        )
        start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(denied)))])
        return [b"" if is_head else denied]


def sqs_message_bytes(request: dict[str, Any]) -> int:
    """A message's size as SQS counts it: the body and each attribute's name, data type and value, in bytes."""
    size = len(request.get("MessageBody", "").encode())
    for name, attribute in (request.get("MessageAttributes") or {}).items():
        value = attribute.get("StringValue") or attribute.get("BinaryValue") or ""
        size += len(name.encode()) + len(attribute.get("DataType", "").encode()) + len(str(value).encode())
    return size


def event_entry_bytes(entry: dict[str, Any]) -> int:
    """A PutEvents entry's size as EventBridge counts it (eb-putevent-size.html): 14 bytes for Time if given, and
    the UTF-8 bytes of Source, DetailType, Detail and each of Resources."""
    size = 14 if entry.get("Time") else 0
    for field in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(field) or "").encode())
    return size + sum(len(resource.encode()) for resource in entry.get("Resources") or [])


def _call(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    started: list[Any] = []
    answer = b"".join(app(environ, lambda status, headers, *_: started.extend((status, headers))))
    status, headers = started
    if environ["REQUEST_METHOD"] == "HEAD":  # no body: its Content-Length is the object's, as the app said
        return status, headers, answer
    return (
        status,
        [(name, value) for name, value in headers if name.lower() != "content-length"]
        + [("Content-Length", str(len(answer)))],
        answer,
    )


def _error(start_response: Any, status: int, error_type: str, message: str) -> Iterable[bytes]:
    body = json.dumps({"__type": error_type, "message": message}).encode()
    code = error_type.rsplit("#", 1)[-1]
    start_response(
        f"{status} Bad Request",
        [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-query-error", f"{code};Sender"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


def _is_s3_object_read(environ: dict[str, Any]) -> bool:
    credential = environ.get("HTTP_AUTHORIZATION", "") + environ.get("QUERY_STRING", "")
    path = environ.get("PATH_INFO", "").strip("/")
    return (
        environ["REQUEST_METHOD"] in ("GET", "HEAD")
        and "/s3/aws4_request" in credential.replace("%2F", "/")
        and ("/" in path)
    )


def _region(environ: dict[str, Any]) -> str:
    credential = environ.get("HTTP_AUTHORIZATION", "").split("Credential=", 1)[-1]
    parts = credential.split("/")
    return parts[2] if len(parts) > 3 else "us-east-1"


def _queue_max_message_size(queue_url: str, environ: dict[str, Any]) -> int:
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[DEFAULT_ACCOUNT_ID][_region(environ)].queues.get(queue_url.rstrip("/").rsplit("/", 1)[-1])
    # moto sets a queue's attributes by their names: its Queue declares none of them
    return int(queue.maximum_message_size) if queue else SQS_MAX_MESSAGE_BYTES  # type: ignore[attr-defined]


def _written(operation: str, request: dict[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        yield request["TableName"], request.get("Item") or request["Key"]
    elif operation == "BatchWriteItem":
        for table, writes in request["RequestItems"].items():
            for write in writes:
                yield table, write.get("PutRequest", {}).get("Item") or write["DeleteRequest"]["Key"]
    else:
        for action in request["TransactItems"]:
            for kind in ("Put", "Update", "Delete"):
                if kind in action:
                    yield action[kind]["TableName"], action[kind].get("Item") or action[kind]["Key"]


def _index_keys(operation: str, request: dict[str, Any]) -> dict[tuple[str, str, str], str | None]:
    """For each item the write request names: its key in each global secondary index of its table, as moto holds the
    item now ((table, item key, index) -> the index key as text; None when the item is not in that index)."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType

    keys: dict[tuple[str, str, str], str | None] = {}
    for table_name, key_or_item in _written(operation, request):
        table = next((backend.tables[table_name] for backend in dynamodb_backends[DEFAULT_ACCOUNT_ID].values()
                      if table_name in backend.tables), None)  # fmt: skip
        if table is None:
            continue
        hash_key, range_key = key_or_item.get(table.hash_key_attr), key_or_item.get(table.range_key_attr or "")
        item = None
        if hash_key is not None:
            item = table.get_item(DynamoType(hash_key), DynamoType(range_key) if range_key is not None else None)
        for index in table.global_indexes:
            values = [item.attrs.get(name) for name in index.schema_key_attrs] if item else [None]
            present = [value for value in values if value is not None]
            keys[(table_name, _key_of(table_name, key_or_item), index.name)] = (
                json.dumps([value.to_json() for value in present], sort_keys=True)
                if len(present) == len(values)
                else None
            )
    return keys


def _key_of(table_name: str, item: dict[str, Any]) -> str:
    """The item's primary key (the table's key attributes only), as text."""
    from moto.dynamodb.models import dynamodb_backends

    for backend in dynamodb_backends[DEFAULT_ACCOUNT_ID].values():
        table = backend.tables.get(table_name)
        if table is not None:
            names = [table.hash_key_attr, table.range_key_attr]
            return json.dumps([item.get(name) for name in names if name], sort_keys=True)
    return json.dumps(item, sort_keys=True)
