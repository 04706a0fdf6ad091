"""boto3 clients with explicit timeouts and the standard retry mode (the SDK's defaults are 60 s timeouts and the
legacy mode), so a slow AWS call fails inside the function's time instead of outlasting it.

Budget: one call takes at most two attempts of (1 s connect + 3 s read) plus the standard mode's backoff before
the second (at most 2 s): AWS_CALL_MAX_SECONDS. PlaceOrderFunction waits for ePROM only as long as leaves time
for the writes that must follow a placed order (see place_order.placement.eprom_read_timeout).
"""

from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config

CONNECT_TIMEOUT_SECONDS = 1
READ_TIMEOUT_SECONDS = 3
MAX_ATTEMPTS = 2
AWS_CALL_MAX_SECONDS = MAX_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + 2

AWS_CLIENT_CONFIG = Config(
    connect_timeout=CONNECT_TIMEOUT_SECONDS,
    read_timeout=READ_TIMEOUT_SECONDS,
    retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
)


def aws_client(service: str) -> Any:
    return boto3.client(service, config=AWS_CLIENT_CONFIG)


def lazy_client(service: str) -> cached_property[Any]:
    """A client made on first use, as an attribute of an adapter: making one costs cold-start time (an S3 client
    55-75 ms: docs/performance.md, "Clients made when first needed"), and most invocations use only some of them."""

    def make(_: object) -> Any:
        return aws_client(service)

    return cached_property(make)
