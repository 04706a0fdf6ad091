"""The published contract for upstream systems, generated from the models: `make schemas`.

Writes, under schemas/:
- `order-message.schema.json`: JSON Schema (2020-12) of what upstream puts on OrderQueue (OrderMessage);
- `message-to-citizen.schema.json`: the same of what upstream puts on MessageQueue (a letter, an SMS or an e-mail);
- `privacy-settings-request.schema.json` and `privacy-settings-reply.schema.json`: what upstream sends
  PrivacySettingsFunction (Lambda Invoke) and what it answers;
- `events/<DetailType>.schema.json`: JSON Schema of each outcome event's `detail`;
- `eventbridge/<DetailType>.openapi.json`: the same event as EventBridge's schema registry holds it (OpenAPI 3 with
  the `AWSEvent` envelope, the form code bindings are generated from), embedded in template.yaml by this command.

The models say what is accepted; the notes below say what a field means, for the reader of the schema. A schema
is never looser than the model where a producer could rely on it: the model decides, the schema documents.

    python -m buildtools.schemas            # rewrite schemas/ and template.yaml's schema contents
    python -m buildtools.schemas --check    # exit 1 and name the stale files
"""

import argparse
import json
import re
import sys
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any

from eprom.citizen_messages import LETTER
from eprom.codes import DistributionRule, NotificationChannel
from eprom.contracts import Email, Letter, OrderMessage, Sms
from eprom.message_store import STATUS_RANK as MESSAGE_STATUS_RANK
from eprom.order_item import STATUS_RANK
from eprom.outcome_bus import SOURCE
from eprom.outcomes import (
    FormOrderPlaced,
    FormOrderRefused,
    FormOrderStatusChanged,
    FormReturned,
    MessageAccepted,
    MessageDelivered,
    MessageNotDelivered,
    MessageRefused,
    PrivacySettingChanged,
    SignedDocumentStored,
)
from eprom.privacy import (
    CHANGE_STATUS_CODES,
    CHANGE_STATUS_PATTERN,
    ErrorReply,
    GetRequest,
    ListReply,
    ListRequest,
    PrivacySetting,
    PvkStatus,
    PvkType,
    SetReply,
    SetRequest,
)
from eprom.refusal_events import REFUSED
from jsonschema import Draft202012Validator
from pydantic import BaseModel, Field, TypeAdapter

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
TEMPLATE = ROOT / "template.yaml"
EVENTS: dict[str, type[BaseModel]] = {
    model.__name__: model
    for model in (
        FormOrderPlaced,
        FormOrderRefused,
        FormOrderStatusChanged,
        FormReturned,
        SignedDocumentStored,
        PrivacySettingChanged,
    )
}
MESSAGE_EVENTS: dict[str, type[BaseModel]] = {
    model.__name__: model for model in (MessageAccepted, MessageRefused, MessageDelivered, MessageNotDelivered)
}
REJECTION_CLASSES = ["InvalidMessage", "RefusedByEprom", "ReusedOrderReference", "RetriesExhausted", "Ambiguous"]
MESSAGE_REJECTION_CLASSES = ["InvalidMessage", "RefusedByEprom", "ReusedMessageReference", "RetriesExhausted",
                             "Ambiguous"]  # fmt: skip
NATIONAL_ID = {"type": "string", "pattern": "^[0-9]{11}$"}


def _wire_enum(enum_cls: type[IntEnum]) -> dict[str, Any]:
    return {
        "anyOf": [
            {"type": "string", "enum": [member.name for member in enum_cls]},
            {"type": "integer", "enum": [member.value for member in enum_cls]},
        ]
    }


ORDER_NOTES: dict[str, dict[str, Any]] = {
    "orderReference": {
        "description": "Your own unique id of the order: the idempotency key. The same orderReference never produces "
        "a second ePROM order. Must not contain a national id (it is logged and appears in events): refused when a "
        "valid one stands alone in it, eleven digits or written with one separator between some of them "
        "(260739-41651, 26.07.39.41651), with no digit right before or after. A longer number (an epoch in "
        "milliseconds, a database id, a date and a counter) and a GUID never are."
    },
    "formId": {"description": "The ePROM form (GUID); it must exist and be Published."},
    "nationalId": NATIONAL_ID
    | {"description": "The patient's fødselsnummer or D-nummer (H-nummer and FH-nummer are refused)."},
    "onBehalfOfNationalId": {"anyOf": [NATIONAL_ID, {"type": "null"}]}
    | {"description": "The person the form is about, when the recipient is someone else (e.g. a parent)."},
    "expiryDate": {"description": "When the order expires; in the future. Without an offset: Europe/Oslo time."},
    "reminderDate": {"description": "Accepted for compatibility and ignored (ePROM ignores it)."},
    "metadata": {
        "anyOf": [{"type": "object"}, {"type": "array"}, {"type": "string"}, {"type": "null"}],
        "description": "JSON for the form: an object, or a string holding JSON. Sent to ePROM as a JSON string.",
    },
    "distributionRule": _wire_enum(DistributionRule)
    | {"default": "Basic", "description": "How ePROM reaches the patient: a name or its number."},
    "mustBeSigned": {"description": "Signing required before delivery; not with NoDistribution or on behalf of."},
    "physicalAddress": {"description": "Only for paper distribution rules; postalCode is a string of 4 digits."},
    "testMode": {"description": "Only in test stages; ePROM never returns answers of a testMode order."},
}

_STATUS_NAMES = [REFUSED, *STATUS_RANK]
EVENT_NOTES: dict[str, dict[str, Any]] = {
    "eventId": {"description": "The same fact always has the same id and content: de-duplicate on it."},
    "occurredAt": {"format": "date-time", "description": "When the fact happened (UTC, ISO 8601)."},
    "orderReference": {"description": "Your orderReference; null for patient-initiated forms."},
    "formOrderId": {"description": "ePROM's id of the order; null for refusals."},
    "status": {"enum": _STATUS_NAMES, "description": "The order's status after this event."},
    "statusRank": {"description": "Keep the highest rank you have seen: delivery is at least once and unordered."},
    "previousStatus": {"description": "The status before this change."},
    "notificationChannel": {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "description": "A NotificationChannel name (" + ", ".join(member.name for member in NotificationChannel) + ")",
    },
    "singleUseCode": {"description": "Only for NoDistribution orders: the patient's login code. A credential."},
    "rejectionClass": {"enum": REJECTION_CLASSES},
    "rejectionReason": {"description": "Human readable; never contains input text or personal data."},
    "answers": {"description": "The answers object in FormResultsBucket: read it by key and versionId."},
    "document": {"description": "The signed PDF in FormResultsBucket."},
}


_MESSAGE_STATUS_NAMES = [REFUSED, *MESSAGE_STATUS_RANK]
MESSAGE_EVENT_NOTES: dict[str, dict[str, Any]] = EVENT_NOTES | {
    "messageReference": {
        "description": "Your messageReference; null only for a refusal of a message without a valid one."
    },
    "kind": {
        "anyOf": [{"enum": ["letter", "sms", "email"]}, {"type": "null"}],
        "description": "letter, sms or email; null only for a refusal of a message without a valid one.",
    },
    "messageToCitizenId": {"description": "ePROM's id of a letter (null for SMS, e-mail and refusals)."},
    "status": {"enum": _MESSAGE_STATUS_NAMES, "description": "The message's status after this event."},
    "notificationChannel": EVENT_NOTES["notificationChannel"]
    | {
        "description": "The channel ePROM chose (MessageAccepted) or used (MessageDelivered): a NotificationChannel "
        "name; None when it could reach the person on no channel. null for SMS and e-mail."
    },
    "rejectionClass": {"enum": MESSAGE_REJECTION_CLASSES},
}
MESSAGE_NOTES: dict[str, dict[str, Any]] = {
    "messageReference": {
        "description": "Your own unique id of the message: the idempotency key, with the rules of an orderReference. "
        "The same messageReference never sends a second letter, SMS or e-mail."
    },
    "nationalId": NATIONAL_ID | {"description": "The person's fødselsnummer or D-nummer (H- and FH-nummer refused)."},
    "text": {"description": "Sent unprotected: non-sensitive content only; refused when it holds a national id."},
    "title": {"description": "Sent unprotected: non-sensitive content only; refused when it holds a national id."},
    "phoneNumber": {"description": "Instead of (or beside) nationalId: the number the SMS goes to."},
    "emailAddress": {"description": "Instead of (or beside) nationalId: the address the e-mail goes to."},
    "documents": {
        "description": "The letter's PDFs in MessageDocumentsBucket (under documents/): whole PDFs of at "
        "most 30 MiB, exactly one of them the main document."
    },
    "notificationPriorityList": {
        "type": "array",
        "minItems": 1,
        "items": _wire_enum(NotificationChannel),
        "description": "The channels ePROM tries, in order: names or numbers.",
    },
    "testMode": {"description": "Only in test stages; ePROM returns no status of a testMode letter."},
}


# --- Privacy settings (PVK) ------------------------------------------------------------------------------------------

PRIVACY_EVENT_NOTES: dict[str, dict[str, Any]] = {
    "eventId": EVENT_NOTES["eventId"]
    | {
        "description": "Made from the stored change: the same change sent again by "
        "ePROM is the same event (same id and content). De-duplicate on it."
    },
    "occurredAt": {"format": "date-time", "description": "When the change was first stored (UTC, ISO 8601)."},
    "pvkId": {"description": "The reservation or consent definition the change is of."},
    "name": {"description": "The definition's name, as ePROM sent it."},
    "status": {
        "type": "string",
        "pattern": CHANGE_STATUS_PATTERN,
        "description": "A Volven 7609 code: "
        + ", ".join(f"{code} {meaning}" for code, meaning in CHANGE_STATUS_CODES.items())
        + ". The person's national id is only in the stored change.",
    },
    "change": {
        "description": "The change as ePROM sent it (its key removed), in FormResultsBucket: read it by versionId."
    },
}
PVK_ID = {"description": "The reservation or consent definition (its pvkId, registered on the ordering system)."}
PRIVACY_REQUEST_NOTES: dict[str, dict[str, Any]] = {
    "pvkId": PVK_ID,
    "nationalId": NATIONAL_ID
    | {"description": "The person's fødselsnummer or D-nummer (H-nummer and FH-nummer are refused)."},
    "type": _wire_enum(PvkType) | {"description": "Reservasjon (0) or Samtykke (1): a name or its number."},
    "status": _wire_enum(PvkStatus)
    | {
        "description": "IkkeAktiv (0) or Aktiv (1): a name or its number. The state "
        "to set, never a toggle: sending it again changes nothing more."
    },
}


def privacy_request_schema() -> dict[str, Any]:
    schema: dict[str, Any] = _without_titles(
        TypeAdapter(GetRequest | SetRequest | ListRequest).json_schema(by_alias=True)
    )
    for name in ("GetRequest", "SetRequest", "ListRequest"):
        _with_notes(schema["$defs"][name], PRIVACY_REQUEST_NOTES)
    schema["$defs"] = {name: definition for name, definition in schema["$defs"].items() if name not in _ENUM_DEFS}
    schema["description"] = (
        "A request to PrivacySettingsFunction (Lambda Invoke, RequestResponse), told apart by `operation`. Unknown "
        "fields are refused."
    )
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "PrivacySettingsRequest"} | schema


def _names_or_null(enum_cls: type[IntEnum], description: str) -> dict[str, Any]:
    return {
        "anyOf": [{"type": "string", "enum": [member.name for member in enum_cls]}, {"type": "null"}],
        "description": description,
    }


_TIME = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}
PRIVACY_REPLY_NOTES: dict[str, dict[str, Any]] = {
    "type": _names_or_null(PvkType, "Reservasjon or Samtykke."),
    "status": _names_or_null(PvkStatus, "Aktiv: the reservation or consent is in force; IkkeAktiv: it is not."),
    "pvkId": {"anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}]} | PVK_ID,
    "name": {"description": "The definition's name, e.g. Reservasjon mot registrering."},
    "sequenceNumber": {"description": "PVK's sequence number of the setting: a later change has a higher one."},
    "createdDateTimeOffset": _TIME | {"description": "When the setting was made (ISO 8601 with its offset)."},
    "lastChangedDateTimeOffset": _TIME | {"description": "When it last changed (ISO 8601 with its offset)."},
    "changed": {
        "description": "Whether this request changed the setting. False also when an earlier attempt of it, "
        "whose answer was lost, made the change: the setting is as requested either way."
    },
    "count": {"description": "How many residents (lines) the object holds."},
    "versionId": {"description": "Read the object by this version."},
    "reason": {"description": "Human readable; never a value of the request or personal data."},
}


def privacy_reply_schema() -> dict[str, Any]:
    adapter = TypeAdapter(PrivacySetting | SetReply | ListReply | ErrorReply)
    schema: dict[str, Any] = _without_titles(adapter.json_schema(by_alias=True, mode="serialization"))
    for definition in schema["$defs"].values():
        if "properties" in definition:
            _with_notes(definition, PRIVACY_REPLY_NOTES)
    schema["$defs"] = {name: definition for name, definition in schema["$defs"].items() if name not in _ENUM_DEFS}
    schema["description"] = (
        "PrivacySettingsFunction's reply: to get the setting, to set {changed}, to list where the list is, or an "
        "error {class, reason} (classes InvalidRequest, RefusedByEprom, Unauthorized, PvkUnavailable, Transient)."
    )
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "PrivacySettingsReply"} | schema


_ENUM_DEFS = {"PvkType", "PvkStatus"}


def _without_titles(schema: Any) -> Any:
    """pydantic titles every property after its Python name ('Formorderid'): noise for a reader of the contract."""
    if isinstance(schema, list):
        return [_without_titles(item) for item in schema]
    if isinstance(schema, dict):
        return {
            key: _without_titles(value)
            for key, value in schema.items()
            if not (key == "title" and isinstance(value, str))
        }
    return schema


def _with_notes(schema: dict[str, Any], notes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    for name, prop in schema["properties"].items():
        note = notes.get(name, {})
        if "anyOf" in note or "enum" in note:
            prop.pop("anyOf", None)
            prop.pop("type", None)
            prop.pop("$ref", None)
        prop.update(note)
    return schema


def order_message_schema() -> dict[str, Any]:
    schema = _without_titles(OrderMessage.model_json_schema(by_alias=True))
    schema["$defs"].pop("DistributionRule")
    schema["description"] = "An order message: the body of an SQS message on OrderQueue. Unknown fields are refused."
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "OrderMessage"} | _with_notes(
        schema, ORDER_NOTES
    )


def message_schema() -> dict[str, Any]:
    union = TypeAdapter(Annotated[Letter | Sms | Email, Field(discriminator="kind")])
    schema: dict[str, Any] = _without_titles(union.json_schema(by_alias=True))
    _with_notes(schema["$defs"][Letter.__name__], MESSAGE_NOTES)
    to_person_or_address = MESSAGE_NOTES | {
        "nationalId": {"anyOf": [NATIONAL_ID, {"type": "null"}], "description": "The person's fødselsnummer or "
                       "D-nummer; or give the phone number or address instead (one of them at least)."}
    }  # fmt: skip
    for model in (Sms, Email):
        _with_notes(schema["$defs"][model.__name__], to_person_or_address)
    schema["$defs"].pop("NotificationChannel", None)
    schema["description"] = (
        f"A message to a citizen: the body of an SQS message on MessageQueue, by its kind ({LETTER}, sms, email). "
        "Unknown fields are refused."
    )
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "MessageToCitizen"} | schema


def event_detail_schema(detail_type: str) -> dict[str, Any]:
    model = (EVENTS | MESSAGE_EVENTS)[detail_type]
    schema = _without_titles(model.model_json_schema(by_alias=True, mode="serialization"))
    schema["description"] = f"The detail of a {detail_type} event (source {SOURCE}) on OutcomeBus and OutcomeQueue."
    notes = (MESSAGE_EVENT_NOTES if detail_type in MESSAGE_EVENTS
             else PRIVACY_EVENT_NOTES if detail_type == PrivacySettingChanged.__name__ else EVENT_NOTES)  # fmt: skip
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": detail_type} | _with_notes(
        schema, notes
    )


def _openapi_3_0(schema: Any) -> Any:
    """JSON Schema 2020-12 as OpenAPI 3.0's dialect: `nullable` instead of a null type, components for $defs."""
    if isinstance(schema, list):
        return [_openapi_3_0(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {key: _openapi_3_0(value) for key, value in schema.items() if key not in ("$schema", "$defs")}
    if "$ref" in schema:
        schema["$ref"] = schema["$ref"].replace("#/$defs/", "#/components/schemas/")
    alternatives = schema.get("anyOf", [])
    if {"type": "null"} in alternatives:
        rest = [item for item in alternatives if item != {"type": "null"}]
        del schema["anyOf"]
        schema |= (rest[0] if len(rest) == 1 else {"anyOf": rest}) | {"nullable": True}
    if "$ref" in schema and len(schema) > 1:  # OpenAPI 3.0 ignores siblings of $ref
        schema = {"allOf": [{"$ref": schema.pop("$ref")}]} | schema
    return schema


def eventbridge_schema(detail_type: str) -> dict[str, Any]:
    """The shape EventBridge's registry and its code bindings use: an AWSEvent whose detail is the model."""
    detail = event_detail_schema(detail_type)
    components = {name: _openapi_3_0(value) for name, value in detail.get("$defs", {}).items()}
    components[detail_type] = _openapi_3_0(detail)
    components["AWSEvent"] = {
        "type": "object",
        "required": ["detail-type", "source", "detail", "id", "time", "account", "region"],
        "x-amazon-events-detail-type": detail_type,
        "x-amazon-events-source": SOURCE,
        "properties": {
            "detail": {"$ref": f"#/components/schemas/{detail_type}"},
            "detail-type": {"type": "string"},
            "source": {"type": "string"},
            "id": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
            "account": {"type": "string"},
            "region": {"type": "string"},
            "resources": {"type": "array", "items": {"type": "string"}},
            "version": {"type": "string"},
        },
    }
    return {
        "openapi": "3.0.0",
        "info": {"version": "1.0.0", "title": detail_type},
        "paths": {},
        "components": {"schemas": components},
    }


def _text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def expected_files() -> dict[Path, str]:
    files = {SCHEMAS / "order-message.schema.json": _text(order_message_schema()),
             SCHEMAS / "message-to-citizen.schema.json": _text(message_schema())}  # fmt: skip
    files[SCHEMAS / "privacy-settings-request.schema.json"] = _text(privacy_request_schema())
    files[SCHEMAS / "privacy-settings-reply.schema.json"] = _text(privacy_reply_schema())
    for detail_type in EVENTS | MESSAGE_EVENTS:
        files[SCHEMAS / "events" / f"{detail_type}.schema.json"] = _text(event_detail_schema(detail_type))
        files[SCHEMAS / "eventbridge" / f"{detail_type}.openapi.json"] = _text(eventbridge_schema(detail_type))
    files[TEMPLATE] = template_with_schemas(TEMPLATE.read_text())
    return files


def _validator(path: Path) -> Draft202012Validator:
    return Draft202012Validator(json.loads(path.read_text()), format_checker=Draft202012Validator.FORMAT_CHECKER)


def order_message_errors(order: object) -> list[str]:
    """Where an order message departs from the published schema (the committed file, as upstream has it)."""
    return [error.message for error in _validator(SCHEMAS / "order-message.schema.json").iter_errors(order)]


def message_errors(message: object) -> list[str]:
    """Where a message to a citizen departs from the published schema (the committed file, as upstream has it)."""
    return [error.message for error in _validator(SCHEMAS / "message-to-citizen.schema.json").iter_errors(message)]


def privacy_request_errors(request: object) -> list[str]:
    """Where a request to PrivacySettingsFunction departs from the published schema."""
    return [
        error.message for error in _validator(SCHEMAS / "privacy-settings-request.schema.json").iter_errors(request)
    ]


def privacy_reply_errors(reply: object) -> list[str]:
    """Where a reply of PrivacySettingsFunction departs from the published schema."""
    return [error.message for error in _validator(SCHEMAS / "privacy-settings-reply.schema.json").iter_errors(reply)]


def outcome_event_errors(envelope: dict[str, Any]) -> list[str]:
    """Where an EventBridge envelope from OutcomeQueue departs from the published schema of its detail-type."""
    if envelope.get("source") != SOURCE or envelope.get("detail-type") not in EVENTS | MESSAGE_EVENTS:
        return [f"not a published event: source {envelope.get('source')}, detail-type {envelope.get('detail-type')}"]
    schema = SCHEMAS / "events" / f"{envelope['detail-type']}.schema.json"
    return [
        f"{envelope['detail-type']}: {error.message}" for error in _validator(schema).iter_errors(envelope["detail"])
    ]


# In template.yaml each schema's Content is one line of JSON after a marker naming its detail-type.
_CONTENT_LINE = re.compile(r"^(?P<indent> +)Content: '(?P<json>.*)'  # schema: (?P<name>\w+)$", re.MULTILINE)


def template_with_schemas(template: str) -> str:
    def content(match: re.Match[str]) -> str:
        compact = json.dumps(eventbridge_schema(match["name"]), separators=(",", ":"), ensure_ascii=False)
        return f"{match['indent']}Content: '{compact.replace("'", "''")}'  # schema: {match['name']}"

    return _CONTENT_LINE.sub(content, template)


def main() -> None:
    parser = argparse.ArgumentParser(description="Generate (or --check) the published schemas.")
    parser.add_argument("--check", action="store_true", help="fail if a generated file is stale")
    stale = []
    check = parser.parse_args().check
    for path, text in expected_files().items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path.relative_to(ROOT))
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if check and stale:
        sys.exit("stale, run make schemas: " + ", ".join(map(str, stale)))
    for path in stale:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
