"""FormOrdersTable: placed orders and the status ePROM reports for them (architecture.md, "FormOrdersTable item").

Status only moves forward, and every write is one conditional UpdateItem (no read-then-write), so replays,
late callbacks and a callback that beats our own write all end in the same item.
"""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from eprom.aws_clients import aws_client
from eprom.models import EpromCallback, EpromOrderResponse, FormOrderStatus

PLACED = "Placed"  # our own status for an order ePROM accepted, before its first callback
STATUS_RANK = {
    PLACED: 0,
    FormOrderStatus.Ordered.name: 1,
    FormOrderStatus.Error.name: 2,
    FormOrderStatus.DigipostDelivered.name: 2,
    FormOrderStatus.PhysicalMailReturned.name: 2,
    FormOrderStatus.Completed.name: 3,
    FormOrderStatus.Expired.name: 3,
}
ORDER_REFERENCE_INDEX = "orderReference-index"
# DynamoDB refuses items over 400 KB; keep room for what the placer wrote and the attribute names.
MAX_CALLBACK_BYTES = 380_000

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


class CallbackTooLarge(Exception):
    """The answers do not fit in one item. Not acknowledged, so ePROM keeps them and retries."""


class OrderStore:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self._table = table_name
        self.client = client or aws_client("dynamodb")

    def record_placed(
        self,
        form_order_id: str,
        *,
        order_reference: str,
        order_fingerprint: str,
        form_id: str,
        response: EpromOrderResponse,
    ) -> None:
        """Upsert the order. A status a callback already wrote stays; writing twice changes nothing."""
        now = _now()
        values = {
            "orderReference": order_reference,
            "orderFingerprint": order_fingerprint,
            "formId": form_id,
            "loginUrl": response.login_url,
            "preferredNotificationChannel": _wire_value(response.notification_channel),
            "singleUseCode": response.single_use_code,
            "placedAt": now,
        }
        present = {name: value for name, value in values.items() if value is not None}
        assignments = [f"#{name} = :{name}" for name in present]
        assignments += [
            "#status = if_not_exists(#status, :placed)",
            "#updatedAt = if_not_exists(#updatedAt, :now)",
            "#createdAt = if_not_exists(#createdAt, :now)",
        ]
        names = {f"#{name}": name for name in present} | {
            "#status": "status",
            "#updatedAt": "updatedAt",
            "#createdAt": "createdAt",
        }
        attribute_values = {f":{name}": value for name, value in present.items()} | {":placed": PLACED, ":now": now}
        self.client.update_item(
            TableName=self._table,
            Key={"formOrderId": {"S": form_order_id}},
            UpdateExpression="SET " + ", ".join(assignments),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={key: _serialize(value) for key, value in attribute_values.items()},
        )

    def apply_callback(self, callback: EpromCallback) -> bool:
        """Store what the callback says. False when it was a replay or older than what is stored."""
        values = {name: value for name, value in _callback_attributes(callback).items() if value is not None}
        size = len(json.dumps(values, ensure_ascii=False).encode())
        if size > MAX_CALLBACK_BYTES:
            raise CallbackTooLarge(f"callback for {callback.form_order_id} is {size} bytes")
        status = _wire_value(callback.form_order_status)
        rank = STATUS_RANK.get(status) if isinstance(status, str) else None
        condition, condition_values = None, {}
        if rank is None:
            # No status, or one ePROM added after this code: keep it beside `status`, which only moves
            # along the ranks we know.
            if status is not None:
                values["unrecognisedStatus"] = str(status)
        else:
            values["status"] = status
            lower = [name for name, other in STATUS_RANK.items() if other < rank]
            condition_values = {f":lower{i}": name for i, name in enumerate(lower)}
            condition = f"attribute_not_exists(#status) OR #status IN ({', '.join(condition_values)})"

        assignments = [f"#{name} = :{name}" for name in values] + ["#createdAt = if_not_exists(#createdAt, :updatedAt)"]
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"formOrderId": {"S": str(callback.form_order_id)}},
            "UpdateExpression": "SET " + ", ".join(assignments),
            "ExpressionAttributeNames": {f"#{name}": name for name in values} | {"#createdAt": "createdAt"},
            "ExpressionAttributeValues": {
                key: _serialize(value)
                for key, value in ({f":{name}": value for name, value in values.items()} | condition_values).items()
            },
        }
        if condition:
            request["ConditionExpression"] = condition
        try:
            self.client.update_item(**request)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def find_by_order_reference(self, order_reference: str) -> list[dict[str, Any]]:
        """The items placed for this orderReference (the index is eventually consistent: a write of the last
        second may be missing; the placer's idempotency records cover that window)."""
        answer = self.client.query(
            TableName=self._table,
            IndexName=ORDER_REFERENCE_INDEX,
            KeyConditionExpression="orderReference = :ref",
            ExpressionAttributeValues={":ref": {"S": order_reference}},
        )
        return [_plain(item) for item in answer["Items"]]

    def callback_only_items(self) -> Iterator[dict[str, Any]]:
        """Items that exist only through ePROM's callbacks (no orderReference): patient-initiated forms, or an
        order of ours whose answer was lost (an Ambiguous attempt). `createdAt` is when the first callback came,
        to reconcile with the time in a parked message's reason. A Scan: an operator's tool, not a hot path."""
        pages = self.client.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression="attribute_not_exists(orderReference)",
            ConsistentRead=True,
        )
        for page in pages:
            yield from (_plain(item) for item in page["Items"])


def _callback_attributes(callback: EpromCallback) -> dict[str, Any]:
    status_time = callback.status_time_utc
    dumped = callback.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {
        "notificationChannel": _wire_value(callback.notification_channel),
        "statusErrorCode": _wire_value(callback.form_order_status_error_code),
        "statusTimestampUtc": status_time.isoformat() if status_time else None,
        "updatedAt": _now(),
        "formData": callback.form_data,
        "formDataWarnings": _scalars_as_text(dumped.get("formDataWarnings")),
        "signedFormId": callback.signed_form_id,
        "scannedPaperId": None if callback.scanned_paper_id is None else str(callback.scanned_paper_id),
        "formOrderEventLog": _scalars_as_text(dumped.get("formOrderEventLog")),
        "filledOutBy": _scalars_as_text(dumped.get("filledOutBy")),
        "isPatientInitiated": callback.is_patient_initiated,
        "patientInitiatedValues": _scalars_as_text(dumped.get("patientInitiatedValues")),
    }


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserialize(value) for name, value in item.items()}


def _wire_value(value: object) -> str | None:
    """Enums are stored by name; a value ePROM added later is stored as the text it came as."""
    if value is None:
        return None
    return value.name if isinstance(value, IntEnum) else str(value)


def _scalars_as_text(value: Any) -> Any:
    """Nested callback parts as DynamoDB maps and lists, numbers as text (DynamoDB takes no floats)."""
    if isinstance(value, dict):
        return {str(key): _scalars_as_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scalars_as_text(item) for item in value]
    if value is None or isinstance(value, bool | str):
        return value
    return str(value)


def _now() -> str:
    return datetime.now(UTC).isoformat()
