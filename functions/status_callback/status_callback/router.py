"""The callback API's few PUT routes: a REST API (v1) proxy event in, the reply architecture.md fixes out.

Written here rather than with Powertools' REST resolver, whose package imports every resolver it has (AppSync's with
asyncio) into every cold start (docs/performance.md); that resolver still generates the API's OpenAPI schema from
these routes (buildtools/openapi.py). A route reads its body as JSON whatever Content-Type says (ePROM's callbacks
are JSON), as its model, and its handler stores it: 200 stored, 400 unreadable (the reason names fields, never
values), 401 bad key, 500 not stored (ePROM retries); 405 another method on a route's path, 404 another path.
"""

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from eprom.models import CallbackReply, describe_errors
from pydantic import BaseModel, ValidationError

from status_callback.callbacks import Unauthorized

logger = Logger(child=True)
metrics = Metrics()

# What each reply means, for the OpenAPI schema
REPLIES = {
    200: "Stored (also a replay or an out-of-date status)",
    400: "Not JSON, or not a callback we can read; nothing written",
    401: "apiKey missing or wrong; nothing written",
    500: "Not stored; ePROM should send it again",
}


@dataclass(frozen=True)
class Request:
    body: str  # the received text, as API Gateway hands it over
    headers: Mapping[str, list[str]]  # names in lower case, each with every value it was sent with


@dataclass(frozen=True)
class Route[Body: BaseModel]:
    """`handle` stores what came (a body read as `model`; with no model, the handler reads `request.body` itself and
    raises Unreadable for one it cannot read), or raises: Unauthorized, or anything else (not stored)."""

    model: type[Body] | None
    handle: Callable[[Body, Request], None]
    summary: str  # for the OpenAPI schema


class Unreadable(Exception):
    """Not a body the route's model can read; the reason names fields, never values."""


def resolve(routes: Mapping[str, Route[Any]], event: dict[str, Any]) -> dict[str, Any]:
    """The reply to one request; `routes` by path (API Gateway sends each with a trailing slash too)."""
    route = routes.get(event["path"].rstrip("/"))
    if route is None:
        served = ", ".join(f"PUT {path}" for path in routes)
        return reply(HTTPStatus.NOT_FOUND, f"only {served} is served here")
    if event["httpMethod"] != "PUT":
        return reply(HTTPStatus.METHOD_NOT_ALLOWED, "only PUT is served here", {"Allow": "PUT"})
    request = Request(_body(event), _headers(event))
    try:
        route.handle(_read(route.model, request.body) if route.model else None, request)
    except Unreadable as unreadable:
        logger.warning("callback refused: unreadable", reason=str(unreadable))
        metrics.add_metric(name="CallbacksUnreadable", unit=MetricUnit.Count, value=1)
        return reply(HTTPStatus.BAD_REQUEST, str(unreadable))
    except Unauthorized:
        logger.warning("callback refused: apiKey missing or wrong")
        metrics.add_metric(name="CallbacksUnauthorized", unit=MetricUnit.Count, value=1)
        return reply(HTTPStatus.UNAUTHORIZED)
    except Exception as error:  # DynamoDB, S3 or Secrets Manager failed: not acknowledged, so ePROM sends it again
        logger.error("callback NOT stored", error_type=type(error).__name__)
        metrics.add_metric(name="CallbacksFailed", unit=MetricUnit.Count, value=1)
        return reply(HTTPStatus.INTERNAL_SERVER_ERROR)
    return reply(HTTPStatus.OK)


def reply(status: HTTPStatus, reason: str | None = None, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A REST API (v1) proxy response carrying a CallbackReply."""
    body = CallbackReply(success=status == HTTPStatus.OK, reason=reason).model_dump_json()
    all_headers = {"Content-Type": "application/json"} | dict(headers or {})
    return {
        "statusCode": int(status),
        "multiValueHeaders": {name: [value] for name, value in all_headers.items()},
        "body": body,
        "isBase64Encoded": False,
    }


def _headers(event: dict[str, Any]) -> dict[str, list[str]]:
    """Every header with all its values (API Gateway's `headers` keeps only the last value of a repeated one)."""
    multi = event.get("multiValueHeaders") or {name: [value] for name, value in (event.get("headers") or {}).items()}
    found: dict[str, list[str]] = {}
    for name, values in multi.items():
        found.setdefault(name.lower(), []).extend(values or [])
    return found


def _body(event: dict[str, Any]) -> str:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):  # only with binary media types, which CallbackApi has none of
        return base64.b64decode(body).decode(errors="surrogateescape")
    return str(body)


def _read[Body: BaseModel](model: type[Body], body: str) -> Body:
    if not body:
        raise Unreadable("body: missing")
    try:
        content = json.loads(body)
    except json.JSONDecodeError:
        raise Unreadable("body: not JSON") from None
    except (RecursionError, ValueError):  # ValueError: an integer of more than 4300 digits
        raise Unreadable("body: JSON nested too deep or with a number too long to read") from None
    if not isinstance(content, dict):
        raise Unreadable("body: not a JSON object")
    try:
        return model.model_validate(content)
    except ValidationError as invalid:
        errors = invalid.errors(include_input=False, include_url=False, include_context=False)
        raise Unreadable(describe_errors([error | {"loc": ("body", *error["loc"])} for error in errors])) from None
