"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Input: a target path and bytes, a stream of writes, or a writer that needs a file name (an
encoder, a download).
Output: the target replaced in one `os.replace`, its data and its folder entry flushed to disk.
Every file storyreel writes goes through here.
"""

from __future__ import annotations

import os
import re
import secrets
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


def _flush_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path next to `path`: renamed over `path` when the block ends without an
    exception, removed otherwise.

    Same folder, because a rename is only atomic within one filesystem. The name
    (`.<name>.<8 hex>.part`) lets `remove_partials` find what a killed writer left.
    """
    path = Path(path)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        yield temp
        _flush_file(temp)
        os.chmod(temp, _target_mode(path))
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(path.parent)


@contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces `path` when the block ends without an exception."""
    with atomic_path(path) as temp, open(temp, "xb") as handle:
        yield handle


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically and durably."""
    with atomic_writer(path) as handle:
        handle.write(data)


def remove_partials(out: Path) -> None:
    """Delete the temporary files `atomic_path` left for `out` in processes that died
    mid-write. Only for a caller that holds the folder: a live writer's file looks the same."""
    name = re.compile(rf"\.{re.escape(out.name)}\.[0-9a-f]{{8}}\.part")
    for path in out.parent.glob(".*.part"):
        if name.fullmatch(path.name):
            path.unlink(missing_ok=True)
