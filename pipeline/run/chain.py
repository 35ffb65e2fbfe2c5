"""Chain: a planned request + finished parent takes -> the request as sent, images resolved.

A `{source: shot}` image becomes the frame of the parent's picked take (extracted with PyAV
once, kept in the store by content hash, uploaded once per backend): from its graded clip
when the parent holds its colour (`color: match`), and for `frame: best` the sharpest frame
of its last half second. A `{source: file}` image is read from the storyboard's folder and
uploaded the same way. Everything else is sent as written. Also returns the sha256 of every
image content it resolved, for the lock, labelled with the frame index `best` chose. A
video is checked against its hash before a frame is taken from it, and a stored frame
before it is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from ..api import Backend, Task
from ..language.films import shot_sources
from ..media.frames import extract_frame, save_png
from ..store import CacheError, ObjectStore, ShotRecord, Take
from .continuity import ClipFile, best_frame, graded_clip

Resolved = tuple[Task, dict[str, str]]  # the request as sent; image label -> sha256
T = TypeVar("T")


@dataclass
class Chain:
    """Resolves run-time images; one instance per run, shared by every job."""

    store: ObjectStore
    backend: Backend
    backend_id: str
    folder: Path
    on_step: Callable[[str], None] = lambda step: None
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def resolve(self, request: Task, records: Mapping[str, ShotRecord]) -> Resolved:
        """`records` maps each parent shot key to its finished record."""
        images = (request.get("inputs") or {}).get("frameImages")
        if not isinstance(images, list):
            return dict(request), {}
        shas: dict[str, str] = {}
        items = [await self._item(item, records, shas) for item in images]
        return {**request, "inputs": {**request["inputs"], "frameImages": items}}, shas

    async def _item(self, item: object, records: Mapping[str, ShotRecord],
                    shas: dict[str, str]) -> object:
        if isinstance(item, Mapping) and "image" in item and "source" not in item:
            return {**item, "image": await self._item(item["image"], records, shas)}
        if not isinstance(item, Mapping) or "source" not in item:
            return item
        if item["source"] == "shot":
            take = _take(records[item["key"]], int(item["take"]))
            frame = item["frame"]
            if frame == "best":
                self._check(take.sha256, take.ext)  # the sharpest frame is looked for in it
                frame = await self._serial(f"best:{take.sha256}",
                                           lambda: best_frame(self.store, take))
            label = _label(item, frame)
            sha = await self._frame(take, frame, item.get("color") == "match")
        else:
            label, sha = f"file:{item['path']}", await self._file(str(item["path"]))
        shas[label] = sha
        return await self._upload(sha)

    async def _frame(self, take: Take, frame: str | int, graded: bool) -> str:
        """The PNG of a frame of the take, or of its graded clip."""
        video = ClipFile(take.sha256, self.store.path_for(take.sha256, take.ext))
        if graded:
            self.on_step("grading")
            video = await self._serial(f"grade:{take.sha256}",
                                       lambda: graded_clip(self.store, take))
        cached = self.store.find_frame(video.sha256, str(frame))
        if cached is not None and self.store.verify(cached, "png"):
            return cached
        if cached is not None:
            self.store.discard(cached, "png")  # damaged: taken from the video again
        self._check(video.sha256, video.path.suffix)
        self.on_step("extracting")
        png = await asyncio.to_thread(self._extract, video.path, frame)
        self.store.record_frame(video.sha256, str(frame), png)
        return png

    def _check(self, sha256: str, ext: str) -> None:
        if not self.store.verify(sha256, ext):
            raise CacheError(f"video {sha256[:12]}... is damaged in the cache (its content no "
                             "longer matches its hash)",
                             hint="run again: the damaged take is downloaded or made again")

    async def _serial(self, name: str, work: Callable[[], T]) -> T:
        """Run `work` on a thread, one at a time per name: jobs that need the same grade or
        the same choice wait for the first to make it, then find it made."""
        async with self._locks.setdefault(name, asyncio.Lock()):
            return await asyncio.to_thread(work)

    def _extract(self, video: Path, frame: str | int) -> str:
        image = extract_frame(video, int(frame) if str(frame).lstrip("-").isdigit() else frame)
        temp = self.store.temp_path(".png")
        save_png(image, temp)
        return self.store.put_file(temp, "png").sha256

    async def _file(self, relative: str) -> str:
        data = (self.folder / relative).read_bytes()
        return self.store.put_bytes(data, _image_ext(relative)).sha256

    async def _upload(self, sha: str) -> str:
        lock = self._locks.setdefault(sha, asyncio.Lock())
        async with lock:
            known = self.store.find_upload(self.backend_id, sha)
            if known is not None:
                return known
            self.on_step("uploading")
            path = self._object_path(sha)
            uuid = await self.backend.upload_image(path.read_bytes(), _mime(path.suffix))
            self.store.record_upload(self.backend_id, sha, uuid)
            return uuid

    def _object_path(self, sha: str) -> Path:
        for ext in ("png", "jpg", "jpeg", "webp"):
            if self.store.has(sha, ext):
                return self.store.path_for(sha, ext)
        raise FileNotFoundError(f"image {sha} is not in the store")


def takes_frames_use(requests: Mapping[str, Task], records: Mapping[str, ShotRecord],
                     store: ObjectStore) -> list[Take]:
    """The cached takes frames will be taken from: `requests` are those of the shots to
    make (by key), `records` the finished parents (by key). A plain frame already in the
    store needs no video; a graded or `best` one reads it."""
    used = []
    for request in requests.values():
        for item in shot_sources(request):
            record = records.get(str(item["key"]))
            if record is None:
                continue
            take = _take(record, int(item["take"]))
            plain = item["frame"] != "best" and item.get("color") != "match"
            if not plain or store.find_frame(take.sha256, str(item["frame"])) is None:
                used.append(take)
    return used


def _take(record: ShotRecord, take: int) -> Take:
    return record.takes[take - 1]


def _label(item: Task, frame: str | int) -> str:
    """How the lock names an input frame: `a:take1:last`, `a:take2:best=113`, and
    `:color-match` when it comes from the graded clip."""
    shown = f"best={frame}" if item["frame"] == "best" else str(frame)
    graded = ":color-match" if item.get("color") == "match" else ""
    return f"{item['key']}:take{item['take']}:{shown}{graded}"


def _image_ext(name: str) -> str:
    ext = Path(name).suffix.lower().lstrip(".")
    return ext if ext in ("png", "jpg", "jpeg", "webp") else "png"


def _mime(suffix: str) -> str:
    ext = suffix.lower().lstrip(".")
    return {"jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}.get(ext, "image/png")
