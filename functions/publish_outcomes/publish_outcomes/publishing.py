"""One stream record of FormOrdersTable: the outcome events it means, on OutcomeBus, and a signed-document job
for a form return that has one. A failure raises, and the record is retried with the same event ids."""

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from eprom.outcomes import FormReturned, OutcomeBus, SignedDocumentJob, item_outcomes

from publish_outcomes.jobs import SignedDocumentQueue

logger = Logger(child=True)
metrics = Metrics()


def publish(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    *,
    bus: OutcomeBus,
    jobs: SignedDocumentQueue,
    bucket: str,
) -> None:
    details = item_outcomes(old, new, bucket=bucket)
    if not details:
        return
    bus.put(details)
    for detail in details:
        if isinstance(detail, FormReturned) and detail.signed_document_expected and new:
            jobs.request(SignedDocumentJob(form_order_id=detail.form_order_id, signed_form_id=new["signedFormId"]))
    for detail in details:
        logger.info("outcome published", detail_type=type(detail).__name__, event_id=detail.event_id,
                    form_order_id=detail.form_order_id, order_reference=detail.order_reference)  # fmt: skip
    metrics.add_metric(name="OutcomeEventsPublished", unit=MetricUnit.Count, value=len(details))
