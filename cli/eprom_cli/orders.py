"""Orders: checked with the placer's own model before they are sent, looked up by orderReference, their results
downloaded."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from eprom.order_item import OrderItem, ResultPointer
from eprom.order_store import OrderStore
from eprom.orders import read_order
from eprom.reading import Unreadable

from eprom_cli.files import directory_for_files, write_private
from eprom_cli.target import Target

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import GetObjectRequestTypeDef


@dataclass(frozen=True)
class CheckedOrder:
    path: Path
    body: str
    order_reference: str | None
    problem: str | None  # why the placer would refuse it (no values quoted)


def check(path: Path, target: Target) -> CheckedOrder:
    try:
        body = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        return CheckedOrder(path, "", None, f"cannot read the file ({type(error).__name__})")
    return check_body(body, target, path)


def check_body(body: str, target: Target, path: Path = Path("-")) -> CheckedOrder:
    """The placer's validation of the message, with the stage's settings (synthetic ids, testMode)."""
    try:
        order = read_order(
            body,
            allow_synthetic_national_ids=target.allow_synthetic_national_ids,
            allow_test_mode_orders=target.allow_test_mode_orders,
        )
    except Unreadable as problem:
        return CheckedOrder(path, body, None, str(problem))
    except Exception as error:  # as the placer: anything that fails reading it makes it invalid (no traceback)
        return CheckedOrder(path, body, None, f"unreadable ({type(error).__name__})")
    return CheckedOrder(path, body, order.order_reference, None)


def send(target: Target, order: CheckedOrder) -> str:
    return target.client("sqs").send_message(QueueUrl=target.order_queue_url, MessageBody=order.body)["MessageId"]


def store(target: Target) -> OrderStore:
    return OrderStore(target.table, client=target.client("dynamodb"))


def items_of(target: Target, order_reference: str) -> list[OrderItem]:
    """The full items placed for this orderReference (usually one)."""
    orders = store(target)
    found = [orders.item(entry.form_order_id) for entry in orders.find_by_order_reference(order_reference)]
    return [item for item in found if item is not None]


def stored_object(target: Target, pointer: ResultPointer) -> bytes:
    """The version of an answers or signed-document object an item points at."""
    request: GetObjectRequestTypeDef = {"Bucket": target.bucket, "Key": pointer.key}
    if pointer.version_id:  # boto3 refuses a VersionId of None
        request["VersionId"] = pointer.version_id
    return target.client("s3").get_object(**request)["Body"].read()


def download_results(target: Target, item: OrderItem, out_dir: Path) -> list[Path]:
    """Answers (JSON) and signed PDF of one item into out_dir, readable by the owner only."""
    directory_for_files(out_dir)
    written = []
    for pointer, suffix in ((item.answers, "answers.json"), (item.signed_document, "signed.pdf")):
        if pointer is None:
            continue
        path = out_dir / f"{item.form_order_id}-{suffix}"
        write_private(path, stored_object(target, pointer))
        written.append(path)
    return written


def pretty_answers(content: bytes) -> str:
    try:
        return json.dumps(json.loads(content), indent=2, ensure_ascii=False)
    except ValueError:
        return content.decode(errors="replace")
