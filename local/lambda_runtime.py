"""What the Lambda service hands a handler locally: a context object, and REST API (v1) proxy events."""

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

# A synchronous invocation's response may not exceed 6 MB; Lambda then fails the invocation with this error
# (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
MAX_RESPONSE_BYTES = 6_291_556


class ResponseTooLarge(Exception):
    """Lambda's "Response payload size exceeded maximum allowed payload size"."""


def checked_response(response: dict[str, Any]) -> dict[str, Any]:
    """The handler's response, or ResponseTooLarge where Lambda would refuse to return it."""
    size = len(json.dumps(response).encode())
    if size > MAX_RESPONSE_BYTES:
        raise ResponseTooLarge(f"Response payload size ({size} bytes) exceeded maximum allowed payload size")
    return response


@dataclass
class LambdaContext:
    function_name: str = "local"
    timeout_seconds: float = 30.0
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:eu-north-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def rest_api_event(
    method: str, path: str, headers: dict[str, str], body: str | None, stage: str = "local"
) -> dict[str, Any]:
    """An API Gateway REST API proxy event, as the CallbackApi integration sends it."""
    return {
        "resource": path.rstrip("/") or "/",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path.rstrip("/") or "/",
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": "127.0.0.1"},
            "accountId": "123456789012",
            "apiId": "local",
        },
        "body": body,
        "isBase64Encoded": False,
    }


def response_headers(response: dict[str, Any]) -> dict[str, str]:
    headers = dict(response.get("headers") or {})
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers[name] = ", ".join(values)
    return headers
