"""Messages to citizens: checked with the sender's own model and the stage's settings before they are sent (a
letter's PDFs uploaded first), looked up by messageReference or by ePROM's messageToCitizenId."""

import uuid
from dataclasses import dataclass
from pathlib import Path

from eprom.citizen_messages import read_message
from eprom.message_item import MessageItem
from eprom.message_store import MessageStore
from eprom.reading import Unreadable

from eprom_cli.target import Target, TargetError


@dataclass(frozen=True)
class CheckedMessage:
    path: Path
    body: str
    message_reference: str | None
    kind: str | None
    problem: str | None  # why the sender would refuse it (no values quoted)


def check(path: Path, target: Target) -> CheckedMessage:
    try:
        body = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        return CheckedMessage(path, "", None, None, f"cannot read the file ({type(error).__name__})")
    return check_body(body, target, path)


def check_body(body: str, target: Target, path: Path = Path("-")) -> CheckedMessage:
    """The sender's validation of the message, with the stage's settings (synthetic ids, testMode)."""
    try:
        message = read_message(
            body,
            allow_synthetic_national_ids=target.allow_synthetic_national_ids,
            allow_test_mode_orders=target.allow_test_mode_orders,
        )
    except Unreadable as problem:
        return CheckedMessage(path, body, None, None, str(problem))
    except Exception as error:  # as the sender: anything that fails reading it makes it invalid (no traceback)
        return CheckedMessage(path, body, None, None, f"unreadable ({type(error).__name__})")
    return CheckedMessage(path, body, message.message_reference, message.kind, None)


def upload(target: Target, key: str, pdf: Path) -> None:
    """A letter's PDF into MessageDocumentsBucket under `key` (documents/...), as upstream puts it there."""
    target.client("s3").put_object(Bucket=_required(target.message_documents_bucket, target), Key=key,
                                   Body=pdf.read_bytes(), ContentType="application/pdf")  # fmt: skip


def send(target: Target, message: CheckedMessage) -> str:
    queue_url = _required(target.message_queue_url, target)
    return str(target.client("sqs").send_message(QueueUrl=queue_url, MessageBody=message.body)["MessageId"])


def store(target: Target) -> MessageStore:
    return MessageStore(_required(target.messages_table, target), client=target.client("dynamodb"))


def find(target: Target, reference: str) -> MessageItem | None:
    """The message's item by its messageReference, or by ePROM's messageToCitizenId (a GUID) for a letter."""
    messages = store(target)
    item = messages.item(reference)
    if item is None and _is_guid(reference):
        found = messages.find_by_message_to_citizen_id(reference)
        item = messages.item(found[0]) if found else None
    return item


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _required(value: str | None, target: Target) -> str:
    if not value:
        raise TargetError(f"stack {target.name} has no messages to citizens (MessageQueueUrl and the other outputs): "
                          "deploy the current template")  # fmt: skip
    return value
