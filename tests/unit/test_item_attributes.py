"""No attribute name of the FormOrdersTable item as a string literal outside the item's models and the store.

The item is read through OrderItem (eprom/order_item.py, parsed at the edge by OrderStore and from stream images),
so everywhere else an item attribute is a Python attribute (`item.status_history`). A string naming an item
attribute elsewhere means a module reads or writes the raw item (a DynamoDB answer or a stream image) itself. The
item's attribute names are the aliases of OrderItem, HistoryEntry and ResultPointer.

The rule, over the source of layers/, functions/, cli/, local/, bench/ and buildtools/ (order_item.py and
order_store.py left out): an item attribute name used as a key is a violation, where "used as a key" is a subscript
`x["name"]`, the first argument of `x.get("name")`, a key of a dict display `{"name": ...}`, or the left side of
`"name" in x`, and

1. the name is the item's own: no field of the other documents the code handles has it (the order message,
   ePROM's order response and callback, the outcome events, the signed-document job, the callback reply: computed
   from their models below). Used as a key anywhere, it can only be the item's; or
2. the name is shared with those documents (formOrderId, orderReference, status, key, ...), and the thing keyed
   is evidently an item: its root name (`x` in `x[0].y["name"]`) or the attribute called for it contains "item"
   or "image", or the dict is the `Key` of a DynamoDB call. A shared name keyed on an event, a message body or an
   ePROM document (`event["formOrderId"]`, `body.get("orderReference")`) is that document's, not the item's.

Names in NOT_THE_ITEM are exceptions, each with its reason. Expression strings (UpdateExpression and the like) are
not read: only the store writes them for FormOrdersTable, and the bench's baselines (an exception) for comparison.
"""

import ast
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from eprom import contracts, models, orders, outcomes, queues
from eprom.order_item import HistoryEntry, OrderItem, ResultPointer

ROOT = next(folder for folder in Path(__file__).resolve().parents if (folder / "pyproject.toml").exists())
SCANNED = ("layers", "functions", "cli", "local", "bench", "buildtools")  # buildtools: the build and CI checks
THE_ITEM_S_OWN_MODULES = {"layers/shared/eprom/order_item.py", "layers/shared/eprom/order_store.py",
                          # MessagesTable's item, whose attributes share some names (status, updatedAt, ...)
                          "layers/shared/eprom/message_item.py", "layers/shared/eprom/message_store.py"}  # fmt: skip
NOT_THE_ITEM = {
    ("functions/place_order/place_order/claims.py", "formOrderId"): "a claim in IdempotencyTable names its order",
    ("functions/place_order/place_order/claims.py", "status"): "an earlier version's Powertools idempotency record "
    "in IdempotencyTable has its own status (COMPLETED)",
    **{
        ("bench/__main__.py", name): "the bare baselines: the functions' DynamoDB requests written out with no code of "
        "ours, the floor the handlers are measured against"
        for name in ("formOrderId", "orderFingerprint", "preferredNotificationChannel", "placedAt")
    },
}
OTHER_DOCUMENTS = (
    contracts.OrderMessage, models.EpromCallback, models.CallbackReply,
    outcomes.FormOrderPlaced, outcomes.FormOrderRefused, outcomes.FormOrderStatusChanged, outcomes.FormReturned,
    outcomes.SignedDocumentStored,
)  # fmt: skip
SIGNED_DOCUMENT_JOB = json.loads(queues.SignedDocumentJob(uuid.uuid4(), uuid.uuid4()).as_json())
ORDER_ANSWER = json.loads(orders.OrderAnswer(uuid.uuid4()).as_json())  # as a placed claim keeps it


def _property_names(schema: Any) -> set[str]:
    if isinstance(schema, list):
        return set().union(*map(_property_names, schema)) if schema else set()
    if not isinstance(schema, dict):
        return set()
    names = set(schema.get("properties", {}))
    return names.union(*map(_property_names, schema.values()))


ITEM_ATTRIBUTES = {
    str(field.alias) for model in (OrderItem, HistoryEntry) for field in model.model_fields.values()
} | set(ResultPointer(key="", version_id="", sha256="", bytes=0).as_attribute())
OTHER_NAMES = set(SIGNED_DOCUMENT_JOB).union(
    ORDER_ANSWER,
    *(
        _property_names(model.model_json_schema(by_alias=True, mode=mode))
        for model in OTHER_DOCUMENTS
        for mode in ("validation", "serialization")
    ),
)
ITEM_ONLY = ITEM_ATTRIBUTES - OTHER_NAMES


def _names_an_item(node: ast.expr) -> bool:
    """The root name of an expression (x in x[0].y.z()), or an attribute on the way, says "item" or "image"."""
    while True:
        match node:
            case ast.Name(id=name):
                return _says_item(name)
            case ast.Attribute(value=inner, attr=attr):
                if _says_item(attr):
                    return True
                node = inner
            case ast.Subscript(value=inner) | ast.Call(func=inner):
                node = inner
            case _:
                return False


def _says_item(name: str) -> bool:
    return "item" in name.lower() or "image" in name.lower()


def _text(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _keys(tree: ast.AST) -> list[tuple[int, str, bool]]:
    """(line, name, keyed on an item) for every string used as a key."""
    found = []
    for node in ast.walk(tree):
        match node:
            case ast.Subscript(value=owner, slice=key) if (name := _text(key)) is not None:
                found.append((node.lineno, name, _names_an_item(owner)))
            case ast.Call(func=ast.Attribute(value=owner, attr="get"), args=[key, *_]) if name := _text(key):
                found.append((node.lineno, name, _names_an_item(owner)))
            case ast.Compare(left=key, ops=[ast.In() | ast.NotIn()], comparators=[owner]) if name := _text(key):
                found.append((node.lineno, name, _names_an_item(owner)))
            case ast.Call(keywords=keywords):
                for keyword in keywords:
                    if keyword.arg == "Key" and isinstance(keyword.value, ast.Dict):
                        found += [(node.lineno, name, True) for key in keyword.value.keys if (name := _text(key))]
            case ast.Dict(keys=keys):
                found += [(node.lineno, name, False) for key in keys if (name := _text(key))]
    return found


def violations(source: str, path: str = "<test>") -> list[str]:
    return sorted(
        {
            f"{path}:{line}: {name!r}"
            for line, name, on_an_item in _keys(ast.parse(source))
            if (name in ITEM_ONLY or (on_an_item and name in ITEM_ATTRIBUTES)) and (path, name) not in NOT_THE_ITEM
        }
    )


def test_no_module_but_the_item_s_own_names_an_item_attribute() -> None:
    found = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative not in THE_ITEM_S_OWN_MODULES and ".aws-sam" not in relative:
                found += violations(path.read_text(), relative)
    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        'item["statusHistory"]',
        'items[0]["formOrderId"]',
        'self.item(form_order_id).get("status")',
        'record.dynamodb.new_image.get("answers")',
        '"signedDocument" in found',
        'entry.get("receivedAt")',
        '{"orderFingerprint": fingerprint}',
        'client.get_item(TableName=table, Key={"formOrderId": {"S": form_order_id}})',
    ],
)
def test_the_rule_finds_a_raw_item_read(source: str) -> None:
    assert violations(source)


@pytest.mark.parametrize(
    "source",
    [
        'event["formOrderId"]',  # an outcome event
        'json.loads(body).get("orderReference")',  # an order message
        '{"formOrderId": form_order_id, "signedFormId": signed_form_id}',  # a signed-document job
        'answer["Metadata"]["sha256"]',  # S3's object metadata
    ],
)
def test_the_rule_leaves_other_documents_alone(source: str) -> None:
    assert violations(source) == []
