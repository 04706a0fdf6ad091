"""StatusCallbackFunction: ePROM's PUT /api/PromsFormOrder (order status and form returns) -> FormResultsBucket
(answers) and FormOrdersTable; PUT /api/MessageToCitizen (a letter's fate) -> MessagesTable; and
PUT /api/PersonvernInnstilling (a privacy-setting change) -> FormResultsBucket and OutcomeBus.

Replies as architecture.md fixes them: 200 stored, 401 bad key, 400 unreadable, 5xx not stored (ePROM retries).
"""

import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from eprom.api_key import ApiKeySource
from eprom.message_store import MessageStore
from eprom.messages import MessageToCitizenCallback
from eprom.models import CallbackReply, EpromCallback, describe_errors
from eprom.order_store import OrderStore
from eprom.outcome_bus import OutcomeBus
from eprom.results_store import ResultsStore

from status_callback.callbacks import Unauthorized, receive_callback
from status_callback.message_callbacks import receive_message_callback
from status_callback.privacy_changes import UnreadableChange, receive_privacy_change
from status_callback.settings import CallbackSettings

settings = CallbackSettings.from_environment()
logger = Logger()
metrics = Metrics()
store = OrderStore(settings.form_orders_table, retention_days=settings.result_retention_days)
results = ResultsStore(settings.form_results_bucket)
api_keys = ApiKeySource.of(settings)


class UnreadableBody(Exception):
    """JSON nested too deep or with a number too long for Python to read: not a callback, answered 400."""


def _read_json(body: str) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        raise  # the resolver's own "not JSON" 400
    except (RecursionError, ValueError):  # ValueError: an integer of more than 4300 digits
        raise UnreadableBody from None


app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=_read_json)
CALLBACK_PATH = "/api/PromsFormOrder"  # the REST resolver also routes the trailing-slash form here

_REPLIES: dict[int, OpenAPIResponse] = {
    200: {"description": "Stored (also a replay or an out-of-date status)"},
    400: {"description": "Not JSON, or not a callback we can read; nothing written"},
    401: {"description": "apiKey missing or wrong; nothing written"},
    500: {"description": "Not stored; ePROM should send it again"},
}


def _reply(
    status: HTTPStatus, reason: str | None = None, headers: dict[str, str] | None = None
) -> Response[CallbackReply]:
    body = CallbackReply(success=status == HTTPStatus.OK, reason=reason)
    return Response(status_code=int(status), content_type="application/json", body=body, headers=headers)


@app.put(CALLBACK_PATH, summary="Order status or form return from ePROM", responses=_REPLIES)
def put_proms_form_order(callback: EpromCallback) -> Response[CallbackReply]:
    receive_callback(callback, app.current_event.decoded_body or "", api_keys=api_keys, store=store, results=results)
    return _reply(HTTPStatus.OK)


# --- Messages to citizens: a letter's fate ---------------------------------------------------------------------------
MESSAGE_CALLBACK_PATH = "/api/MessageToCitizen"  # with a trailing slash too, as CALLBACK_PATH
messages = MessageStore(settings.messages_table, client=store.client, retention_days=settings.result_retention_days)


@app.put(MESSAGE_CALLBACK_PATH, summary="A letter's fate from ePROM (sentStatus 0 Sent, 1 Error)", responses=_REPLIES)
def put_message_to_citizen(callback: MessageToCitizenCallback) -> Response[CallbackReply]:
    receive_message_callback(callback, api_keys=api_keys, store=messages)
    return _reply(HTTPStatus.OK)


# --- Privacy settings (PVK): PUT /api/PersonvernInnstilling, Helsenorge's changes forwarded by ePROM (issue 29) ---

PRIVACY_CHANGE_PATH = "/api/PersonvernInnstilling"
bus = OutcomeBus(settings.outcome_bus_name)


@app.put(
    PRIVACY_CHANGE_PATH, summary="A privacy-setting change from Helsenorge, forwarded by ePROM", responses=_REPLIES
)
def put_personvern_innstilling() -> Response[CallbackReply]:
    # The key may come in a header: the headers as API Gateway hands them over, each name with all its values
    event = app.current_event
    headers = event.multi_value_headers or {name: [value] for name, value in (event.headers or {}).items()}
    receive_privacy_change(event.decoded_body or "", headers, api_keys=api_keys, results=results, bus=bus)
    return _reply(HTTPStatus.OK)


@app.exception_handler(UnreadableChange)
def _unreadable_change(error: UnreadableChange) -> Response[CallbackReply]:
    logger.warning("privacy change refused: unreadable", reason=str(error))
    metrics.add_metric(name="CallbacksUnreadable", unit=MetricUnit.Count, value=1)
    return _reply(HTTPStatus.BAD_REQUEST, str(error))


# --- every path ------------------------------------------------------------------------------------------------------

PUT_PATHS = (CALLBACK_PATH, MESSAGE_CALLBACK_PATH, PRIVACY_CHANGE_PATH)


@app.not_found
def _no_such_route(_: Exception) -> Response[CallbackReply]:
    if app.current_event.path.rstrip("/") in PUT_PATHS:
        return _reply(HTTPStatus.METHOD_NOT_ALLOWED, "only PUT is served here", headers={"Allow": "PUT"})
    return _reply(HTTPStatus.NOT_FOUND, f"only PUT {' and PUT '.join(PUT_PATHS)} are served here")


@app.exception_handler(Unauthorized)
def _unauthorized(_: Unauthorized) -> Response[CallbackReply]:
    logger.warning("callback refused: apiKey missing or wrong")
    metrics.add_metric(name="CallbacksUnauthorized", unit=MetricUnit.Count, value=1)
    return _reply(HTTPStatus.UNAUTHORIZED)


@app.exception_handler(RequestValidationError)
def _unreadable(error: RequestValidationError) -> Response[CallbackReply]:
    # Field and problem only: the input may hold national ids, answers or the key.
    reason = describe_errors(error.errors())
    logger.warning("callback refused: unreadable", reason=reason)
    metrics.add_metric(name="CallbacksUnreadable", unit=MetricUnit.Count, value=1)
    return _reply(HTTPStatus.BAD_REQUEST, reason)


@app.exception_handler(UnreadableBody)
def _too_deep_or_too_long(_: UnreadableBody) -> Response[CallbackReply]:
    logger.warning("callback refused: JSON nested too deep or a number too long")
    metrics.add_metric(name="CallbacksUnreadable", unit=MetricUnit.Count, value=1)
    return _reply(HTTPStatus.BAD_REQUEST, "body: JSON nested too deep or with a number too long to read")


@app.exception_handler(Exception)
def _not_stored(error: Exception) -> Response[CallbackReply]:
    # DynamoDB or Secrets Manager failed: not acknowledged, so ePROM sends it again.
    logger.error("callback NOT stored", error_type=type(error).__name__)
    metrics.add_metric(name="CallbacksFailed", unit=MetricUnit.Count, value=1)
    return _reply(HTTPStatus.INTERNAL_SERVER_ERROR)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(_as_json_request(event), context)


def _as_json_request(event: dict[str, Any]) -> dict[str, Any]:
    """ePROM's callbacks are JSON whatever Content-Type says; read them as JSON (the resolver would otherwise try
    form or multipart parsing, and fail with a 5xx on a malformed multipart header)."""
    for headers in (event.get("headers") or {}, event.get("multiValueHeaders") or {}):
        for name in [name for name in headers if name.lower() == "content-type"]:
            del headers[name]
    return event
