"""One order message: validate it, place it with ePROM at most once per orderReference, record the outcome.

Every message ends placed, refused (in the DLQ with a reason) or retried: a TransientFailure leaves the
message on the queue for SQS to deliver again.
"""

import threading
from collections.abc import Callable

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from eprom.eprom_client import EpromClient, Placed, Refused, Transient
from eprom.models import EpromOrderResponse, OrderMessage, describe_validation_error
from eprom.order_store import OrderStore
from pydantic import BaseModel, ValidationError

from place_order.dead_letters import DeadLetterQueue

logger = Logger(child=True)
metrics = Metrics()
# Records run on worker threads, and Metrics.add_metric is not thread-safe: two threads adding a metric name for
# the first time each create its entry, and one count is lost.
_metrics_lock = threading.Lock()

REUSED_ORDER_REFERENCE = "orderReference was already used for an order with other content"


class TransientFailure(Exception):
    """Try the message again later. The message is a reason without personal data."""


class PlacementOutcome(BaseModel):
    """What is remembered per orderReference, so a re-sent order gets the same answer without a second order."""

    response: EpromOrderResponse | None = None
    refusal: str | None = None


def place_with_eprom(order: OrderMessage, eprom: EpromClient) -> PlacementOutcome:
    match eprom.place(order.to_eprom_request()):
        case Placed(response):
            return PlacementOutcome(response=response)
        case Refused(reason):
            return PlacementOutcome(refusal=reason)
        case Transient(reason):
            raise TransientFailure(reason)


def handle_order_message(
    body: str,
    *,
    allow_synthetic_national_ids: bool,
    place_once: Callable[[OrderMessage], PlacementOutcome],
    store: OrderStore,
    dead_letters: DeadLetterQueue,
) -> None:
    try:
        order = OrderMessage.model_validate_json(
            body, context={"allow_synthetic_national_ids": allow_synthetic_national_ids}
        )
    except ValidationError as error:
        _refuse(body, f"invalid order message: {describe_validation_error(error)}", "InvalidMessage", dead_letters)
        return
    logger.thread_safe_append_keys(order_reference=order.order_reference, form_id=str(order.form_id))

    try:
        outcome = place_once(order)
    except IdempotencyValidationError:
        _refuse(body, REUSED_ORDER_REFERENCE, "ReusedOrderReference", dead_letters)
        return
    except IdempotencyAlreadyInProgressError as error:
        raise TransientFailure("an order with this orderReference is being placed right now") from error

    if outcome.response is None:
        _refuse(body, outcome.refusal or "refused", "RefusedByEprom", dead_letters)
        return
    form_order_id = str(outcome.response.id)
    store.record_placed(
        form_order_id, order_reference=order.order_reference, form_id=str(order.form_id), response=outcome.response
    )
    logger.info("order placed", form_order_id=form_order_id)
    count("OrdersPlaced")


def count(metric_name: str) -> None:
    with _metrics_lock:
        metrics.add_metric(name=metric_name, unit=MetricUnit.Count, value=1)


def _refuse(body: str, reason: str, reason_class: str, dead_letters: DeadLetterQueue) -> None:
    # If this send fails the exception propagates and the message is retried: a refusal is never dropped.
    dead_letters.send(body, reason)
    logger.warning("order refused", rejection_reason=reason, reason_class=reason_class)
    with single_metric(name="OrdersRefused", unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        metric.add_dimension(name="ReasonClass", value=reason_class)
