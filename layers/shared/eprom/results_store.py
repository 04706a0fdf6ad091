"""FormResultsBucket (S3): a form return's answers as `answers/{formOrderId}.json` and the signed document as
`signed/{formOrderId}.pdf` (architecture.md, "Results to upstream").

The bucket is versioned. Writing the same content again (ePROM re-sends callbacks until acknowledged) returns the
version already stored instead of adding an identical one (for answers: the same as ANY stored version, so returns
A, B, A are two versions); different content becomes a new version.
"""

import dataclasses
import hashlib
from typing import Any, BinaryIO, ClassVar

from botocore.exceptions import ClientError

from eprom.aws_clients import lazy_client


def _camel(name: str) -> str:
    first, *others = name.split("_")
    return first + "".join(other.title() for other in others)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResultPointer:
    """Where a stored result is in FormResultsBucket, and what it is: the item's `answers` and `signedDocument`
    attributes (no `versionId` when the bucket gave none).

    A dataclass, not a pydantic model: the signed-document fetcher, which only stores one, imports no pydantic
    (docs/performance.md). Inside the item's model (eprom.order_item.OrderItem) pydantic reads and writes it by the
    item's attribute names, as `__pydantic_config__` says (the attribute pydantic's own `with_config` sets)."""

    key: str
    version_id: str | None = None
    sha256: str
    bytes: int

    __pydantic_config__: ClassVar[dict[str, Any]] = {
        "alias_generator": _camel,
        "validate_by_name": True,
        "validate_by_alias": True,
        "serialize_by_alias": True,
    }

    def as_attribute(self) -> dict[str, Any]:
        """As the item holds it: {"key": ..., "versionId": ..., "sha256": ..., "bytes": ...}."""
        return {_camel(name): value for name, value in dataclasses.asdict(self).items() if value is not None}


class ResultsStore:
    client = lazy_client("s3")  # made at the first form return

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def put_answers(self, form_order_id: str, document: bytes) -> ResultPointer:
        return self._put(f"answers/{form_order_id}.json", document, "application/json", any_version=True)

    def put_signed_document(self, form_order_id: str, pdf: BinaryIO, *, sha256: str, size: int) -> ResultPointer:
        """`pdf`: a file holding the whole, checked document (tens of MB: never read into memory)."""
        pdf.seek(0)
        return self._put(f"signed/{form_order_id}.pdf", pdf, "application/pdf", sha256=sha256, size=size)

    def _put(
        self,
        key: str,
        content: bytes | BinaryIO,
        content_type: str,
        *,
        sha256: str = "",
        size: int = 0,
        any_version: bool = False,
    ) -> ResultPointer:
        """`content` as bytes, or as a file whose `sha256` and `size` the caller took while writing it."""
        if isinstance(content, bytes):
            sha256, size = hashlib.sha256(content).hexdigest(), len(content)
        request = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": content,
            "ContentType": content_type,
            "Metadata": {"sha256": sha256},
        }
        try:
            answer = self.client.put_object(**request, IfNoneMatch="*")  # only when nothing is stored under the key
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("PreconditionFailed", "412"):
                raise
            stored = self._stored_version(key, sha256, size) if any_version else self._stored(key)
            if stored and stored.sha256 == sha256:
                return stored  # a replay: the version already there
            if not isinstance(content, bytes):
                content.seek(0)  # a file is sent from where it stands
            answer = self.client.put_object(**request)  # other content: a new version beside the first
        return ResultPointer(key=key, version_id=answer.get("VersionId"), sha256=sha256, bytes=size)

    def _stored(self, key: str) -> ResultPointer | None:
        # Only for a key the conditional write found: a read of a missing key answers 403, not 404, without
        # s3:ListBucket (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html).
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return None  # deleted since the write found it
            raise
        return ResultPointer(
            key=key,
            version_id=head.get("VersionId"),
            sha256=head.get("Metadata", {}).get("sha256", ""),
            bytes=head["ContentLength"],
        )

    def _stored_version(self, key: str, sha256: str, size: int) -> ResultPointer | None:
        """The version of `key` with this content, if any. Only versions of the same size are read (their ETag is
        no digest of the content under SSE-KMS: https://docs.aws.amazon.com/AmazonS3/latest/API/API_Object.html).
        Needs s3:ListBucketVersions, and s3:GetObjectVersion to read a version's metadata:
        https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectVersions.html"""
        for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key):
            for version in page.get("Versions", []):
                if version["Key"] != key or version["Size"] != size:
                    continue
                head = self.client.head_object(Bucket=self.bucket, Key=key, VersionId=version["VersionId"])
                if head.get("Metadata", {}).get("sha256") == sha256:
                    return ResultPointer(key=key, version_id=version["VersionId"], sha256=sha256, bytes=size)
        return None
