"""template.yaml keeps the public contract (architecture.md) and the settings derived from each other."""

from typing import Any

import pytest

from local.aws_resources import load_template

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]


@pytest.mark.parametrize(
    ("logical_id", "kind"),
    [
        ("PlaceOrderFunction", "AWS::Serverless::Function"),
        ("StatusCallbackFunction", "AWS::Serverless::Function"),
        ("SharedLayer", "AWS::Serverless::LayerVersion"),
        ("OrderQueue", "AWS::SQS::Queue"),
        ("OrderDeadLetterQueue", "AWS::SQS::Queue"),
        ("FormOrdersTable", "AWS::DynamoDB::Table"),
        ("IdempotencyTable", "AWS::DynamoDB::Table"),
        ("EpromApiKeySecret", "AWS::SecretsManager::Secret"),
        ("CallbackApi", "AWS::Serverless::Api"),
    ],
)
def test_every_logical_id_of_the_contract_exists(logical_id: str, kind: str) -> None:
    assert RESOURCES[logical_id]["Type"] == kind


def test_functions_run_python_313_with_the_layer() -> None:
    function_globals = TEMPLATE["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Layers"] == [{"Ref": "SharedLayer"}]
    assert TEMPLATE["Parameters"]["Architecture"]["Default"] == "arm64"
    assert RESOURCES["SharedLayer"]["Metadata"]["BuildMethod"] == "python3.13"
    assert RESOURCES["PlaceOrderFunction"]["Properties"]["Handler"] == "place_order.app.lambda_handler"
    assert RESOURCES["StatusCallbackFunction"]["Properties"]["Handler"] == "status_callback.app.lambda_handler"


def test_environment_variable_names_of_the_contract() -> None:
    common = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    placer = RESOURCES["PlaceOrderFunction"]["Properties"]["Environment"]["Variables"]
    assert {"FORM_ORDERS_TABLE", "EPROM_API_KEY_SECRET_ID"} <= set(common)
    assert {"IDEMPOTENCY_TABLE", "EPROM_API_BASE_URL", "DEAD_LETTER_QUEUE_URL", "ALLOW_SYNTHETIC_NATIONAL_IDS"} <= set(
        placer
    )
    assert TEMPLATE["Parameters"]["AllowSyntheticNationalIds"]["Default"] == "false"


def test_queue_settings_are_derived_from_the_function() -> None:
    queue = RESOURCES["OrderQueue"]["Properties"]
    timeout = RESOURCES["PlaceOrderFunction"]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 5
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": "OrderDeadLetterQueue.Arn"}
    assert RESOURCES["OrderDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_the_sqs_event_reports_partial_failures_with_bounded_concurrency() -> None:
    event = RESOURCES["PlaceOrderFunction"]["Properties"]["Events"]["Orders"]["Properties"]
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "OrderMaximumConcurrency"}


def test_tables_have_the_keys_the_code_uses() -> None:
    orders = RESOURCES["FormOrdersTable"]["Properties"]
    assert orders["KeySchema"] == [{"AttributeName": "formOrderId", "KeyType": "HASH"}]
    assert orders["GlobalSecondaryIndexes"][0]["IndexName"] == "orderReference-index"
    idempotency = RESOURCES["IdempotencyTable"]["Properties"]
    assert idempotency["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]  # Powertools' defaults
    assert idempotency["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


def test_the_callback_route() -> None:
    event = RESOURCES["StatusCallbackFunction"]["Properties"]["Events"]["Callback"]
    assert event["Type"] == "Api"
    assert event["Properties"]["Path"] == "/api/PromsFormOrder"
    assert event["Properties"]["Method"] == "PUT"
    assert event["Properties"]["RestApiId"] == {"Ref": "CallbackApi"}


@pytest.mark.parametrize("logical_id", ["FormOrdersTable", "EpromApiKeySecret", "EncryptionKey"])
def test_data_survives_a_stack_deletion(logical_id: str) -> None:
    assert RESOURCES[logical_id]["DeletionPolicy"] == "Retain"
    assert RESOURCES[logical_id]["UpdateReplacePolicy"] == "Retain"


def test_no_hard_coded_physical_names() -> None:
    for logical_id, resource in RESOURCES.items():
        properties = resource.get("Properties", {})
        for name_property in ("TableName", "QueueName", "FunctionName", "LayerName", "LogGroupName"):
            assert name_property not in properties, f"{logical_id}.{name_property}"


def statements(role: str) -> list[dict[str, Any]]:
    return [s for policy in RESOURCES[role]["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def actions(statement: dict[str, Any]) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


@pytest.mark.parametrize("role", ["PlaceOrderRole", "StatusCallbackRole"])
def test_no_wildcard_resources_except_where_aws_offers_no_scoping(role: str) -> None:
    for statement in statements(role):
        if statement["Resource"] == "*":
            assert all(action.startswith("xray:") for action in actions(statement)), statement["Sid"]


def test_the_callback_role_only_updates_the_orders_table_and_reads_the_key() -> None:
    granted = {action for statement in statements("StatusCallbackRole") for action in actions(statement)}
    assert {a for a in granted if a.startswith(("dynamodb:", "sqs:", "secretsmanager:"))} == {
        "dynamodb:UpdateItem",
        "secretsmanager:GetSecretValue",
    }
    assert RESOURCES["StatusCallbackFunction"]["Properties"]["Role"] == {"Fn::GetAtt": "StatusCallbackRole.Arn"}
    assert RESOURCES["PlaceOrderFunction"]["Properties"]["Role"] == {"Fn::GetAtt": "PlaceOrderRole.Arn"}


@pytest.mark.parametrize(
    ("logical_id", "key_property"),
    [
        ("OrderQueue", "KmsMasterKeyId"),
        ("OrderDeadLetterQueue", "KmsMasterKeyId"),
        ("EpromApiKeySecret", "KmsKeyId"),
        ("PlaceOrderLogGroup", "KmsKeyId"),
        ("StatusCallbackLogGroup", "KmsKeyId"),
        ("CallbackApiAccessLogGroup", "KmsKeyId"),
    ],
)
def test_everything_is_encrypted_with_the_one_customer_managed_key(logical_id: str, key_property: str) -> None:
    assert RESOURCES[logical_id]["Properties"][key_property] in (
        {"Ref": "EncryptionKey"},
        {"Fn::GetAtt": "EncryptionKey.Arn"},
    )
    assert RESOURCES["EncryptionKey"]["Properties"]["EnableKeyRotation"] is True
    for table in ("FormOrdersTable", "IdempotencyTable"):
        assert RESOURCES[table]["Properties"]["SSESpecification"]["KMSMasterKeyId"] == {"Ref": "EncryptionKey"}


def test_access_logs_carry_no_body() -> None:
    api = RESOURCES["CallbackApi"]["Properties"]
    assert "body" not in api["AccessLogSetting"]["Format"].lower()
    assert api["MethodSettings"][0]["DataTraceEnabled"] is False
