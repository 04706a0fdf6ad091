"""Create template.yaml's queues, tables and secret on a moto server, and the functions' environment for them.

Keys, indexes, TTL and the redrive policy are read from template.yaml, so the local stack cannot drift from what
is deployed.
"""

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import boto3
import yaml
from eprom.api_key import secret_string

if TYPE_CHECKING:
    from mypy_boto3_s3.literals import BucketLocationConstraintType
    from mypy_boto3_sqs.literals import QueueAttributeNameType

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads !Ref, !GetAtt, !Sub ... as plain {"Ref": ...} style values; we only need the literal parts."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)  # YAML's third kind of node
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    # S506: a SafeLoader subclass
    template: dict[str, Any] = yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # noqa: S506
    return template


def create_table(logical_id: str, name: str) -> None:
    """Create the table `logical_id` of template.yaml (keys, indexes, TTL) under `name`."""
    properties = load_template()["Resources"][logical_id]["Properties"]
    dynamodb = boto3.client("dynamodb")
    request = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
    }
    if "GlobalSecondaryIndexes" in properties:
        request["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    if "StreamSpecification" in properties:
        request["StreamSpecification"] = {"StreamEnabled": True} | properties["StreamSpecification"]
    dynamodb.create_table(**request)
    if "TimeToLiveSpecification" in properties:
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=properties["TimeToLiveSpecification"])


def create_outcome_bus(name: str, outcome_queue_arn: str) -> str:
    """OutcomeBus with OutcomeQueueRule (template.yaml's event pattern) delivering to OutcomeQueue."""
    events = boto3.client("events")
    events.create_event_bus(Name=name)
    pattern = load_template()["Resources"]["OutcomeQueueRule"]["Properties"]["EventPattern"]
    events.put_rule(Name=f"{name}-OutcomeQueueRule", EventBusName=name, EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule=f"{name}-OutcomeQueueRule", EventBusName=name, Targets=[{"Id": "OutcomeQueue", "Arn": outcome_queue_arn}]
    )
    return name


# The queue properties of template.yaml the local queues take as their attributes
_QUEUE_PROPERTIES: Final = ("VisibilityTimeout", "MessageRetentionPeriod", "MaximumMessageSize")


def create_resources(
    api_key: str, *, previous_api_keys: tuple[str, ...] = (), prefix: str | None = None
) -> dict[str, str]:
    """Create everything on the endpoint in AWS_ENDPOINT_URL; return the environment the functions read (and the
    URLs of the queues the local pollers and the stand-in for upstream read)."""
    resources = load_template()["Resources"]
    prefix = prefix or f"local-{uuid.uuid4().hex[:8]}"
    sqs, secrets, s3 = boto3.client("sqs"), boto3.client("secretsmanager"), boto3.client("s3")

    tables = ("FormOrdersTable", "IdempotencyTable", "MessagesTable")
    names = {logical_id: f"{prefix}-{logical_id}" for logical_id in tables}
    for logical_id, name in names.items():
        create_table(logical_id, name)

    queues: dict[str, tuple[str, str]] = {}  # logical id -> (URL, ARN)
    for logical_id in ("OrderDeadLetterQueue", "OrderQueue", "SignedDocumentDeadLetterQueue", "SignedDocumentQueue",
                       "PublishOutcomesFailureQueue", "OutcomeQueue", "OutcomeDeliveryDeadLetterQueue",
                       "MessageDeadLetterQueue", "MessageQueue"):  # fmt: skip
        properties = resources[logical_id]["Properties"]
        attributes: dict[QueueAttributeNameType, str] = {
            name: str(properties[name]) for name in _QUEUE_PROPERTIES if name in properties
        }
        if "RedrivePolicy" in properties:  # its dead-letter queue comes earlier in the list
            dead_letters = properties["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"].split(".")[0]
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": queues[dead_letters][1],
                    "maxReceiveCount": properties["RedrivePolicy"]["maxReceiveCount"],
                }
            )
        url = sqs.create_queue(QueueName=f"{prefix}-{logical_id}", Attributes=attributes)["QueueUrl"]
        queues[logical_id] = (
            url,
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"],
        )

    bus = create_outcome_bus(f"{prefix}-outcomes", queues["OutcomeQueue"][1])

    # a region's name is a bucket's location (the stubs name them one by one)
    location = cast("BucketLocationConstraintType", s3.meta.region_name)
    results_bucket = f"{prefix}-formresultsbucket".lower()
    s3.create_bucket(Bucket=results_bucket, CreateBucketConfiguration={"LocationConstraint": location})
    s3.put_bucket_versioning(
        Bucket=results_bucket,
        VersioningConfiguration=resources["FormResultsBucket"]["Properties"]["VersioningConfiguration"],
    )

    documents_bucket = f"{prefix}-messagedocumentsbucket".lower()  # not versioned, as template.yaml's
    s3.create_bucket(Bucket=documents_bucket, CreateBucketConfiguration={"LocationConstraint": location})

    secret_arn = secrets.create_secret(
        Name=f"{prefix}-EpromApiKeySecret",
        SecretString=secret_string(api_key, previous_api_keys),
    )["ARN"]
    fingerprint_secret_arn = secrets.create_secret(
        Name=f"{prefix}-OrderFingerprintSecret",
        SecretString=secrets.get_random_password(PasswordLength=64, ExcludePunctuation=True)["RandomPassword"],
    )["ARN"]

    return {
        "FORM_ORDERS_TABLE": names["FormOrdersTable"],
        "IDEMPOTENCY_TABLE": names["IdempotencyTable"],
        "EPROM_API_KEY_SECRET_ID": secret_arn,
        "ORDER_FINGERPRINT_SECRET_ID": fingerprint_secret_arn,
        "DEAD_LETTER_QUEUE_URL": queues["OrderDeadLetterQueue"][0],
        "FORM_RESULTS_BUCKET": results_bucket,
        "OUTCOME_BUS_NAME": bus,
        "SIGNED_DOCUMENT_QUEUE_URL": queues["SignedDocumentQueue"][0],
        "MESSAGES_TABLE": names["MessagesTable"],
        "MESSAGE_DOCUMENTS_BUCKET": documents_bucket,
        "MESSAGE_DEAD_LETTER_QUEUE_URL": queues["MessageDeadLetterQueue"][0],
        # not read by the functions: the local pollers and the stand-in for upstream read them
        "ORDER_QUEUE_URL": queues["OrderQueue"][0],
        "SIGNED_DOCUMENT_DEAD_LETTER_QUEUE_URL": queues["SignedDocumentDeadLetterQueue"][0],
        "PUBLISH_OUTCOMES_FAILURE_QUEUE_URL": queues["PublishOutcomesFailureQueue"][0],
        "OUTCOME_QUEUE_URL": queues["OutcomeQueue"][0],
        # moto's EventBridge never fails a delivery: it stays empty unless a test puts an event there
        "OUTCOME_DELIVERY_DEAD_LETTER_QUEUE_URL": queues["OutcomeDeliveryDeadLetterQueue"][0],
        "MESSAGE_QUEUE_URL": queues["MessageQueue"][0],
    }
