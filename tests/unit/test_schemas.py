"""The published contract for upstream systems (schemas/, and the stack's EventBridge schema registry): generated
from the models, never stale, and true of what the code accepts and emits."""

import json
from pathlib import Path

import pytest
from eprom.contracts import OrderMessage

from buildtools.schemas import EVENTS, MESSAGE_EVENTS, SCHEMAS, eventbridge_schema, expected_files, order_message_errors
from local.aws_resources import load_template

SAMPLE_ORDERS = sorted((Path(__file__).resolve().parents[2] / "events" / "orders").glob("*.json"))
CONTEXT = {"allow_synthetic_national_ids": True, "allow_test_mode_orders": True}


def test_the_committed_schemas_and_template_contents_are_what_make_schemas_writes() -> None:
    stale = [str(path) for path, text in expected_files().items() if not path.exists() or path.read_text() != text]
    assert stale == [], "run make schemas"


def test_the_stack_registers_every_event_schema_in_its_registry() -> None:
    resources = load_template()["Resources"]
    registered = {
        resource["Properties"]["SchemaName"]: json.loads(resource["Properties"]["Content"])
        for resource in resources.values()
        if resource["Type"] == "AWS::EventSchemas::Schema"
    }
    assert registered == {f"eprom.integration@{name}": eventbridge_schema(name) for name in EVENTS | MESSAGE_EVENTS}
    for resource in resources.values():
        if resource["Type"] == "AWS::EventSchemas::Schema":
            assert resource["Properties"]["Type"] == "OpenApi3"
            assert resource["Properties"]["RegistryName"] == {"Fn::GetAtt": "OutcomeSchemaRegistry.RegistryName"}


@pytest.mark.parametrize("path", SAMPLE_ORDERS, ids=lambda path: path.stem)
def test_every_sample_order_the_model_accepts_the_schema_accepts(path: Path) -> None:
    order = json.loads(path.read_text())
    try:
        OrderMessage.model_validate(order, context=CONTEXT)
    except ValueError:
        pytest.skip("the model refuses this sample; its reason is tested with the placer")
    assert order_message_errors(order) == []


def test_the_schema_refuses_what_no_upstream_may_send() -> None:
    basic = json.loads((SCHEMAS.parent / "events" / "orders" / "basic.json").read_text())
    assert order_message_errors(basic | {"formid": basic["formId"]})  # a typo is an unknown field
    assert order_message_errors({key: value for key, value in basic.items() if key != "orderReference"})
    assert order_message_errors(basic | {"distributionRule": "Paper"})
    assert order_message_errors(basic | {"nationalId": "2607394165"})
    assert order_message_errors(basic | {"orderReference": "has space"})


def test_the_schema_takes_every_distribution_rule_as_name_and_number() -> None:
    basic = json.loads((SCHEMAS.parent / "events" / "orders" / "basic.json").read_text())
    for rule in ("NoDistribution", 2, "PaperOnly", 5):
        assert order_message_errors(basic | {"distributionRule": rule}) == []
        OrderMessage.model_validate(basic | {"distributionRule": rule}, context=CONTEXT)
