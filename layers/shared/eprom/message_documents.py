"""MessageDocumentsBucket (S3): the PDFs upstream puts there for letters, checked before a letter is sent and then
read as the request to ePROM goes out (document_collection.LetterBody), never whole in memory.

A document is sent only when it is whole: at most MAX_DOCUMENT_BYTES, starting with %PDF- and ending with %%EOF
(only white-space after it). Each read after the check asks for the same object (If-Match its ETag), so a document
replaced meanwhile fails the request instead of sending something unchecked.

The sender's role may read documents/* and may not list the bucket, so S3 answers 403, not 404, for a key that is
not there (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html): both mean "no such document".
"""

from collections.abc import Iterator
from dataclasses import dataclass

from botocore.exceptions import ClientError

from eprom.aws_clients import lazy_client
from eprom.citizen_messages import LetterDocument
from eprom.document_collection import DocumentContent
from eprom.eprom_client import PDF_END, PDF_SIGNATURE, PDF_WHITESPACE

# ePROM takes PDFs of "up to 30MB" (Hemit's page; read as MiB, the larger: a PDF between the two readings that ePROM
# refuses is refused by ePROM's own 400 instead).
MAX_DOCUMENT_BYTES = 30 * 1024 * 1024
_TAIL_BYTES = 1024  # readers look for %%EOF in the last 1024 bytes
_READ_BYTES = 3 * 64 * 1024
_MISSING = frozenset({"403", "404", "AccessDenied", "NoSuchKey", "NotFound"})


class DocumentRefused(Exception):
    """The document cannot be sent (missing, not a whole PDF, too large): the reason names it by the message's field,
    never by its content."""


@dataclass(frozen=True)
class CheckedDocument:
    key: str
    size: int
    etag: str


class MessageDocuments:
    _client = lazy_client("s3")  # made at the first letter

    def __init__(self, bucket: str, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> None:
        self._bucket = bucket
        self._max_bytes = max_bytes

    def check(self, field: str, document: LetterDocument) -> CheckedDocument:
        """The document, when it is whole; DocumentRefused (naming `field`, e.g. documents[1]) when it is not there or
        not a whole PDF. Any other failure (S3, throttling) raises as it is: the letter is tried again later."""
        try:
            head = self._client.head_object(Bucket=self._bucket, Key=document.key)
        except ClientError as error:
            if error.response["Error"]["Code"] in _MISSING:
                raise DocumentRefused(f"{field}: no such document in MessageDocumentsBucket") from None
            raise
        checked = CheckedDocument(document.key, int(head["ContentLength"]), head["ETag"])
        if checked.size > self._max_bytes:
            raise DocumentRefused(f"{field}: {checked.size} bytes, more than the {self._max_bytes} ePROM takes")
        if checked.size < len(PDF_SIGNATURE) + len(PDF_END):
            raise DocumentRefused(f"{field}: not a PDF ({checked.size} bytes)")
        if self._range(checked, f"bytes=0-{len(PDF_SIGNATURE) - 1}") != PDF_SIGNATURE:
            raise DocumentRefused(f"{field}: not a PDF (it does not start with %PDF-)")
        if not self._range(checked, f"bytes=-{_TAIL_BYTES}").rstrip(PDF_WHITESPACE).endswith(PDF_END):
            raise DocumentRefused(f"{field}: not a whole PDF (it does not end with %%EOF)")
        return checked

    def content(self, checked: CheckedDocument, title: str) -> DocumentContent:
        """The checked document as the letter's request reads it."""
        name = checked.key.rsplit("/", 1)[-1]
        return DocumentContent(
            title=title,
            file_name=name if name.lower().endswith(".pdf") else f"{name}.pdf",
            size=checked.size,
            read=lambda: self._read(checked),
        )

    def _read(self, checked: CheckedDocument) -> Iterator[bytes]:
        body = self._client.get_object(Bucket=self._bucket, Key=checked.key, IfMatch=checked.etag)["Body"]
        try:
            yield from body.iter_chunks(_READ_BYTES)
        finally:
            body.close()

    def _range(self, checked: CheckedDocument, byte_range: str) -> bytes:
        answer = self._client.get_object(Bucket=self._bucket, Key=checked.key, Range=byte_range, IfMatch=checked.etag)
        content: bytes = answer["Body"].read()
        return content
