"""One signed-document job: download the PDF from ePROM, store it beside the answers, point the item at it.

The item decides first: a job whose item is gone is not downloaded (the document would outlive the order's
retention), and one whose signedFormId none of its order's form returns carried is given up (InvalidJob): one
person's document is never stored under another's order. Idempotent: a document already stored is not downloaded
again. A failure is fetched again later with backoff (the
message's next delivery is set); a 404 for longer than the not-found window, or any failure for longer than the
retry window, gives the job up to SignedDocumentDeadLetterQueue with a reason. A document above the size limit is
given up at once (DocumentTooLarge): its size will not change, only the limit can. One that is cut short, not a
PDF, or too slow for the invocation's time is fetched again: a broken connection or a proxy's page passes.
"""

import tempfile
from dataclasses import dataclass

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from eprom.eprom_client import Document, EpromClient, NotFound, Refused, TooLarge, Transient
from eprom.order_item import ResultPointer, SignedDocumentPointer, as_guid
from eprom.order_store import OrderStore
from eprom.queues import DeadLetterQueue, QueueVisibility, SignedDocumentJob, SqsRecord, backoff_seconds
from eprom.results_store import ResultsStore
from pydantic import ValidationError

logger = Logger(child=True)
metrics = Metrics()


@dataclass(frozen=True)
class DocumentStored:
    document: ResultPointer
    item_found: bool  # False: the item's retention ended before the document came


@dataclass(frozen=True)
class AlreadyStored:
    """The item points at its signed document: a job delivered again, or a duplicate."""


@dataclass(frozen=True)
class NotNeeded:
    """Nothing to fetch the document for: the item is gone (its retention ended)."""


@dataclass(frozen=True)
class GivenUp:
    reason: str
    rejection_class: str


@dataclass(frozen=True)
class FetchLater:
    reason: str
    retry_after_seconds: float | None = None  # ePROM's Retry-After, when it sent one


Outcome = DocumentStored | AlreadyStored | NotNeeded | GivenUp | FetchLater


@dataclass(frozen=True)
class FetchPolicy:
    base_delay_seconds: int
    max_delay_seconds: int
    window_seconds: float
    not_found_window_seconds: float
    read_timeout_seconds: float
    max_bytes: int


@dataclass(frozen=True)
class SignedDocumentFetcher:
    eprom: EpromClient
    results: ResultsStore
    store: OrderStore
    dead_letters: DeadLetterQueue
    job_queue: QueueVisibility
    policy: FetchPolicy

    def handle(self, record: SqsRecord, deadline: float) -> Outcome:
        """The job's outcome, carried out. `deadline`: time.monotonic() by which the download must have ended."""
        try:
            try:
                outcome = self._outcome(record, deadline)
                self._carry_out(record, outcome)
                return outcome
            except Exception as error:  # the type only: a message could quote what it failed on
                logger.error("signed-document job failed", error_type=type(error).__name__)
                return self._after_failure(record, f"unexpected {type(error).__name__}")
        finally:
            logger.remove_keys(["form_order_id"])

    def _after_failure(self, record: SqsRecord, reason: str) -> Outcome:
        """A failure on the way (an AWS call, a bug) is fetched again later like a transient one, and given up when
        the retry window is spent: with the backoff at its cap, SQS would otherwise drop the job at the end of its
        retention (14 days) long before maxReceiveCount moved it to the DLQ."""
        age_seconds = record.age_seconds()
        outcome: Outcome = FetchLater(reason)
        if age_seconds >= self.policy.window_seconds:
            outcome = _retries_exhausted(age_seconds, reason)
        try:
            self._carry_out(record, outcome)
        except Exception:  # the DLQ or the queue failed as well: SQS delivers the job again after its visibility
            return FetchLater(reason)
        return outcome

    def _outcome(self, record: SqsRecord, deadline: float) -> Outcome:
        """What becomes of the job: the document downloaded and stored, or why not (the DLQ and the next delivery
        are left to _carry_out)."""
        try:
            job = SignedDocumentJob.model_validate_json(record.body)
        except ValidationError:
            return GivenUp("not a signed-document job (formOrderId and signedFormId GUIDs)", "InvalidJob")
        form_order_id = str(job.form_order_id)
        logger.append_keys(form_order_id=form_order_id)
        # Done before? The item says so (a strongly consistent read). Not a HeadObject of the key: S3 answers a read
        # of a missing key with 403, not 404, to a role without s3:ListBucket on the bucket, as ours is
        # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html). A PDF stored by a job that failed
        # before it set the item is found by ResultsStore's conditional write: downloaded again, stored once.
        item = self.store.item(form_order_id)
        if item is None:  # not downloaded: it would be kept past the order's retention
            return NotNeeded()
        signed_form_id = str(job.signed_form_id)
        if signed_form_id not in item.signed_form_ids():  # another order's document must not be stored under this one
            return GivenUp("the job's signedFormId is none its order's form returns carried", "InvalidJob")
        if item.signed_document_of(signed_form_id) is not None:
            return AlreadyStored()
        age_seconds = record.age_seconds()
        policy = self.policy
        with tempfile.TemporaryFile() as pdf:  # in /tmp; gone when closed
            match self.eprom.fetch_document(signed_form_id, pdf, read_timeout=policy.read_timeout_seconds,
                                            max_bytes=policy.max_bytes, deadline=deadline):  # fmt: skip
                case Document(sha256, size):
                    document = self.results.put_signed_document(form_order_id, pdf, sha256=sha256, size=size)
                    if signed_form_id in item.signed_form_ids() - {as_guid(item.signed_form_id)}:  # a later return's
                        later = SignedDocumentPointer(signed_form_id=signed_form_id, **document.model_dump())
                        return DocumentStored(document, self.store.record_later_signed_document(form_order_id, later))
                    return DocumentStored(document, self.store.record_signed_document(form_order_id, document))
                case Refused(reason):
                    return GivenUp(reason, "RefusedByEprom")
                case TooLarge(reason):
                    return GivenUp(f"{reason} (SignedDocumentMaxBytes)", "DocumentTooLarge")
                case NotFound(reason) if age_seconds >= policy.not_found_window_seconds:
                    return GivenUp(f"{reason}: still 404 after {age_seconds / 3600:.0f} h", "DocumentNotFound")
                case Transient(reason) if age_seconds >= policy.window_seconds:
                    return _retries_exhausted(age_seconds, reason)
                case Transient(reason, retry_after_seconds):
                    return FetchLater(reason, retry_after_seconds)
                case NotFound(reason):
                    return FetchLater(reason)
        raise AssertionError("unreachable: fetch_document returns one of the cases above")

    def _carry_out(self, record: SqsRecord, outcome: Outcome) -> None:
        """Logged and counted; given-up jobs to the DLQ, jobs to fetch later their next delivery set."""
        match outcome:
            case DocumentStored(document, item_found=True):
                logger.info("signed document stored", bytes=document.bytes)
                metrics.add_metric(name="SignedDocumentsStored", unit=MetricUnit.Count, value=1)
            case DocumentStored():
                logger.warning("signed document stored, but its order item is gone (retention ended)")
            case AlreadyStored():
                logger.info("signed document already stored")
            case NotNeeded():
                logger.info("signed document not fetched: its order item is gone (retention ended)")
            case GivenUp(reason, rejection_class):
                self.dead_letters.send(record.body, reason, rejection_class, attributes=record.message_attributes)
                logger.error("signed document given up", rejection_reason=reason, rejection_class=rejection_class)
                metrics.add_metric(name="SignedDocumentsGivenUp", unit=MetricUnit.Count, value=1)
            case FetchLater():
                self._fetch_later(record, outcome)

    def _fetch_later(self, record: SqsRecord, fetch_later: FetchLater) -> None:
        policy = self.policy
        delay = backoff_seconds(record.receive_count, base=policy.base_delay_seconds, cap=policy.max_delay_seconds,
                                retry_after=fetch_later.retry_after_seconds)  # fmt: skip
        try:
            self.job_queue.retry_after(record.event_source_arn, record.receipt_handle, delay)
        except Exception as error:  # the queue's own visibility timeout then applies: fetched again all the same
            logger.warning("could not set the retry delay", error_type=type(error).__name__)
        logger.warning("signed document will be fetched again", reason=fetch_later.reason, retry_in_seconds=delay)
        metrics.add_metric(name="SignedDocumentsRetried", unit=MetricUnit.Count, value=1)


def _retries_exhausted(age_seconds: float, last_error: str) -> GivenUp:
    return GivenUp(f"retries exhausted after {age_seconds / 3600:.0f} h; last error: {last_error}", "RetriesExhausted")
