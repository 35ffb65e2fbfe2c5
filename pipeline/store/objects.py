"""The content-addressed cache under `<storyboard folder>/.storyreel/` and the records indexing it.

Input: downloaded takes, extracted frames, uploaded images and finished shots.
Output: files under the store root, each written atomically:

    objects/<aa>/<rest of sha256>.<ext>   content named by its hash; the extension is for players
    shots/<identity>.json                 the takes a shot identity produced
    frames/<video sha256>.<which>.json    the PNG taken from a video's first, last or n-th frame
    uploads/<backend hash>/<sha256>.json  the imageUUID a backend gave an image, and when
    run.lock                              held by the one run using the folder
    tmp/                                  downloads in progress

A record is written only after the objects it names, so a crash between the two leaves an
unused object, never a record pointing at nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from ..errors import StoryreelError
from .atomic import fsync_dir, write_atomic

RECORD_FORMAT = 1
_CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
_EXT = re.compile(r"[a-z0-9]{0,10}")
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")
_WHICH = re.compile(r"first|last|-?[0-9]+")

T = TypeVar("T")


class CacheError(StoryreelError):
    """The cache folder holds something storyreel cannot use, or another run holds it."""


@dataclass(frozen=True)
class StoredObject:
    sha256: str
    path: Path
    size: int


@dataclass(frozen=True)
class Take:
    """One video a task produced; `index` is 1-based, as `pick` counts."""

    index: int
    video_uuid: str
    sha256: str
    ext: str
    size: int
    probe: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Take:
        return cls(
            index=int(data["index"]),
            video_uuid=str(data["video_uuid"]),
            sha256=_checked_sha(str(data["sha256"])),
            ext=str(data["ext"]),
            size=int(data["size"]),
            probe=dict(data["probe"]),
        )


@dataclass(frozen=True)
class ShotRecord:
    """What one shot identity produced: the task, its seed, every take and what it cost."""

    identity: str
    task_uuid: str
    seed: int
    takes: tuple[Take, ...]
    cost: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": RECORD_FORMAT,
            "identity": self.identity,
            "task_uuid": self.task_uuid,
            "seed": self.seed,
            "cost": self.cost,
            "takes": [take.to_json() for take in self.takes],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ShotRecord:
        if data["format"] != RECORD_FORMAT:
            raise ValueError(f"unknown record format {data['format']!r}")
        cost = data["cost"]
        return cls(
            identity=str(data["identity"]),
            task_uuid=str(data["task_uuid"]),
            seed=int(data["seed"]),
            takes=tuple(Take.from_json(take) for take in data["takes"]),
            cost=None if cost is None else float(cost),
        )


def store_root_for(storyboard: Path) -> Path:
    """The cache folder of a storyboard: `.storyreel/` in the storyboard's folder."""
    return Path(storyboard).parent / ".storyreel"


class ObjectStore:
    """The cache of one storyboard folder; `root` is `<storyboard folder>/.storyreel`.

    Nothing is created on disk until something is written, so read-only commands can look
    things up without leaving a folder behind.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def journal_path(self) -> Path:
        return self.root / "journal.sqlite"

    # Objects

    def path_for(self, sha256: str, ext: str) -> Path:
        sha = _checked_sha(sha256)
        return self.root / "objects" / sha[:2] / f"{sha[2:]}{_suffix(ext)}"

    def has(self, sha256: str, ext: str) -> bool:
        return self.path_for(sha256, ext).is_file()

    def temp_path(self, suffix: str = "") -> Path:
        """A fresh path inside the store to stream a download into, then hand to `put_file`."""
        folder = self.root / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{uuid.uuid4().hex}{_suffix(suffix)}"

    def put_bytes(self, data: bytes, ext: str) -> StoredObject:
        sha = hashlib.sha256(data).hexdigest()
        target = self.path_for(sha, ext)
        if not _holds(target, len(data)):
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, data)
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
        temp_dir = self.root / "tmp"
        if not temp_dir.is_dir() or src.resolve().parent != temp_dir.resolve():
            return False
        return src.stat().st_dev == temp_dir.stat().st_dev

    def _adopt(self, temp: Path, ext: str, expected: str | None) -> StoredObject:
        try:
            with open(temp, "rb") as handle:
                digest, size = _hash_stream(handle, None)
                # The downloader may not have flushed; the rename must not outrun the data.
                os.fsync(handle.fileno())
            _verify(temp, digest, expected)
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
            _verify(src, digest, expected)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return self._place(temp, digest, size, ext)

    def _place(self, temp: Path, digest: str, size: int, ext: str) -> StoredObject:
        target = self.path_for(digest, ext)
        if _holds(target, size):
            temp.unlink()
            return StoredObject(digest, target, size)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)
        fsync_dir(target.parent)
        return StoredObject(digest, target, size)

    # Shot records

    def record_shot(self, identity: str, record: ShotRecord) -> None:
        if record.identity != identity:
            raise ValueError(f"record of {record.identity!r} filed under {identity!r}")
        missing = [take.index for take in record.takes if not self._holds_take(take)]
        if missing:
            raise ValueError(f"shot {identity}: takes {missing} are not in the store yet")
        self._write_json(self._shot_path(identity), record.to_json())

    def find_shot(self, identity: str) -> ShotRecord | None:
        """The record of `identity`, or None if it was never made or a take's file is gone."""
        path = self._shot_path(identity)
        data = _read_json(path)
        if data is None:
            return None
        record = _parse(ShotRecord.from_json, data, path)
        if record.identity != identity:
            raise CacheError(f"{path}: holds the record of {record.identity}", hint=_DELETE_HINT)
        return record if all(self._holds_take(take) for take in record.takes) else None

    def _holds_take(self, take: Take) -> bool:
        return _holds(self.path_for(take.sha256, take.ext), take.size)

    def _shot_path(self, identity: str) -> Path:
        return self.root / "shots" / f"{_checked_name(identity)}.json"

    # Frames

    def record_frame(self, video_sha: str, which: str, png_sha: str) -> None:
        if not self.has(png_sha, "png"):
            raise ValueError(f"frame {png_sha}.png is not in the store yet")
        data = {"video_sha256": video_sha, "which": which, "png_sha256": png_sha}
        self._write_json(self._frame_path(video_sha, which), data)

    def find_frame(self, video_sha: str, which: str) -> str | None:
        """The sha256 of the PNG taken from a video's frame `which`, if it is still stored."""
        path = self._frame_path(video_sha, which)
        data = _read_json(path)
        if data is None:
            return None
        png = _parse(lambda d: _checked_sha(str(d["png_sha256"])), data, path)
        return png if self.has(png, "png") else None

    def _frame_path(self, video_sha: str, which: str) -> Path:
        if not _WHICH.fullmatch(which):
            raise ValueError(f"frame {which!r}: expected 'first', 'last' or an index")
        return self.root / "frames" / f"{_checked_sha(video_sha)}.{which}.json"

    # Uploads

    def record_upload(
        self, backend: str, sha256: str, image_uuid: str, *, now: datetime | None = None
    ) -> None:
        when = _aware(now)
        data = {"backend": backend, "sha256": sha256, "image_uuid": image_uuid}
        self._write_json(self._upload_path(backend, sha256), data | {"uploaded": when.isoformat()})

    def find_upload(
        self, backend: str, sha256: str, *, max_age_days: float = 25, now: datetime | None = None
    ) -> str | None:
        """The imageUUID `backend` gave this image, unless older than `max_age_days`.

        Uploaded images expire on the server after a while; a stale UUID would fail the task,
        so it is treated as never uploaded.
        """
        path = self._upload_path(backend, sha256)
        data = _read_json(path)
        if data is None or data.get("backend") != backend:
            return None
        image_uuid, uploaded = _parse(_upload_fields, data, path)
        fresh = _aware(now) - uploaded <= timedelta(days=max_age_days)
        return image_uuid if fresh else None

    def forget_upload(self, backend: str, sha256: str) -> None:
        """Drop an upload the backend no longer knows."""
        self._upload_path(backend, sha256).unlink(missing_ok=True)

    def _upload_path(self, backend: str, sha256: str) -> Path:
        # Backend ids may hold URLs; a hash makes a safe folder name and the file keeps the id.
        folder = hashlib.sha256(backend.encode()).hexdigest()[:16]
        return self.root / "uploads" / folder / f"{_checked_sha(sha256)}.json"

    # The run lock

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the folder for one run; raise `CacheError` if another process holds it.

        `flock` is released by the kernel when the holder dies, so a killed run never leaves
        a stale lock behind. Temp files left by a killed run are removed on entry.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        # Append mode: opening must not truncate the pid a current holder wrote.
        with open(self.root / "run.lock", "a+b") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise self._held_error(handle) from None
            handle.truncate(0)
            handle.write(f"{os.getpid()}\n".encode())
            handle.flush()
            self._clear_temp()
            yield

    def _held_error(self, handle: BinaryIO) -> CacheError:
        handle.seek(0)
        pid = handle.read().decode(errors="replace").strip()
        hint = f"process {pid} holds {self.root / 'run.lock'}" if pid else None
        return CacheError(f"another storyreel run is using {self.root.parent}", hint=hint)

    def _clear_temp(self) -> None:
        temp_dir = self.root / "tmp"
        if temp_dir.is_dir():
            for leftover in temp_dir.iterdir():
                leftover.unlink(missing_ok=True)

    def _write_json(self, path: Path, data: Mapping[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
        write_atomic(path, text.encode())


_DELETE_HINT = "delete the file; the shot is then treated as not cached"


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


def _verify(src: Path, digest: str, expected: str | None) -> None:
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


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise CacheError(f"{path}: not a text file ({exc})", hint=_DELETE_HINT) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"{path}:{exc.lineno}: invalid JSON: {exc.msg}"
        raise CacheError(message, hint=_DELETE_HINT) from None


def _parse(build: Callable[[Any], T], data: Any, path: Path) -> T:
    """Build a value from a cache record, turning any shape mismatch into a `CacheError`."""
    try:
        return build(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CacheError(f"{path}: unexpected record ({exc!r})", hint=_DELETE_HINT) from None


def _upload_fields(data: Mapping[str, Any]) -> tuple[str, datetime]:
    return str(data["image_uuid"]), _aware(datetime.fromisoformat(data["uploaded"]))


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment


def _checked_sha(sha256: str) -> str:
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a lowercase hex sha256: {sha256!r}")
    return sha256


def _checked_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"not usable as a file name: {name!r}")
    return name


def _suffix(ext: str) -> str:
    bare = ext.lower().removeprefix(".")
    if not _EXT.fullmatch(bare):
        raise ValueError(f"unexpected file extension {ext!r}")
    return f".{bare}" if bare else ""
