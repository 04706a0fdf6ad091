"""The dead-letter queues (orders, signed documents, messages to citizens): read every message (and let go of them
again), move chosen ones back to their source queue, write their bodies out for fixing."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eprom.national_id import redact

from eprom_cli.target import Target, TargetError

# How long the messages read stay hidden from others (the placer never reads a DLQ; another operator might).
HOLD_SECONDS = 60


@dataclass(frozen=True)
class DeadLetter:
    queue: str  # "orders", "documents" or "messages"
    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, Any]  # the message attributes, as SQS returns them (copied on redrive)
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
        return self.attributes.get(name, {}).get("StringValue")


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
                entries = [{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                           for i, h in enumerate(handles[start : start + 10])]  # fmt: skip
                sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)  # deleted ones simply fail


def _receive_all(sqs: Any, name: str, url: str) -> list[DeadLetter]:
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
        newest.setdefault((letter.queue, letter.rejection_class, letter.unmasked_reference, letter.body), letter)
    chosen_ids = {letter.message_id for letter in newest.values()}
    send = [letter for letter in letters if letter.message_id in chosen_ids]
    return send, [letter for letter in letters if letter.message_id not in chosen_ids]


def export_file_name(letter: DeadLetter) -> str:
    """One file per message, as several letters can share a reference: {orderReference}.{messageId}.json, or
    {messageId}.json when the reference is not a plain name (or was masked)."""
    plain = letter.reference.replace("-", "").replace("_", "").isalnum()
    return f"{letter.reference}.{letter.message_id}.json" if plain else f"{letter.message_id}.json"


def redrive(target: Target, letter: DeadLetter) -> None:
    """Send it back to its source queue with its attributes (rejectionClass=Ambiguous tells the placer a person
    checked ePROM Admin), and delete it from the DLQ only once the send succeeded."""
    sqs = target.client("sqs")
    dead_letter_url, source_url = queues(target, letter.queue)[letter.queue]
    attributes = {
        name: {key: value for key, value in attribute.items() if key in ("DataType", "StringValue", "BinaryValue")}
        for name, attribute in letter.attributes.items()
    }
    sqs.send_message(QueueUrl=source_url, MessageBody=letter.body, MessageAttributes=attributes)
    sqs.delete_message(QueueUrl=dead_letter_url, ReceiptHandle=letter.receipt_handle)


def delete(target: Target, letter: DeadLetter) -> None:
    dead_letter_url, _ = queues(target, letter.queue)[letter.queue]
    target.client("sqs").delete_message(QueueUrl=dead_letter_url, ReceiptHandle=letter.receipt_handle)
