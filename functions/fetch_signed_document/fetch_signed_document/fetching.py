"""One signed-document job: download the PDF from ePROM, store it beside the answers, point the item at it.

Idempotent: a document already stored is not downloaded again. A failure is retried later with backoff (the
function sets the message's next delivery); a 404 for longer than NOT_FOUND_WINDOW, or any failure for longer
than RETRY_WINDOW, gives the job up to SignedDocumentDeadLetterQueue with a reason. A document above the size
limit is given up at once (DocumentTooLarge): its size will not change, only the limit can. One that is cut short,
not a PDF, or too slow for the invocation's time is retried: a broken connection or a proxy's page passes.
"""

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from eprom.eprom_client import Document, EpromClient, NotFound, Refused, TooLarge, Transient
from eprom.order_store import OrderStore
from eprom.queues import DeadLetterQueue, SignedDocumentJob, backoff_seconds
from eprom.results_store import ResultsStore
from pydantic import ValidationError

logger = Logger(child=True)
metrics = Metrics()


@dataclass(frozen=True)
class FetchPolicy:
    base_delay_seconds: int
    max_delay_seconds: int
    window_seconds: float
    not_found_window_seconds: float
    read_timeout_seconds: float
    max_bytes: int


class FetchLater(Exception):
    """The job stays on the queue; its next delivery has been set."""


def fetch_signed_document(
    body: str,
    *,
    sent_at: datetime,
    receive_count: int,
    eprom: EpromClient,
    results: ResultsStore,
    store: OrderStore,
    dead_letters: DeadLetterQueue,
    policy: FetchPolicy,
    retry_later: Callable[[int], None],
    deadline: float,
) -> None:
    """`deadline`: time.monotonic() by which the download must have ended."""
    try:
        job = SignedDocumentJob.model_validate_json(body)
    except ValidationError:
        dead_letters.send(body, "not a signed-document job (formOrderId and signedFormId GUIDs)", "InvalidJob")
        return
    form_order_id = str(job.form_order_id)
    logger.append_keys(form_order_id=form_order_id)
    # Done before? The item says so (a strongly consistent read). Not a HeadObject of the key: S3 answers a read of
    # a missing key with 403, not 404, to a role without s3:ListBucket on the bucket, as ours is
    # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html). A PDF stored by a job that failed
    # before it set the item is found by ResultsStore's conditional write: downloaded again, stored once.
    item = store.item(form_order_id)
    if item is not None and item.signed_document is not None:
        logger.info("signed document already stored")
        return
    age_seconds = (datetime.now(UTC) - sent_at).total_seconds()
    with tempfile.TemporaryFile() as pdf:  # in /tmp; gone when closed
        match eprom.fetch_document(str(job.signed_form_id), pdf, read_timeout=policy.read_timeout_seconds,
                                   max_bytes=policy.max_bytes, deadline=deadline):  # fmt: skip
            case Document(sha256, size):
                stored = results.put_signed_document(form_order_id, pdf, sha256=sha256, size=size)
            case Refused(reason):
                _give_up(body, reason, "RefusedByEprom", dead_letters)
                return
            case TooLarge(reason):
                _give_up(body, f"{reason} (SignedDocumentMaxBytes)", "DocumentTooLarge", dead_letters)
                return
            case NotFound(reason) if age_seconds >= policy.not_found_window_seconds:
                _give_up(body, f"{reason}: still 404 after {age_seconds / 3600:.0f} h", "DocumentNotFound",
                         dead_letters)  # fmt: skip
                return
            case Transient(reason) if age_seconds >= policy.window_seconds:
                _give_up(body, f"retries exhausted after {age_seconds / 3600:.0f} h; last error: {reason}",
                         "RetriesExhausted", dead_letters)  # fmt: skip
                return
            case NotFound() | Transient() as failure:
                _fetch_later(failure, receive_count, policy, retry_later)
    if store.record_signed_document(form_order_id, stored):
        logger.info("signed document stored", bytes=stored.bytes)
        metrics.add_metric(name="SignedDocumentsStored", unit=MetricUnit.Count, value=1)
    else:
        logger.warning("signed document stored, but its order item is gone (retention ended)")


def _fetch_later(
    failure: NotFound | Transient, receive_count: int, policy: FetchPolicy, retry_later: Callable[[int], None]
) -> None:
    retry_after = failure.retry_after_seconds if isinstance(failure, Transient) else None
    delay = backoff_seconds(
        receive_count, base=policy.base_delay_seconds, cap=policy.max_delay_seconds, retry_after=retry_after
    )
    try:
        retry_later(delay)
    except Exception as error:  # the queue's own visibility timeout then applies: fetched again all the same
        logger.warning("could not set the retry delay", error_type=type(error).__name__)
    logger.warning("signed document will be fetched again", reason=failure.reason, retry_in_seconds=delay)
    metrics.add_metric(name="SignedDocumentsRetried", unit=MetricUnit.Count, value=1)
    raise FetchLater(failure.reason)


def _give_up(body: str, reason: str, rejection_class: str, dead_letters: DeadLetterQueue) -> None:
    dead_letters.send(body, reason, rejection_class)
    logger.error("signed document given up", rejection_reason=reason, rejection_class=rejection_class)
    metrics.add_metric(name="SignedDocumentsGivenUp", unit=MetricUnit.Count, value=1)
