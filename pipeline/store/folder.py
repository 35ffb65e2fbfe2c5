"""Holding the store folder for one run: `run.lock`, taken with `flock`.

Input: the store root, its lock file, and the storyboard the run is for.
Output: the folder, created if need be and held until the block ends; or a `CacheError`
that names the storyboard and the process holding it, or says why the folder cannot be used
(a file in its place, a read-only folder). `flock` is released by the kernel when the holder
dies, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ..errors import FileError
from .records import CacheError


@contextmanager
def hold_folder(root: Path, lock: Path, storyboard: str) -> Iterator[None]:
    """Hold `root` through `lock` for a run of `storyboard`; refuse if another run holds it."""
    handle = _open_lock(root, lock)
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _held_error(handle, root, lock, storyboard) from None
        handle.truncate(0)
        handle.write(f"{os.getpid()} {storyboard}".rstrip().encode() + b"\n")
        handle.flush()
        yield


def _open_lock(root: Path, lock: Path) -> BinaryIO:
    try:
        root.mkdir(parents=True, exist_ok=True)
        # Append mode: opening must not truncate the pid a current holder wrote.
        return open(lock, "a+b")
    except OSError as exc:
        error = FileError.from_os(exc, f"use the cache folder {root}")
        raise CacheError(error.message, hint=_FOLDER_HINT, exit_code=error.exit_code) from None


_FOLDER_HINT = ("storyreel keeps its cache in .storyreel/ next to the storyboard: the folder "
                "must be writable, and .storyreel and .storyreel/run.lock must not be in the way")


def read_holder(text: str) -> tuple[int, str] | None:
    """(pid, storyboard) from what a run wrote into `run.lock`; None if it is not that."""
    pid, _, storyboard = text.strip().partition(" ")
    return (int(pid), storyboard) if pid.isdigit() else None


def _held_error(handle: BinaryIO, root: Path, lock: Path, storyboard: str) -> CacheError:
    handle.seek(0)
    holder = read_holder(handle.read().decode(errors="replace"))
    pid, other = (str(holder[0]), holder[1]) if holder else ("", "")
    mine = storyboard or "this storyboard"
    message = f"another storyreel run is using the cache of {mine} ({root.absolute()})"
    if not pid:
        return CacheError(message)
    running = f" (running {other})" if other else ""
    return CacheError(message, hint=f"process {pid}{running} holds {lock.absolute()}; wait "
                      "for it to end, or stop it")
