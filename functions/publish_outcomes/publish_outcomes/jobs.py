"""SignedDocumentQueue: one job per form return with a signed document, for FetchSignedDocumentFunction."""

from functools import cached_property
from typing import Any

from eprom.aws_clients import aws_client
from eprom.outcomes import SignedDocumentJob


class SignedDocumentQueue:
    def __init__(self, queue_url: str) -> None:
        self._queue_url = queue_url

    @cached_property
    def _client(self) -> Any:  # made when first needed: only forms that must be signed have jobs (cold start)
        return aws_client("sqs")

    def request(self, job: SignedDocumentJob) -> None:
        self._client.send_message(QueueUrl=self._queue_url, MessageBody=job.model_dump_json(by_alias=True))
