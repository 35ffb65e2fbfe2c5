"""Chain: a planned request + finished parent takes -> the request as sent, images resolved.

A `{source: shot}` image becomes the frame of the parent's picked take (extracted with PyAV
once, kept in the store by content hash, uploaded once per backend); a `{source: file}`
image is read from the storyboard's folder and uploaded the same way. Everything else is
sent as written. Also returns the sha256 of every image content it resolved, for the lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..api import Backend
from ..media.frames import extract_frame, save_png
from ..store import ObjectStore, ShotRecord

Resolved = tuple[dict[str, Any], dict[str, str]]


@dataclass
class Chain:
    """Resolves run-time images; one instance per run, shared by every job."""

    store: ObjectStore
    backend: Backend
    backend_id: str
    folder: Path
    on_step: Callable[[str], None] = lambda step: None
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def resolve(self, request: Mapping[str, Any],
                      records: Mapping[str, ShotRecord]) -> Resolved:
        """`records` maps each parent shot key to its finished record."""
        images = (request.get("inputs") or {}).get("frameImages")
        if not isinstance(images, list):
            return dict(request), {}
        shas: dict[str, str] = {}
        items = [await self._item(item, records, shas) for item in images]
        return {**request, "inputs": {**request["inputs"], "frameImages": items}}, shas

    async def _item(self, item: Any, records: Mapping[str, ShotRecord],
                    shas: dict[str, str]) -> Any:
        if isinstance(item, Mapping) and "image" in item and "source" not in item:
            return {**item, "image": await self._item(item["image"], records, shas)}
        if not isinstance(item, Mapping) or "source" not in item:
            return item
        if item["source"] == "shot":
            label = f"{item['key']}:take{item['take']}:{item['frame']}"
            sha = await self._frame(records[item["key"]], int(item["take"]), item["frame"])
        else:
            label, sha = f"file:{item['path']}", await self._file(str(item["path"]))
        shas[label] = sha
        return await self._upload(sha)

    async def _frame(self, record: ShotRecord, take: int, frame: str | int) -> str:
        chosen = record.takes[take - 1]
        which = str(frame)
        cached = self.store.find_frame(chosen.sha256, which)
        if cached is not None:
            return cached
        self.on_step("extracting")
        video = self.store.path_for(chosen.sha256, chosen.ext)
        sha = await asyncio.to_thread(self._extract, video, frame)
        self.store.record_frame(chosen.sha256, which, sha)
        return sha

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


def _image_ext(name: str) -> str:
    ext = Path(name).suffix.lower().lstrip(".")
    return ext if ext in ("png", "jpg", "jpeg", "webp") else "png"


def _mime(suffix: str) -> str:
    ext = suffix.lower().lstrip(".")
    return {"jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}.get(ext, "image/png")
