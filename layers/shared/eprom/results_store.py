"""FormResultsBucket (S3): a form return's answers as `answers/{formOrderId}.json` and the signed document as
`signed/{formOrderId}.pdf` (architecture.md, "Results to upstream"); for privacy settings, the lists of a
definition's residents (`privacy/lists/`) and the changes ePROM forwards from Helsenorge (`privacy/changes/`).

The bucket is versioned. Writing the same content again (ePROM re-sends callbacks until acknowledged) returns the
version already stored instead of adding an identical one (for answers: the same as ANY stored version, so returns
A, B, A are two versions); different content becomes a new version.
"""

import dataclasses
import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Final

from botocore.exceptions import ClientError

from eprom.aws_clients import lazy_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, PutObjectRequestTypeDef


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


@dataclasses.dataclass(frozen=True, kw_only=True)
class SignedDocumentPointer(ResultPointer):
    """A signed document of a later form return that carried another signedFormId than the item's first
    (`laterSignedDocuments`): another version of the same key."""

    signed_form_id: str


def as_guid(value: object) -> str | None:
    """A GUID as Python writes it (lower case, hyphens), whatever way ePROM wrote it; None when it is not one."""
    try:
        return str(uuid.UUID(str(value))) if value is not None else None
    except ValueError:
        return None


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
        request: PutObjectRequestTypeDef = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": content,
            "ContentType": content_type,
            "Metadata": {"sha256": sha256},
        }
        try:
            # only when nothing is stored under the key
            answer = self.client.put_object(**(request | {"IfNoneMatch": "*"}))
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

    # --- Privacy settings (PVK) --------------------------------------------------------------------------------------

    def put_privacy_change(self, pvk_id: str, document: bytes, *, received_at: str) -> "StoredChange":
        """A change ePROM forwarded, under a key made of its content: the same change again finds it stored (with the
        time it was first received), never a second object or version. HeadObject needs s3:GetObject."""
        sha256 = hashlib.sha256(document).hexdigest()
        key = f"privacy/changes/{pvk_id}/{sha256}.json"
        metadata = {"sha256": sha256, "received-at": received_at}
        try:
            answer = self.client.put_object(Bucket=self.bucket, Key=key, Body=document, ContentType="application/json",
                                            Metadata=metadata, IfNoneMatch="*")  # fmt: skip
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("PreconditionFailed", "412"):
                raise
            head = self.client.head_object(Bucket=self.bucket, Key=key)  # this very content: the key says so
            pointer = ResultPointer(key=key, version_id=head.get("VersionId"), sha256=sha256, bytes=len(document))
            return StoredChange(pointer, head.get("Metadata", {}).get("received-at", received_at))
        pointer = ResultPointer(key=key, version_id=answer.get("VersionId"), sha256=sha256, bytes=len(document))
        return StoredChange(pointer, received_at)

    @contextmanager
    def streamed(self, key: str, content_type: str) -> Iterator["StreamedObject"]:
        """An object written as it is made (a list of a whole population: never whole in memory). Aborted when the
        block ends without `complete()`: nothing half-written is left."""
        upload = StreamedObject(self.client, self.bucket, key, content_type)
        try:
            yield upload
        finally:
            if upload.pointer is None:
                upload.abort()


@dataclass(frozen=True)
class StoredChange:
    pointer: ResultPointer
    received_at: str  # ISO 8601 UTC: when it was first stored


# S3 takes at most 10,000 parts, each at least 5 MiB but the last: 8 MiB parts make objects of up to 80 GB.
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
PART_BYTES = 8 * 1024 * 1024
_PART_CHECKSUMS: Final = ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumCRC64NVME", "ChecksumSHA1", "ChecksumSHA256")


class StreamedObject:
    """A multipart upload with one part in memory at a time, its sha256 and size taken as it is written.

    Written by hand rather than with boto3's upload_fileobj: that reads a file object (a generator would need a file
    adaptor), buffers up to max_concurrency parts at once on threads of its own, and still has no sha256 of the whole
    to give. Here the memory is one part, nothing runs beside the caller, and an abort is explicit. The permissions:
    s3:PutObject covers creating, uploading parts and completing; s3:AbortMultipartUpload the abort; with SSE-KMS
    kms:GenerateDataKey and kms:Decrypt (S3 reads the encrypted parts to complete the object):
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions
    """

    def __init__(self, client: "S3Client", bucket: str, key: str, content_type: str) -> None:
        self._client, self._bucket, self.key = client, bucket, key
        self._upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)["UploadId"]
        self._buffer = bytearray()
        self._parts: list[CompletedPartTypeDef] = []
        self._digest = hashlib.sha256()
        self.bytes = 0
        self.pointer: ResultPointer | None = None

    def write(self, data: bytes) -> None:
        self._buffer += data
        self._digest.update(data)
        self.bytes += len(data)
        if len(self._buffer) >= PART_BYTES:
            self._send_part()

    def complete(self) -> ResultPointer:
        self._send_part()  # the last part, however small: an empty one for an empty object (S3 needs a part)
        answer = self._client.complete_multipart_upload(
            Bucket=self._bucket, Key=self.key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
        )
        self.pointer = ResultPointer(
            key=self.key, version_id=answer.get("VersionId"), sha256=self._digest.hexdigest(), bytes=self.bytes
        )
        return self.pointer

    def abort(self) -> None:
        self._client.abort_multipart_upload(Bucket=self._bucket, Key=self.key, UploadId=self._upload_id)

    def _send_part(self) -> None:
        number = len(self._parts) + 1
        answer = self._client.upload_part(
            Bucket=self._bucket,
            Key=self.key,
            UploadId=self._upload_id,
            PartNumber=number,
            # botocore sends a bytearray as it sends bytes (no copy of the part); the stubs name bytes only
            Body=self._buffer,  # type: ignore[arg-type]
        )
        # The SDK sends a checksum of each part (botocore's default); the completion names it for its part.
        part: CompletedPartTypeDef = {"ETag": answer["ETag"], "PartNumber": number}
        for name in _PART_CHECKSUMS:
            if answer.get(name):
                part[name] = answer[name]
        self._parts.append(part)
        self._buffer.clear()
