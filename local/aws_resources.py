"""Create template.yaml's queues, tables and secret on a moto server, and the functions' environment for them.

Keys, indexes, TTL and the redrive policy are read from template.yaml, so the local stack cannot drift from what
is deployed.
"""

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import yaml

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads !Ref, !GetAtt, !Sub ... as plain {"Ref": ...} style values; we only need the literal parts."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass


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
    dynamodb.create_table(**request)
    if "TimeToLiveSpecification" in properties:
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=properties["TimeToLiveSpecification"])


def create_resources(
    api_key: str, *, previous_api_keys: tuple[str, ...] = (), prefix: str | None = None
) -> dict[str, str]:
    """Create everything on the endpoint in AWS_ENDPOINT_URL; return the environment both functions read."""
    resources = load_template()["Resources"]
    prefix = prefix or f"local-{uuid.uuid4().hex[:8]}"
    sqs, secrets = boto3.client("sqs"), boto3.client("secretsmanager")

    names = {logical_id: f"{prefix}-{logical_id}" for logical_id in ("FormOrdersTable", "IdempotencyTable")}
    for logical_id, name in names.items():
        create_table(logical_id, name)

    dead_letter_queue = resources["OrderDeadLetterQueue"]["Properties"]
    dead_letter_url = sqs.create_queue(
        QueueName=f"{prefix}-OrderDeadLetterQueue",
        Attributes={name: str(dead_letter_queue[name]) for name in ("MessageRetentionPeriod", "MaximumMessageSize")},
    )["QueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    order_queue = resources["OrderQueue"]["Properties"]
    order_queue_url = sqs.create_queue(
        QueueName=f"{prefix}-OrderQueue",
        Attributes={
            name: str(order_queue[name])
            for name in ("VisibilityTimeout", "MessageRetentionPeriod", "MaximumMessageSize")
        }
        | {
            "RedrivePolicy": json.dumps(
                {
                    "deadLetterTargetArn": dead_letter_arn,
                    "maxReceiveCount": order_queue["RedrivePolicy"]["maxReceiveCount"],
                }
            ),
        },
    )["QueueUrl"]

    results_bucket = f"{prefix}-formresultsbucket".lower()
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=results_bucket, CreateBucketConfiguration={"LocationConstraint": s3.meta.region_name})
    s3.put_bucket_versioning(
        Bucket=results_bucket,
        VersioningConfiguration=resources["FormResultsBucket"]["Properties"]["VersioningConfiguration"],
    )

    secret_arn = secrets.create_secret(
        Name=f"{prefix}-EpromApiKeySecret",
        SecretString=json.dumps({"apiKey": api_key, "previousApiKeys": list(previous_api_keys)}),
    )["ARN"]

    return {
        "FORM_ORDERS_TABLE": names["FormOrdersTable"],
        "IDEMPOTENCY_TABLE": names["IdempotencyTable"],
        "EPROM_API_KEY_SECRET_ID": secret_arn,
        "DEAD_LETTER_QUEUE_URL": dead_letter_url,
        "FORM_RESULTS_BUCKET": results_bucket,
        "ORDER_QUEUE_URL": order_queue_url,  # not read by the functions; the local poller feeds them from it
    }
