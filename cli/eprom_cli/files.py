"""Files the command writes hold personal data (answers, signed PDFs, order messages with national ids): each is
created new, for its owner only, and never through a symlink."""

import os
from pathlib import Path


class FileRefused(Exception):
    """Why a file or directory was not written: one line for the operator."""


def directory_for_files(path: Path) -> Path:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise FileRefused(f"cannot use {path} as the directory for the files: {error.strerror}") from None
    return path


def write_private(path: Path, content: bytes) -> None:
    """Create `path` with mode 600 and write `content`. An existing file (or a symlink, even a dangling one) is
    refused, never overwritten: O_EXCL fails on any existing name, O_NOFOLLOW on a symlink."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        descriptor = os.open(path, flags, 0o600)
    except FileExistsError:
        raise FileRefused(f"{path} exists already: not overwritten (move it away, or choose another --out)") from None
    except OSError as error:
        raise FileRefused(f"cannot create {path}: {error.strerror}") from None
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
    except OSError as error:
        path.unlink(missing_ok=True)  # no half-written file left behind
        raise FileRefused(f"cannot write {path}: {error.strerror}") from None
