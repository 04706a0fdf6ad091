"""The dead-letter queues (orders, signed documents, messages to citizens): read every message (and let go of them
again), move chosen ones back to their source queue, write their bodies out for fixing."""

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from eprom.national_id import redact

from eprom_cli.target import Target, TargetError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        ChangeMessageVisibilityBatchRequestEntryTypeDef,
        MessageAttributeValueOutputTypeDef,
        MessageAttributeValueTypeDef,
    )

# How long the messages read stay hidden from others (the placer never reads a DLQ; another operator might).
HOLD_SECONDS = 60
_NOT_IN_FILE_NAMES = re.compile(r"[^A-Za-z0-9._-]")
_MAX_REFERENCE_IN_FILE_NAME = 80


@dataclass(frozen=True)
class DeadLetter:
    queue: str  # "orders", "documents" or "messages"
    message_id: str
    receipt_handle: str
    body: str
    attributes: Mapping[str, "MessageAttributeValueOutputTypeDef"]  # as SQS returns them (copied on redrive)
    sent_at: datetime
    receive_count: int

    @property
    def rejection_class(self) -> str:
        return self._attribute("rejectionClass") or "(none)"

    @property
    def reason(self) -> str:
        return self._attribute("rejectionReason") or "(none)"

    @property
    def unmasked_reference(self) -> str | None:
        """The orderReference (orders), formOrderId (documents) or messageReference (messages) as sent: what
        `--reference` is compared with."""
        try:
            body = json.loads(self.body)
        except ValueError:
            return None
        names = ("orderReference", "formOrderId", "messageReference")
        value = next((body[name] for name in names if body.get(name)), None) if isinstance(body, dict) else None
        return str(value) if value else None

    @property
    def reference(self) -> str:
        """The reference to show, with anything shaped like a national id masked (the placer refuses such
        references, so they do end up here)."""
        if (value := self.unmasked_reference) is None:
            return "(none)"
        return redact(value, mask="*" * 11)

    @property
    def order_key(self) -> tuple[str, str, str | None, str]:
        """What makes letters copies of one order: the same queue, class, reference and body."""
        return (self.queue, self.rejection_class, self.unmasked_reference, self.body)

    def age_hours(self, now: datetime) -> float:
        return (now - self.sent_at).total_seconds() / 3600

    def summary(self, now: datetime) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "messageId": self.message_id,
            "rejectionClass": self.rejection_class,
            "rejectionReason": self.reason,
            "reference": self.reference,
            "ageHours": round(self.age_hours(now), 2),
            "receiveCount": self.receive_count,
        }

    def _attribute(self, name: str) -> str | None:
        attribute = self.attributes.get(name)
        return attribute.get("StringValue") if attribute else None


def queues(target: Target, which: str) -> dict[str, tuple[str, str]]:
    """name -> (dead-letter queue URL, the source queue a redrive sends to)."""
    known = {
        "orders": (target.dead_letter_queue_url, target.order_queue_url),
        "documents": (target.signed_document_dead_letter_queue_url, target.signed_document_queue_url),
    }
    if target.message_dead_letter_queue_url and target.message_queue_url:  # a stack from before them has none
        known["messages"] = (target.message_dead_letter_queue_url, target.message_queue_url)
    if which == "all":
        return known
    if which not in known:
        raise TargetError(f"stack {target.name} has no {which} dead-letter queue: deploy the current template")
    return {which: known[which]}


@contextmanager
def held(target: Target, which: str) -> Iterator[list[DeadLetter]]:
    """Every message of the chosen DLQs, received and held; those still held at the end are let go at once (not
    after HOLD_SECONDS), so a listing leaves the queues as they were, receive counts aside."""
    sqs = target.client("sqs")
    letters: list[DeadLetter] = []
    try:
        for name, (url, _) in queues(target, which).items():
            letters += _receive_all(sqs, name, url)
        yield letters
    finally:
        for name, (url, _) in queues(target, which).items():
            handles = [letter.receipt_handle for letter in letters if letter.queue == name]
            for start in range(0, len(handles), 10):
                entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
                    {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                    for i, h in enumerate(handles[start : start + 10])
                ]
                sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)  # deleted ones simply fail


def held_elsewhere(target: Target, which: str, letters: list[DeadLetter]) -> int:
    """How many messages of the chosen DLQs another run holds now (received and not yet let go: a list, redrive or
    export running, or one that stopped less than HOLD_SECONDS ago). Call it while holding `letters`, which are in
    flight too; SQS's count is approximate."""
    sqs = target.client("sqs")
    others = 0
    for name, (url, _) in queues(target, which).items():
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
        in_flight = int(attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"])
        others += max(0, in_flight - sum(letter.queue == name for letter in letters))
    return others


def nothing_found(target: Target, which: str, letters: list[DeadLetter]) -> str:
    """Why a run found no dead letter to work on: none match, none are there, or another run holds them now."""
    if others := held_elsewhere(target, which, letters):
        return (f"{others} held by another run (a list, redrive or export running now, or one that stopped in the "
                f"last {HOLD_SECONDS} s): try again in a minute")  # fmt: skip
    return "no dead letters match" if letters else "the dead-letter queue is empty"


def _receive_all(sqs: "SQSClient", name: str, url: str) -> list[DeadLetter]:
    letters, seen = [], set()
    while batch := sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=HOLD_SECONDS,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
        WaitTimeSeconds=1,
    ).get("Messages", []):
        for message in batch:
            if message["MessageId"] in seen:
                continue
            seen.add(message["MessageId"])
            letters.append(
                DeadLetter(
                    queue=name,
                    message_id=message["MessageId"],
                    receipt_handle=message["ReceiptHandle"],
                    body=message["Body"],
                    attributes=message.get("MessageAttributes", {}),
                    sent_at=datetime.fromtimestamp(int(message["Attributes"]["SentTimestamp"]) / 1000, UTC),
                    receive_count=int(message["Attributes"]["ApproximateReceiveCount"]),
                )
            )
    return letters


def chosen(letters: list[DeadLetter], rejection_class: str | None, reference: str | None) -> list[DeadLetter]:
    return [
        letter
        for letter in letters
        if (rejection_class is None or letter.rejection_class == rejection_class)
        and (reference is None or letter.unmasked_reference == reference)
    ]


def newest_per_order(letters: list[DeadLetter]) -> tuple[list[DeadLetter], list[DeadLetter]]:
    """(the letters to send back, the older identical copies to delete once they are sent): one per queue, class,
    reference and body. Copies of one message (SQS's duplicates, the upstream's resends, each parked in turn) are
    one order; the newest carries the newest attempt (ambiguousAttemptId) the placer may take over."""
    newest: dict[tuple[str, str, str | None, str], DeadLetter] = {}
    for letter in sorted(letters, key=lambda letter: letter.sent_at, reverse=True):
        newest.setdefault(letter.order_key, letter)
    chosen_ids = {letter.message_id for letter in newest.values()}
    send = [letter for letter in letters if letter.message_id in chosen_ids]
    return send, [letter for letter in letters if letter.message_id not in chosen_ids]


def export_file_name(letter: DeadLetter) -> str:
    """One file per message, as several letters can share a reference: {orderReference}.{messageId}.json, with the
    reference as shown (masked) in ASCII letters, digits, `.`, `_` and `-` only (anything else, superscript digits
    too, becomes `_`), and one longer than 80 characters cut there with a digest of the whole after it (`~` and ten
    hex digits): no name comes near a file system's limit of 255 bytes. {messageId}.json without a reference."""
    if letter.unmasked_reference is None:
        return f"{letter.message_id}.json"
    reference = _NOT_IN_FILE_NAMES.sub("_", letter.reference).lstrip(".-")
    if len(reference) > _MAX_REFERENCE_IN_FILE_NAME:
        digest = hashlib.sha256(letter.reference.encode(errors="surrogatepass")).hexdigest()[:10]
        reference = f"{reference[:_MAX_REFERENCE_IN_FILE_NAME]}~{digest}"
    return f"{reference}.{letter.message_id}.json" if reference else f"{letter.message_id}.json"


class NotSent(Exception):
    """SQS refused to take this letter back (too large with its attributes, say): it stays in the DLQ."""


# SQS's refusals of one message, not of the request: the next letter may well be taken.
_REFUSALS_OF_THE_MESSAGE = frozenset({"InvalidParameterValue", "InvalidMessageContents", "InvalidAttributeValue"})


def copies_by_order(copies: list[DeadLetter]) -> dict[tuple[str, str, str | None, str], list[DeadLetter]]:
    grouped: dict[tuple[str, str, str | None, str], list[DeadLetter]] = {}
    for copy in copies:
        grouped.setdefault(copy.order_key, []).append(copy)
    return grouped


def redrive(target: Target, letter: DeadLetter) -> None:
    """Send it back to its source queue with its attributes (upstream's own; rejectionClass=Ambiguous and
    ambiguousAttemptId tell the placer a person checked ePROM Admin), but not rejectionReason (up to 2 KB the source
    queue has no use for: a body that fitted there must fit again), and delete it from the DLQ only once the send
    succeeded. NotSent when SQS refuses this message."""
    sqs = target.client("sqs")
    dead_letter_url, source_url = queues(target, letter.queue)[letter.queue]
    attributes = {
        name: _as_sent(attribute) for name, attribute in letter.attributes.items() if name != "rejectionReason"
    }
    try:
        sqs.send_message(QueueUrl=source_url, MessageBody=letter.body, MessageAttributes=attributes)
    except ClientError as error:
        detail = error.response.get("Error", {})
        if detail.get("Code") not in _REFUSALS_OF_THE_MESSAGE:
            raise
        raise NotSent(f"{detail.get('Code')}: {detail.get('Message', '')}") from None
    sqs.delete_message(QueueUrl=dead_letter_url, ReceiptHandle=letter.receipt_handle)


def _as_sent(attribute: "MessageAttributeValueOutputTypeDef") -> "MessageAttributeValueTypeDef":
    """A message attribute as received, with its type and value only, as SendMessage takes it back."""
    sent: MessageAttributeValueTypeDef = {"DataType": attribute["DataType"]}
    if "StringValue" in attribute:
        sent["StringValue"] = attribute["StringValue"]
    if "BinaryValue" in attribute:
        sent["BinaryValue"] = attribute["BinaryValue"]
    return sent


def delete(target: Target, letter: DeadLetter) -> None:
    dead_letter_url, _ = queues(target, letter.queue)[letter.queue]
    target.client("sqs").delete_message(QueueUrl=dead_letter_url, ReceiptHandle=letter.receipt_handle)


def exported(letter: DeadLetter, directory: Path) -> bool:
    """Whether `dead-letters export --out directory` wrote this letter (its file is there)."""
    return (directory / export_file_name(letter)).is_file()
