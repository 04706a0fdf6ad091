"""SQS: records of Lambda's SQS event, dead-letter queues that say why, a message's next delivery, and
SignedDocumentQueue's jobs (what is done with a record: retrying_consumer.py).

Every dead letter carries the original body with `rejectionReason` (text, no personal data) and `rejectionClass`.
"""

import base64
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Self

from eprom.aws_clients import lazy_client

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

# SQS refuses a ChangeMessageVisibility whose timeout would end more than 12 h after the message's receive
# (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html), and
# then the queue's own visibility timeout applies. Lambda's record carries no receive time, but the receive was
# less than the queue's VisibilityTimeout ago (else the message would be visible again and its receipt handle of no
# use): at most 660 s for our queues, which tests/integration/test_aws_limits.py holds below RECEIVE_MARGIN_SECONDS.
SQS_MAX_VISIBILITY_SECONDS = 43200
RECEIVE_MARGIN_SECONDS = 900
MAX_RETRY_DELAY_SECONDS = SQS_MAX_VISIBILITY_SECONDS - RECEIVE_MARGIN_SECONDS

# SQS counts message attributes (names, types and values) in the message size. OrderDeadLetterQueue's
# MaximumMessageSize exceeds OrderQueue's by DEAD_LETTER_ATTRIBUTES_MAX_BYTES (template.yaml), so a refused
# message of the largest size OrderQueue takes still fits with its reason.
DEAD_LETTER_ATTRIBUTES_MAX_BYTES = 4096
_MAX_REASON_BYTES = 2048
# The message attribute of a parked (Ambiguous) order that names the attempt it was parked for.
AMBIGUOUS_ATTEMPT_ID = "ambiguousAttemptId"
_OURS = frozenset({"rejectionReason", "rejectionClass", AMBIGUOUS_ATTEMPT_ID})
# A message carries at most 10 attributes
# (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html).
MAX_MESSAGE_ATTRIBUTES = 10


@dataclass(frozen=True)
class SqsRecord:
    """What the queue-driven functions use of a record of Lambda's SQS event. Powertools' SQSRecord would do as
    well, but its package imports every event class it knows: ~25 ms of each cold start (docs/performance.md)."""

    message_id: str
    body: str
    receipt_handle: str
    event_source_arn: str
    sent_at: datetime
    receive_count: int
    string_attributes: dict[str, str]  # the message attributes of type String, by name
    # every message attribute as SendMessage takes it (upstream's own go with the message to the DLQ)
    message_attributes: dict[str, "MessageAttributeValueTypeDef"] = field(default_factory=dict)

    @classmethod
    def of(cls, record: dict[str, Any]) -> "SqsRecord":
        attributes = record["attributes"]
        message_attributes = record.get("messageAttributes") or {}
        return cls(
            message_id=record["messageId"],
            body=record["body"],
            receipt_handle=record["receiptHandle"],
            event_source_arn=record["eventSourceARN"],
            sent_at=datetime.fromtimestamp(int(attributes["SentTimestamp"]) / 1000, UTC),
            receive_count=int(attributes["ApproximateReceiveCount"]),
            string_attributes={
                name: attribute["stringValue"]
                for name, attribute in message_attributes.items()
                if attribute.get("stringValue") is not None
            },
            message_attributes={name: _as_sent(attribute) for name, attribute in message_attributes.items()},
        )

    def age_seconds(self) -> float:
        """Since the message was first sent (SentTimestamp, kept on redelivery): retry windows count from there."""
        return (datetime.now(UTC) - self.sent_at).total_seconds()


class DeadLetterQueue:
    _client = lazy_client("sqs")  # most invocations send nothing here

    def __init__(self, queue_url: str) -> None:
        self._queue_url = queue_url

    def send(
        self,
        body: str,
        reason: str,
        rejection_class: str,
        extra: Mapping[str, str] | None = None,
        *,
        attributes: Mapping[str, "MessageAttributeValueTypeDef"] | None = None,
    ) -> None:
        """`extra`: more String attributes of ours (for a parked order, the attempt it was parked for).
        `attributes`: the message's own (SqsRecord.message_attributes), kept beside ours (a trace id, say): as many as
        SQS takes with ours (10 in all), by name; the reason says how many were left out, never which (names are
        input too)."""
        ours: dict[str, MessageAttributeValueTypeDef] = {
            "rejectionClass": {"DataType": "String", "StringValue": rejection_class}
        }
        ours |= {name: {"DataType": "String", "StringValue": value} for name, value in (extra or {}).items()}
        own = sorted((name, value) for name, value in (attributes or {}).items() if name not in _OURS)
        room = MAX_MESSAGE_ATTRIBUTES - len(ours) - 1  # and rejectionReason
        note = f" ({len(own) - room} of the message's own {len(own)} attributes left out: SQS takes 10)"
        reason = _truncate(reason, _MAX_REASON_BYTES - len(note)) + note if len(own) > room else reason
        ours["rejectionReason"] = {"DataType": "String", "StringValue": _truncate(reason, _MAX_REASON_BYTES)}
        self._client.send_message(QueueUrl=self._queue_url, MessageBody=body,
                                  MessageAttributes=dict(own[:room]) | ours)  # fmt: skip


class QueueVisibility:
    """Sets when a message that failed is received again."""

    _client = lazy_client("sqs")  # most invocations retry nothing

    def retry_after(self, queue_arn: str, receipt_handle: str, seconds: int) -> None:
        self._client.change_message_visibility(
            QueueUrl=self._url(queue_arn), ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )

    @cache  # noqa: B019 - one OrderQueue lives as long as the Lambda environment; a queue's URL never changes
    def _url(self, queue_arn: str) -> str:
        *_, account, name = queue_arn.split(":")
        url: str = self._client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        return url


@dataclass(frozen=True)
class SignedDocumentJob:
    """A message on SignedDocumentQueue: fetch this form order's signed document from ePROM. Read and written here
    rather than by a pydantic model: the fetcher imports no pydantic (docs/performance.md)."""

    form_order_id: uuid.UUID
    signed_form_id: uuid.UUID

    def as_json(self) -> str:
        return json.dumps({"formOrderId": str(self.form_order_id), "signedFormId": str(self.signed_form_id)})

    @classmethod
    def from_json(cls, body: str) -> Self:
        """ValueError unless `body` is a JSON object whose formOrderId and signedFormId are GUIDs."""
        try:
            job = json.loads(body)
        except RecursionError:  # nested too deep for Python: not a job either
            raise ValueError("not JSON that Python can read") from None
        ids = [job.get(name) if isinstance(job, dict) else None for name in ("formOrderId", "signedFormId")]
        if not all(isinstance(value, str) for value in ids):
            raise ValueError("formOrderId and signedFormId must be strings")
        return cls(*map(uuid.UUID, ids))


class SignedDocumentQueue:
    """One job per form return with a signed document, for FetchSignedDocumentFunction."""

    _client = lazy_client("sqs")  # only forms that must be signed have jobs

    def __init__(self, queue_url: str) -> None:
        self._queue_url = queue_url

    def request(self, job: SignedDocumentJob) -> None:
        self._client.send_message(QueueUrl=self._queue_url, MessageBody=job.as_json())


def _as_sent(attribute: dict[str, Any]) -> "MessageAttributeValueTypeDef":
    """A message attribute of Lambda's SQS record (stringValue, or binaryValue in base64) as SendMessage takes it."""
    if attribute.get("binaryValue") is not None:
        return {"DataType": attribute["dataType"], "BinaryValue": base64.b64decode(attribute["binaryValue"])}
    return {"DataType": attribute["dataType"], "StringValue": attribute.get("stringValue") or ""}


def _truncate(text: str, max_bytes: int) -> str:
    encoded = text.encode()
    return text if len(encoded) <= max_bytes else encoded[: max_bytes - 3].decode(errors="ignore") + "..."
