"""FetchSignedDocumentFunction's configuration (eprom.settings: read once from the environment at start)."""

from dataclasses import dataclass

from eprom.queues import MAX_RETRY_DELAY_SECONDS
from eprom.settings import EpromApiSettings, setting


@dataclass(frozen=True, kw_only=True)
class FetcherSettings(EpromApiSettings):
    form_orders_table: str = setting(non_empty=True)
    form_results_bucket: str = setting(non_empty=True)
    signed_document_dead_letter_queue_url: str = setting(non_empty=True)
    # ePROM keeps a signed document at least 30 days: retry over days, not minutes (5 min doubling to the longest
    # delay SQS accepts, 11 h 45 min).
    document_retry_base_delay_seconds: int = setting(300, ge=1)
    document_retry_max_delay_seconds: int = setting(MAX_RETRY_DELAY_SECONDS, ge=1, le=MAX_RETRY_DELAY_SECONDS)
    document_retry_window_hours: float = setting(7 * 24, gt=0)
    # A 404 may mean "not made yet": retried this long after the job was created before giving up.
    document_not_found_window_hours: float = setting(48, gt=0)
    # A document is streamed through a file in /tmp and refused above this size. /tmp is 512 MB unless the function
    # sets EphemeralStorage: https://docs.aws.amazon.com/lambda/latest/dg/API_EphemeralStorage.html . One PutObject
    # takes up to 5 GB: https://docs.aws.amazon.com/AmazonS3/latest/userguide/upload-objects.html
    signed_document_max_bytes: int = setting(50 * 1024 * 1024, ge=1024, le=400 * 1024 * 1024)
    # Reading stops this long before the invocation's time runs out: left for the upload to S3 and the writes after
    # it, so a slow document is retried by the backoff instead of the function being killed mid-job.
    document_time_reserve_seconds: float = setting(15, gt=0)
