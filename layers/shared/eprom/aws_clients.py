"""boto3 clients with explicit timeouts and the standard retry mode (the SDK's defaults are 60 s timeouts and the
legacy mode), so a slow AWS call fails inside the function's time instead of outlasting it.

Budget: one call takes at most two attempts of (1 s connect + 3 s read) plus the standard mode's backoff before
the second (at most 2 s): AWS_CALL_MAX_SECONDS. PlaceOrderFunction waits for ePROM only as long as leaves time
for the writes that must follow a placed order (see place_order.placement.eprom_read_timeout).
"""

from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, cast, overload

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:  # the stubs are a dev dependency: not in the layer
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

CONNECT_TIMEOUT_SECONDS = 1
READ_TIMEOUT_SECONDS = 3
MAX_ATTEMPTS = 2
AWS_CALL_MAX_SECONDS = MAX_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + 2

AWS_CLIENT_CONFIG = Config(
    connect_timeout=CONNECT_TIMEOUT_SECONDS,
    read_timeout=READ_TIMEOUT_SECONDS,
    retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
)


# The services the layer and the functions use: boto3-stubs types each client by its service's name.
Service = Literal["dynamodb", "events", "s3", "secretsmanager", "sqs"]


@overload
def aws_client(service: Literal["dynamodb"]) -> "DynamoDBClient": ...
@overload
def aws_client(service: Literal["events"]) -> "EventBridgeClient": ...
@overload
def aws_client(service: Literal["s3"]) -> "S3Client": ...
@overload
def aws_client(service: Literal["secretsmanager"]) -> "SecretsManagerClient": ...
@overload
def aws_client(service: Literal["sqs"]) -> "SQSClient": ...
def aws_client(service: Service) -> Any:
    return boto3.client(service, config=AWS_CLIENT_CONFIG)


@overload
def lazy_client(service: Literal["events"]) -> "cached_property[EventBridgeClient]": ...
@overload
def lazy_client(service: Literal["s3"]) -> "cached_property[S3Client]": ...
@overload
def lazy_client(service: Literal["sqs"]) -> "cached_property[SQSClient]": ...
def lazy_client(service: Service) -> cached_property[Any]:
    """A client made on first use, as an attribute of an adapter: making one costs cold-start time (an S3 client
    55-75 ms: docs/performance.md, "Clients made when first needed"), and most invocations use only some of them."""

    def make(_: object) -> Any:
        return aws_client(service)

    return cached_property(make)


def condition_failed_item(error: ClientError) -> dict[str, Any] | None:
    """The item a DynamoDB write's condition failed on, which comes with the error when the write asks for it
    (ReturnValuesOnConditionCheckFailure=ALL_OLD); None when there was no item. botocore-stubs' type of an error's
    response does not name this member."""
    return cast("dict[str, Any] | None", error.response.get("Item"))
