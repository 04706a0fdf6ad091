"""One stream record of FormOrdersTable: the outcome events it means, on OutcomeBus, and a signed-document job
for a form return that has one; or of MessagesTable: its events. A failure raises, and the record is retried with
the same event ids."""

import uuid

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from eprom.message_item import MessageItem
from eprom.order_item import OrderItem
from eprom.outcome_bus import OutcomeBus
from eprom.outcomes import as_events, documents_to_fetch, item_outcomes, message_outcomes
from eprom.queues import SignedDocumentJob, SignedDocumentQueue

logger = Logger(child=True)
metrics = Metrics()


def publish(
    old: OrderItem | None,
    new: OrderItem | None,
    *,
    bus: OutcomeBus,
    jobs: SignedDocumentQueue,
    bucket: str,
) -> None:
    details = item_outcomes(old, new, bucket=bucket)
    if not details:
        return
    bus.put(as_events(details))
    for signed_form_id in documents_to_fetch(old, new):  # the returns just announced that expect a document
        assert new is not None  # an item that is gone announces nothing
        jobs.request(
            SignedDocumentJob(form_order_id=uuid.UUID(new.form_order_id), signed_form_id=uuid.UUID(signed_form_id))
        )
    for detail in details:
        logger.info("outcome published", detail_type=type(detail).__name__, event_id=detail.event_id,
                    form_order_id=detail.form_order_id, order_reference=detail.order_reference)  # fmt: skip
    metrics.add_metric(name="OutcomeEventsPublished", unit=MetricUnit.Count, value=len(details))


def publish_message(old: MessageItem | None, new: MessageItem | None, *, bus: OutcomeBus) -> None:
    details = message_outcomes(old, new)
    if not details:
        return
    bus.put(as_events(details))
    for detail in details:
        logger.info(
            "outcome published",
            detail_type=type(detail).__name__,
            event_id=detail.event_id,
            message_reference=detail.message_reference,
            message_to_citizen_id=detail.message_to_citizen_id,
        )
    metrics.add_metric(name="OutcomeEventsPublished", unit=MetricUnit.Count, value=len(details))
