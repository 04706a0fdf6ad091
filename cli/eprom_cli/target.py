"""What the command works on: a deployed stack (its outputs and parameters, read from CloudFormation) or the
local stack of `make serve` (the state file it writes when ready and removes when it stops, with the moto server's
endpoint; one model, so writer and reader cannot drift apart)."""

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

# Operators wait for answers: fail within seconds instead of the SDK's 60 s.
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=20, retries={"mode": "standard", "max_attempts": 3})
# PrivacySettingsFunction answers within its timeout (900 s: a list of a whole population), and an invocation the SDK
# gave up waiting for would go on running: one attempt, waited for as long as the function may take.
LAMBDA_CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=910, retries={"mode": "standard", "max_attempts": 1})


class TargetError(Exception):
    """Why the stack cannot be used: one line for the operator."""


class StackResources(BaseModel):
    """A stack's resources and settings, as the command names them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: str
    order_queue_url: str
    dead_letter_queue_url: str
    signed_document_queue_url: str
    signed_document_dead_letter_queue_url: str
    table: str
    bucket: str
    secret_id: str
    api_base_url: str
    allow_synthetic_national_ids: bool
    allow_test_mode_orders: bool
    endpoint_url: str | None = None  # the moto server's (the local stack and tests only)
    # Outputs a stack deployed before they existed lacks (None); the commands that need one say so.
    outcome_bus_name: str | None = None  # `eprom verify` taps it, `outcomes republish` puts on it
    outcome_queue_url: str | None = None  # `outcomes redrive` sends back to it
    outcome_delivery_dead_letter_queue_url: str | None = None
    idempotency_table: str | None = None  # the claims `orders adopt` settles
    encryption_key_arn: str | None = None  # the stack's key: `eprom verify`'s tap queue is encrypted with it
    eprom_api_base_url: str | None = None  # which ePROM environment the stack orders from
    eprom_simulator_url: str | None = None  # the local stack only: the simulator answers what ePROM received
    # Messages to citizens (a stack from before them: None)
    message_queue_url: str | None = None
    message_dead_letter_queue_url: str | None = None
    messages_table: str | None = None
    message_documents_bucket: str | None = None
    privacy_settings_function: str | None = None  # `eprom privacy` invokes it (a stack from before it: None)
    lambda_endpoint_url: str | None = None  # the local stack only: its Lambda Invoke front


class Target(StackResources):
    name: str
    session: Any  # boto3.Session

    # The services the commands use: boto3-stubs types each client by its service's name.
    @overload
    def client(self, service: Literal["dynamodb"]) -> "DynamoDBClient": ...
    @overload
    def client(self, service: Literal["events"]) -> "EventBridgeClient": ...
    @overload
    def client(self, service: Literal["lambda"]) -> "LambdaClient": ...
    @overload
    def client(self, service: Literal["s3"]) -> "S3Client": ...
    @overload
    def client(self, service: Literal["secretsmanager"]) -> "SecretsManagerClient": ...
    @overload
    def client(self, service: Literal["sqs"]) -> "SQSClient": ...
    def client(self, service: str) -> Any:
        if service == "lambda":
            return self.session.client(service, endpoint_url=self.lambda_endpoint_url, config=LAMBDA_CLIENT_CONFIG)
        return self.session.client(service, endpoint_url=self.endpoint_url, config=CLIENT_CONFIG)

    @property
    def is_production(self) -> bool:
        return self.stage == "prod"


class LocalTarget(StackResources):
    """The resources of `make serve`'s stack: a test stage on the moto server."""

    stage: str = "local"
    endpoint_url: str
    eprom_simulator_url: str  # `eprom --local verify` asks it what ePROM received
    allow_synthetic_national_ids: bool = True
    allow_test_mode_orders: bool = True


# The default place; EPROM_LOCAL_STATE (the command) and --state-file (make serve) name another.
LOCAL_STATE = Path(__file__).resolve().parent.parent.parent / ".local-run" / "stack.json"


class LocalState(BaseModel):
    """The state file of `make serve`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str
    target: LocalTarget

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=1))

    @classmethod
    def read(cls, path: Path) -> "LocalState":
        return cls.model_validate_json(path.read_text())


def state_path() -> Path:
    """Where the command looks: EPROM_LOCAL_STATE (the tests' own stacks), else LOCAL_STATE."""
    return Path(os.environ.get("EPROM_LOCAL_STATE", LOCAL_STATE))


# CloudFormation output -> Target field: the outputs template.yaml declares for operators.
_OUTPUTS = {
    "OrderQueueUrl": "order_queue_url",
    "OrderDeadLetterQueueUrl": "dead_letter_queue_url",
    "SignedDocumentQueueUrl": "signed_document_queue_url",
    "SignedDocumentDeadLetterQueueUrl": "signed_document_dead_letter_queue_url",
    "FormOrdersTableName": "table",
    "FormResultsBucketName": "bucket",
    "EpromApiKeySecretArn": "secret_id",
    "ApiBaseUrl": "api_base_url",
}
_OPTIONAL_OUTPUTS = {
    "OutcomeBusName": "outcome_bus_name",
    "OutcomeQueueUrl": "outcome_queue_url",
    "OutcomeDeliveryDeadLetterQueueUrl": "outcome_delivery_dead_letter_queue_url",
    "IdempotencyTableName": "idempotency_table",
    "EncryptionKeyArn": "encryption_key_arn",
    # messages to citizens
    "MessageQueueUrl": "message_queue_url",
    "MessageDeadLetterQueueUrl": "message_dead_letter_queue_url",
    "MessagesTableName": "messages_table",
    "MessageDocumentsBucketName": "message_documents_bucket",
}


def deployed_stack(name: str, *, region: str | None = None, profile: str | None = None) -> Target:
    try:
        session = boto3.Session(region_name=region, profile_name=profile)
        if session.region_name is None:
            raise TargetError("no region: give --region or set one in your AWS profile")
        endpoint = os.environ.get("AWS_ENDPOINT_URL")  # only ever set for tests against moto
        cloudformation = session.client("cloudformation", endpoint_url=endpoint, config=CLIENT_CONFIG)
        [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        message = error.response["Error"].get("Message", "")
        if "does not exist" in message:
            raise TargetError(f"stack {name} does not exist in {session.region_name}") from None
        raise TargetError(f"cannot read stack {name}: {error.response['Error']['Code']}") from None
    except BotoCoreError as error:  # no credentials, unknown profile, no network
        raise TargetError(f"cannot reach CloudFormation: {error}") from None
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    missing = sorted(set(_OUTPUTS) - set(outputs))
    if missing:
        raise TargetError(f"stack {name} lacks the outputs {', '.join(missing)}: is it this project's, up to date?")
    parameters = {parameter["ParameterKey"]: parameter.get("ParameterValue", "") for parameter in stack["Parameters"]}
    # by field name, as data: pydantic checks each value against its field
    resources: dict[str, Any] = {field: outputs[output] for output, field in _OUTPUTS.items()}
    resources |= {field: outputs.get(output) or None for output, field in _OPTIONAL_OUTPUTS.items()}
    return Target(
        name=name,
        stage=parameters.get("Stage", "?"),
        allow_synthetic_national_ids=parameters.get("AllowSyntheticNationalIds") == "true",
        allow_test_mode_orders=parameters.get("AllowTestModeOrders") == "true",
        session=session,
        endpoint_url=endpoint,
        eprom_api_base_url=parameters.get("EpromApiBaseUrl"),
        privacy_settings_function=outputs.get("PrivacySettingsFunctionArn"),
        **resources,
    )


def local_stack() -> Target:
    """The stack `make serve` runs (it writes its state file when ready and removes it when it stops)."""
    path = state_path()
    try:
        state = LocalState.read(path)
    except FileNotFoundError:
        raise TargetError(f"no local stack: start `make serve` first ({path} is missing)") from None
    session = boto3.Session(
        region_name=state.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106
    )
    return Target(name="local", session=session, **state.target.model_dump())
