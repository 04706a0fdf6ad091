"""ePROM's `documentCollection`: the one place its shape is written down, and the letter's request body that
streams each PDF into it.

What is known (Hemit's page "Sende melding til innbygger v2", updated 2023-10-18, and the .NET example on it; the
same in Hemit's public documentation repository, github.com/HemitSystemutvikling/ePROM): the request member is
`documentCollection`, an object of the class `DocumentCollection` of Hemit's NuGet package Hemit.ePROM.Integration
(earlier Hemit.Proms.Integration); it holds a main document (ePROM answers 400 "Main document in MessageToCitizen
is missing" without one); its documents are PDFs of at most 30 MB; the request is JSON.

What is assumed (published nowhere we can reach: Hemit's Swagger is on its own network, and the NuGet package's
feed needs credentials): the main document is the member `mainDocument` and the others the list `attachments`;
each document is {`title`, `fileName`, `mimeType`, `content`}, `content` the PDF's bytes in base64 (how .NET's JSON
serialisers read and write a byte[]). ASP.NET's model binding ignores members it does not know, so a name too many
costs nothing; a name wrong or missing is "Main document ... is missing". `eprom verify --letter <pdf>` sends a
letter to Hemit's verification person in ePROM's test environment and checks that ePROM takes it and calls back
Sent: that is the check of these assumptions (docs/eprom-contract.md §7).
"""

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

PDF_MIME_TYPE = "application/pdf"
_CHUNK_BYTES = 3 * 64 * 1024  # a multiple of 3: base64 of each chunk joins without padding in between


@dataclass(frozen=True)
class DocumentContent:
    """A PDF to send: its title, file name and size, and how to read it (from the start, each time: a request is
    sent again after a 429)."""

    title: str
    file_name: str
    size: int
    read: Callable[[], Iterator[bytes]]


def document_collection(main: DocumentContent, attachments: list[DocumentContent], content: Callable[[int], str]) -> (
    dict[str, Any]
):  # fmt: skip
    """The documentCollection (assumed shape, above); `content(index)` stands in for the base64 of document `index`
    (the main document is 0, the attachments follow)."""

    def document(index: int, pdf: DocumentContent) -> dict[str, Any]:
        return {"title": pdf.title, "fileName": pdf.file_name, "mimeType": PDF_MIME_TYPE, "content": content(index)}

    return {
        "mainDocument": document(0, main),
        "attachments": [document(index, pdf) for index, pdf in enumerate(attachments, start=1)],
    }


class LetterBody:
    """A JSON request body whose documents' contents are streamed in as base64, never held whole: `len()` is its
    exact size (sent as Content-Length) and each iteration reads the documents again from their start.

    `request` is the body as JSON with `content(index)` where document `index`'s base64 goes (document_collection's
    `content`)."""

    def __init__(self, request: Callable[[Callable[[int], str]], dict[str, Any]], documents: list[DocumentContent]):
        marker = f"@document-{uuid.uuid4().hex}-"
        text = json.dumps(request(lambda index: f"{marker}{index}@"), ensure_ascii=False, separators=(",", ":"))
        self._parts: list[bytes | DocumentContent] = []
        for number, piece in enumerate(text.split(marker)):
            if number:  # "<index>@<the JSON after it>"
                index, _, piece = piece.partition("@")
                self._parts.append(documents[int(index)])
            self._parts.append(piece.encode())
        self._length = sum(len(part) if isinstance(part, bytes) else _base64_length(part.size) for part in self._parts)

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        for part in self._parts:
            if isinstance(part, bytes):
                yield part
            else:
                yield from _base64_of(part)


def _base64_length(size: int) -> int:
    return 4 * ((size + 2) // 3)


def _base64_of(document: DocumentContent) -> Iterator[bytes]:
    """The document's base64, chunk by chunk; raises DocumentChanged when it is not `size` bytes long."""
    pending, read = b"", 0
    for chunk in document.read():
        read += len(chunk)
        pending += chunk
        whole = len(pending) - len(pending) % 3
        if whole >= _CHUNK_BYTES:
            yield base64.b64encode(pending[:whole])
            pending = pending[whole:]
    if read != document.size:
        raise DocumentChanged(f"{document.file_name} has {read} bytes, not the {document.size} it was checked with")
    if pending:
        yield base64.b64encode(pending)


class DocumentChanged(Exception):
    """A document read for the request is not the one checked before (its size differs): the request is cut short."""
