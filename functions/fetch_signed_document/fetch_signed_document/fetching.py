"""One signed-document job: download the PDF from ePROM, store it beside the answers, point the item at it; and
what becomes of the job (a Verdict, carried out by eprom.retrying_consumer).

The item decides first: a job whose item is gone is not downloaded (the document would outlive the order's
retention), and one whose signedFormId none of its order's form returns carried is given up (InvalidJob): one
person's document is never stored under another's order. Idempotent: a document already stored is not downloaded
again. A failure is fetched again later with backoff; a 404 for longer than the not-found window, or any failure for
longer than the retry window, gives the job up to SignedDocumentDeadLetterQueue with a reason. A document above the
size limit is given up at once (DocumentTooLarge): its size will not change, only the limit can. One that is cut
short, not a PDF, or too slow for the invocation's time is fetched again: a broken connection or a proxy's page
passes.
"""

import dataclasses
import tempfile
import time
from dataclasses import dataclass

from eprom.eprom_client import Document, EpromClient, NotFound, Refused, TooLarge, Transient
from eprom.order_store import OrderStore
from eprom.queues import SignedDocumentJob, SqsRecord
from eprom.results_store import ResultPointer, ResultsStore, SignedDocumentPointer
from eprom.retrying_consumer import Done, Refuse, RetryLater, Verdict


@dataclass(frozen=True)
class FetchPolicy:
    not_found_window_seconds: float
    read_timeout_seconds: float
    max_bytes: int
    time_reserve_seconds: float  # left for the upload and the item when reading stops


@dataclass(frozen=True)
class SignedDocumentFetcher:
    eprom: EpromClient
    results: ResultsStore
    store: OrderStore
    policy: FetchPolicy

    def handle(self, record: SqsRecord, ends_at: float) -> Verdict:
        """The job's verdict: the document downloaded and stored, or why not. `ends_at`: epoch seconds when the
        invocation ends."""
        try:
            job = SignedDocumentJob.from_json(record.body)
        except ValueError:
            return Refuse("not a signed-document job (formOrderId and signedFormId GUIDs)", "InvalidJob")
        form_order_id = str(job.form_order_id)
        keys = {"form_order_id": form_order_id}
        # Done before? The item says so (a strongly consistent read). Not a HeadObject of the key: S3 answers a read
        # of a missing key with 403, not 404, to a role without s3:ListBucket on the bucket, as ours is
        # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html). A PDF stored by a job that failed
        # before it set the item is found by ResultsStore's conditional write: downloaded again, stored once.
        known = self.store.signed_documents(form_order_id)
        if known is None:  # not downloaded: it would be kept past the order's retention
            return Done("signed document not fetched: its order item is gone (retention ended)", log_keys=keys)
        signed_form_id = str(job.signed_form_id)
        if signed_form_id not in known.carried:  # another order's document must not be stored under this one
            return Refuse("the job's signedFormId is none its order's form returns carried", "InvalidJob")
        if signed_form_id in known.stored:
            return Done("signed document already stored", log_keys=keys)
        return self._fetch(record, form_order_id, signed_form_id, later=signed_form_id != known.first, ends_at=ends_at)

    def _fetch(
        self, record: SqsRecord, form_order_id: str, signed_form_id: str, *, later: bool, ends_at: float
    ) -> Verdict:
        """Download the document, store it and point its order's item at it (a later return's when `later`)."""
        keys, policy = {"form_order_id": form_order_id}, self.policy
        deadline = time.monotonic() + (ends_at - time.time()) - policy.time_reserve_seconds
        with tempfile.TemporaryFile() as pdf:  # in /tmp; gone when closed
            match self.eprom.fetch_document(signed_form_id, pdf, read_timeout=policy.read_timeout_seconds,
                                            max_bytes=policy.max_bytes, deadline=deadline):  # fmt: skip
                case Document(sha256, size):
                    document = self.results.put_signed_document(form_order_id, pdf, sha256=sha256, size=size)
                    if self._record(form_order_id, signed_form_id, document, later=later):
                        return Done("signed document stored", count="SignedDocumentsStored",
                                    log_keys=keys | {"bytes": str(size)})  # fmt: skip
                    return Done("signed document stored, but its order item is gone (retention ended)", log_keys=keys)
                case Refused(reason):
                    return Refuse(reason, "RefusedByEprom")
                case TooLarge(reason):
                    return Refuse(f"{reason} (SignedDocumentMaxBytes)", "DocumentTooLarge")
                case NotFound(reason) if (age := record.age_seconds()) >= policy.not_found_window_seconds:
                    return Refuse(f"{reason}: still 404 after {age / 3600:.0f} h", "DocumentNotFound")
                case NotFound(reason):
                    return RetryLater(reason)
                case Transient(reason, retry_after_seconds):
                    return RetryLater(reason, retry_after_seconds)
        raise AssertionError("unreachable: fetch_document returns one of the cases above")

    def _record(self, form_order_id: str, signed_form_id: str, document: ResultPointer, *, later: bool) -> bool:
        """The stored document on its order's item (the first return's, or a later return's): False if the item is
        gone."""
        if later:
            pointer = SignedDocumentPointer(signed_form_id=signed_form_id, **dataclasses.asdict(document))
            return self.store.record_later_signed_document(form_order_id, pointer)
        return self.store.record_signed_document(form_order_id, document)
