"""StatusCallbackFunction: ePROM's PUT /api/PromsFormOrder (order status and form returns) -> FormResultsBucket
(answers) and FormOrdersTable; PUT /api/MessageToCitizen (a letter's fate) -> MessagesTable; and
PUT /api/PersonvernInnstilling (a privacy-setting change) -> FormResultsBucket and OutcomeBus.

Replies as architecture.md fixes them: 200 stored, 401 bad key, 400 unreadable, 5xx not stored (ePROM retries).
"""

from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from eprom.api_key import ApiKeySource
from eprom.message_store import MessageStore
from eprom.messages import MessageToCitizenCallback
from eprom.models import EpromCallback
from eprom.order_store import OrderStore
from eprom.results_store import ResultsStore

from status_callback.callbacks import receive_callback
from status_callback.message_callbacks import receive_message_callback
from status_callback.router import Request, Route, resolve
from status_callback.settings import CallbackSettings

if TYPE_CHECKING:
    from eprom.outcome_bus import OutcomeBus

settings = CallbackSettings.from_environment()
logger = Logger()
metrics = Metrics()
store = OrderStore(settings.form_orders_table, retention_days=settings.result_retention_days)
results = ResultsStore(settings.form_results_bucket)
messages = MessageStore(settings.messages_table, client=store.client, retention_days=settings.result_retention_days)
api_keys = ApiKeySource.of(settings)


def put_proms_form_order(callback: EpromCallback, request: Request) -> None:
    receive_callback(callback, request.body, api_keys=api_keys, store=store, results=results)


def put_message_to_citizen(callback: MessageToCitizenCallback, _: Request) -> None:
    receive_message_callback(callback, api_keys=api_keys, store=messages)


def put_personvern_innstilling(_: None, request: Request) -> None:
    # The rarest route: its modules (the privacy settings' readers, the events) are imported by its first call, not
    # by every cold start (docs/performance.md). Read from the received text itself: stored byte-exact, the key
    # possibly in a header.
    from status_callback.privacy_changes import receive_privacy_change

    receive_privacy_change(request.body, request.headers, api_keys=api_keys, results=results, bus=outcome_bus())


@cache
def outcome_bus() -> "OutcomeBus":
    from eprom.outcome_bus import OutcomeBus

    return OutcomeBus(settings.outcome_bus_name)


# The callback API by path (the OpenAPI schema is generated from it: make openapi)
ROUTES: dict[str, Route[Any]] = {
    "/api/PromsFormOrder": Route(EpromCallback, put_proms_form_order, "Order status or form return from ePROM"),
    "/api/MessageToCitizen": Route(
        MessageToCitizenCallback, put_message_to_citizen, "A letter's fate from ePROM (sentStatus 0 Sent, 1 Error)"
    ),
    "/api/PersonvernInnstilling": Route(
        None, put_personvern_innstilling, "A privacy-setting change from Helsenorge, forwarded by ePROM"
    ),
}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(ROUTES, event)
