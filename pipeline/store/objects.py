"""The content-addressed cache under `<storyboard folder>/.storyreel/` and the records indexing it.

Input: downloaded takes, extracted frames, uploaded images, finished shots and films.
Output: files under the store root (`layout` says where), each written atomically. A record
is written only after the objects it names, so a crash between the two leaves an unused
object, never a record pointing at nothing. An object is trusted by its size when it is
looked up, and by its content (`verify`, once per store instance, that is once per run)
before it is used for a film or a frame.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from .atomic import fsync_dir, write_atomic
from .folder import hold_folder
from .layout import Layout, checked_sha, suffix
from .records import (
    DELETE_HINT,
    CacheError,
    ShotRecord,
    Take,
    aware,
    parse_record,
    read_record,
    upload_fields,
    write_record,
)

_CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredObject:
    sha256: str
    path: Path
    size: int


class ObjectStore(Layout):
    """The cache of one storyboard folder; `root` is `<storyboard folder>/.storyreel`.

    Nothing is created on disk until something is written, so read-only commands can look
    things up without leaving a folder behind.
    """

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self._verified: set[Path] = set()
        self._file_shas: dict[tuple[Path, int, int], str] = {}

    # Objects

    def has(self, sha256: str, ext: str) -> bool:
        return self.path_for(sha256, ext).is_file()

    def verify(self, sha256: str, ext: str) -> bool:
        """Whether the object is there and its content still hashes to its name. Each object
        is read once per store instance; a later change on disk is not looked for again."""
        path = self.path_for(sha256, ext)
        if path in self._verified:
            return True
        try:
            intact = sha256_file(path) == sha256
        except (FileNotFoundError, IsADirectoryError):
            return False
        if intact:
            self._verified.add(path)
        return intact

    def verify_file(self, path: Path) -> bool:
        """`verify` for an object's path (`objects/<aa>/<rest of sha256>.<ext>`)."""
        sha, ext = path.parent.name + path.stem, path.suffix
        return self.path_for(sha, ext) == path and self.verify(sha, ext)

    def discard(self, sha256: str, ext: str) -> None:
        """Remove an object whose content is damaged: every record naming it then reads as
        missing, and the next put of the right content writes it anew."""
        path = self.path_for(sha256, ext)
        self._verified.discard(path)
        path.unlink(missing_ok=True)

    def temp_path(self, suffix_: str = "") -> Path:
        """A fresh path inside the store to stream a download into, then hand to `put_file`."""
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        return self.temp_dir / f"{uuid.uuid4().hex}{suffix(suffix_)}"

    def put_bytes(self, data: bytes, ext: str) -> StoredObject:
        sha = hashlib.sha256(data).hexdigest()
        target = self.path_for(sha, ext)
        if not self._holds_intact(target, sha, len(data)):
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, data)
            self._verified.add(target)
        return StoredObject(sha, target, len(data))

    def put_file(self, src: Path, ext: str, *, sha256: str | None = None) -> StoredObject:
        """Store a file's content; raise `CacheError` if it does not hash to `sha256`.

        A temp file from `temp_path` is renamed into place (no second copy of a large video);
        any other file is copied, so the caller's file is never moved away.
        """
        src = Path(src)
        if self._is_own_temp(src):
            return self._adopt(src, ext, sha256)
        return self._copy_in(src, ext, sha256)

    def _is_own_temp(self, src: Path) -> bool:
        if not self.temp_dir.is_dir() or src.resolve().parent != self.temp_dir.resolve():
            return False
        return src.stat().st_dev == self.temp_dir.stat().st_dev

    def _adopt(self, temp: Path, ext: str, expected: str | None) -> StoredObject:
        try:
            with open(temp, "rb") as handle:
                digest, size = _hash_stream(handle, None)
                # The downloader may not have flushed; the rename must not outrun the data.
                os.fsync(handle.fileno())
            _check_digest(temp, digest, expected)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return self._place(temp, digest, size, ext)

    def _copy_in(self, src: Path, ext: str, expected: str | None) -> StoredObject:
        temp = self.temp_path(ext)
        try:
            with open(src, "rb") as source, open(temp, "wb") as copy:
                digest, size = _hash_stream(source, copy)
                copy.flush()
                os.fsync(copy.fileno())
            _check_digest(src, digest, expected)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return self._place(temp, digest, size, ext)

    def _place(self, temp: Path, digest: str, size: int, ext: str) -> StoredObject:
        target = self.path_for(digest, ext)
        if self._holds_intact(target, digest, size):
            temp.unlink()
            return StoredObject(digest, target, size)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)
        fsync_dir(target.parent)
        self._verified.add(target)
        return StoredObject(digest, target, size)

    def _holds_intact(self, target: Path, digest: str, size: int) -> bool:
        """Whether `target` already holds this content: the right size, and (read once)
        the right hash, so a damaged copy is replaced rather than kept."""
        return _holds(target, size) and self.verify(digest, target.suffix)

    # Shot records

    def record_shot(self, identity: str, record: ShotRecord) -> None:
        if record.identity != identity:
            raise ValueError(f"record of {record.identity!r} filed under {identity!r}")
        missing = [take.index for take in record.takes if not self.holds_take(take)]
        if missing:
            raise ValueError(f"shot {identity}: takes {missing} are not in the store yet")
        write_record(self.shot_path(identity), record.to_json())

    def find_shot(self, identity: str) -> ShotRecord | None:
        """The record of `identity`, or None if it was never made or a take's file is gone."""
        record = self.read_shot(identity)
        if record is None or not all(self.holds_take(take) for take in record.takes):
            return None
        return record

    def read_shot(self, identity: str) -> ShotRecord | None:
        """The record of `identity` as written, whether or not its takes are still stored:
        what a take downloaded again must hash to."""
        path = self.shot_path(identity)
        data = read_record(path)
        if data is None:
            return None
        record = parse_record(ShotRecord.from_json, data, path)
        if record.identity != identity:
            raise CacheError(f"{path}: holds the record of {record.identity}", hint=DELETE_HINT)
        return record

    def holds_take(self, take: Take) -> bool:
        return _holds(self.path_for(take.sha256, take.ext), take.size)

    # Frames

    def record_frame(self, video_sha: str, which: str, png_sha: str) -> None:
        if not self.has(png_sha, "png"):
            raise ValueError(f"frame {png_sha}.png is not in the store yet")
        data = {"video_sha256": video_sha, "which": which, "png_sha256": png_sha}
        write_record(self.frame_path(video_sha, which), data)

    def find_frame(self, video_sha: str, which: str) -> str | None:
        """The sha256 of the PNG taken from a video's frame `which`, if it is still stored."""
        path = self.frame_path(video_sha, which)
        data = read_record(path)
        if data is None:
            return None
        png = parse_record(lambda d: checked_sha(str(d["png_sha256"])), data, path)
        return png if self.has(png, "png") else None

    # Uploads

    def record_upload(
        self, backend: str, sha256: str, image_uuid: str, *, now: datetime | None = None
    ) -> None:
        when = aware(now)
        data = {"backend": backend, "sha256": sha256, "image_uuid": image_uuid}
        write_record(self.upload_path(backend, sha256), data | {"uploaded": when.isoformat()})

    def find_upload(
        self, backend: str, sha256: str, *, max_age_days: float = 25, now: datetime | None = None
    ) -> str | None:
        """The imageUUID `backend` gave this image, unless older than `max_age_days`.

        Uploaded images expire on the server after a while; a stale UUID would fail the task,
        so it is treated as never uploaded.
        """
        path = self.upload_path(backend, sha256)
        data = read_record(path)
        if data is None or data.get("backend") != backend:
            return None
        image_uuid, uploaded = parse_record(upload_fields, data, path)
        fresh = aware(now) - uploaded <= timedelta(days=max_age_days)
        return image_uuid if fresh else None

    def forget_upload(self, backend: str, sha256: str) -> None:
        """Drop an upload the backend no longer knows."""
        self.upload_path(backend, sha256).unlink(missing_ok=True)

    # Files read for their hash (films)

    def file_sha256(self, path: Path) -> str:
        """The sha256 of any file (a film); read once per store instance while its size and
        time stay the same."""
        facts = path.stat()
        key = (path, facts.st_size, facts.st_mtime_ns)
        if key not in self._file_shas:
            self._file_shas[key] = sha256_file(path)
        return self._file_shas[key]

    # The run lock

    @contextmanager
    def exclusive(self, storyboard: str = "") -> Iterator[None]:
        """Hold the folder for one run of `storyboard`; raise `CacheError` if another process
        holds it. Temp files left by a killed run are removed on entry."""
        with hold_folder(self.root, self.run_lock_path, storyboard):
            self._clear_temp()
            yield

    def _clear_temp(self) -> None:
        if self.temp_dir.is_dir():
            for leftover in self.temp_dir.iterdir():
                leftover.unlink(missing_ok=True)


def sha256_file(path: Path) -> str:
    """The sha256 of a file's content, read in chunks."""
    with open(path, "rb") as handle:
        return _hash_stream(handle, None)[0]


def _hash_stream(source: BinaryIO, copy: BinaryIO | None) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if copy is not None:
            copy.write(chunk)
    return digest.hexdigest(), size


def _check_digest(src: Path, digest: str, expected: str | None) -> None:
    if expected is not None and digest != expected.lower():
        raise CacheError(
            f"{src}: content hashes to {digest}, expected {expected}",
            hint="the file changed or the download was damaged; run again to fetch it anew",
        )


def _holds(path: Path, size: int) -> bool:
    """Whether `path` is there with the expected size: a truncated object is not an object."""
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False
