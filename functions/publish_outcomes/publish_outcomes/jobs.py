"""SignedDocumentQueue: one job per form return with a signed document, for FetchSignedDocumentFunction."""

from typing import Any

from eprom.aws_clients import aws_client
from eprom.outcomes import SignedDocumentJob


class SignedDocumentQueue:
    def __init__(self, queue_url: str, client: Any = None) -> None:
        self._queue_url = queue_url
        self._client = client or aws_client("sqs")

    def request(self, job: SignedDocumentJob) -> None:
        self._client.send_message(QueueUrl=self._queue_url, MessageBody=job.model_dump_json(by_alias=True))
