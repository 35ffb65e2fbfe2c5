"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Input: a target path and bytes (or a stream of writes).
Output: the target replaced in one `os.replace`, its data and its folder entry flushed to disk.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

# Files we create are meant to be read by players, editors and git, not kept private.
_NEW_FILE_MODE = 0o644


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries, so a rename into it survives a power cut."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _target_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return _NEW_FILE_MODE


@contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces `path` when the block ends without an exception.

    The temp file sits in the target's folder, because a rename is only atomic within one
    filesystem. On an exception the temp file is removed and the target is left untouched.
    """
    path = Path(path)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), _target_mode(path))
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically and durably."""
    with atomic_writer(path) as handle:
        handle.write(data)
