"""Chaining alone: a planned request and its parents' takes in, the request as sent out (a
parent's frame or a local file, extracted, stored and uploaded once)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from support_backend import FakeBackend, write_clip

from pipeline.media.frames import extract_frame
from pipeline.run.chain import Chain, takes_frames_use
from pipeline.store import CacheError, ObjectStore, ShotRecord, Take


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore(tmp_path / ".storyreel")


def stored_record(store: ObjectStore, folder: Path, colours: list[tuple[int, int, int]]
                  ) -> ShotRecord:
    takes = []
    for index, colour in enumerate(colours, start=1):
        clip = folder / f"take{index}.mp4"
        write_clip(clip, colour, frames=6 + index)
        stored = store.put_file(clip, "mp4")
        takes.append(Take(index, f"video-{index}", stored.sha256, "mp4", stored.size))
    return ShotRecord("parent-identity", "task-1", 7, tuple(takes))


def from_parent(frame: str | int = "last", take: int = 1) -> dict[str, Any]:
    source = {"source": "shot", "shot": "a", "key": "a", "frame": frame, "take": take}
    return {"positivePrompt": "next", "inputs": {"frameImages": [{"image": source,
                                                                  "frame": "first"}]}}


def uploaded_image(backend: FakeBackend, uuid: str) -> np.ndarray[Any, Any]:
    return np.asarray(Image.open(io.BytesIO(backend.uploads[uuid])).convert("RGB"))


def test_a_parents_frame_is_uploaded_and_sent_in_its_place(store: ObjectStore,
                                                           tmp_path: Path) -> None:
    record = stored_record(store, tmp_path, [(200, 30, 30), (30, 200, 30)])
    backend = FakeBackend(tmp_path / "unused.mp4")
    chain = Chain(store, backend, "fake", tmp_path)
    request, shas = asyncio.run(chain.resolve(from_parent("last", take=2), {"a": record}))
    (item,) = request["inputs"]["frameImages"]
    assert item["frame"] == "first" and item["image"] in backend.uploads
    picked = store.path_for(record.takes[1].sha256, "mp4")
    assert np.array_equal(uploaded_image(backend, item["image"]),
                          np.asarray(extract_frame(picked, "last")))
    assert list(shas) == ["a:take2:last"] and store.has(shas["a:take2:last"], "png")
    assert request["positivePrompt"] == "next"


def test_the_same_frame_is_extracted_and_uploaded_once(store: ObjectStore,
                                                       tmp_path: Path) -> None:
    record = stored_record(store, tmp_path, [(10, 20, 30)])
    backend = FakeBackend(tmp_path / "unused.mp4")
    steps: list[str] = []
    chain = Chain(store, backend, "fake", tmp_path, on_step=steps.append)

    async def twice() -> list[str]:
        first = await chain.resolve(from_parent(), {"a": record})
        second = await chain.resolve(from_parent(), {"a": record})
        return [r[0]["inputs"]["frameImages"][0]["image"] for r in (first, second)]

    uuids = asyncio.run(twice())
    assert uuids[0] == uuids[1] and len(backend.uploads) == 1
    assert steps == ["extracting", "uploading"]
    # Another run: the frame and its upload come from the store, nothing is sent.
    again = Chain(store, FakeBackend(tmp_path / "unused.mp4"), "fake", tmp_path)
    request, _ = asyncio.run(again.resolve(from_parent(), {"a": record}))
    assert request["inputs"]["frameImages"][0]["image"] == uuids[0]
    assert again.backend.uploads == {}  # type: ignore[attr-defined]


def test_a_numbered_frame_is_that_frame(store: ObjectStore, tmp_path: Path) -> None:
    record = stored_record(store, tmp_path, [(90, 90, 200)])
    backend = FakeBackend(tmp_path / "unused.mp4")
    request, shas = asyncio.run(Chain(store, backend, "fake", tmp_path).resolve(
        from_parent(3), {"a": record}))
    video = store.path_for(record.takes[0].sha256, "mp4")
    assert np.array_equal(uploaded_image(backend, request["inputs"]["frameImages"][0]["image"]),
                          np.asarray(extract_frame(video, 3)))
    assert "a:take1:3" in shas


def test_a_local_file_is_read_from_the_folder_and_uploaded_with_its_type(
        store: ObjectStore, tmp_path: Path) -> None:
    picture = tmp_path / "poster.jpg"
    Image.new("RGB", (320, 180), (250, 200, 10)).save(picture, "JPEG")
    backend = FakeBackend(tmp_path / "unused.mp4")
    mimes: list[str] = []
    upload = backend.upload_image

    async def recording(data: bytes, mime: str = "image/png") -> str:
        mimes.append(mime)
        return await upload(data, mime)

    backend.upload_image = recording  # type: ignore[method-assign]
    item = {"source": "file", "path": "poster.jpg", "sha256": None}
    request, shas = asyncio.run(Chain(store, backend, "fake", tmp_path).resolve(
        {"inputs": {"frameImages": [item]}}, {}))
    (uuid,) = request["inputs"]["frameImages"]
    assert backend.uploads[uuid] == picture.read_bytes()
    assert mimes == ["image/jpeg"] and list(shas) == ["file:poster.jpg"]


def test_a_request_without_images_is_sent_as_written(store: ObjectStore,
                                                     tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path / "unused.mp4")
    written = {"positivePrompt": "alone", "inputs": {"frameImages": ["https://x/y.png"]}}
    request, shas = asyncio.run(Chain(store, backend, "fake", tmp_path).resolve(written, {}))
    assert request == written and shas == {} and backend.uploads == {}


def test_a_damaged_frame_in_the_store_is_taken_from_the_video_again(store: ObjectStore,
                                                                    tmp_path: Path) -> None:
    record = stored_record(store, tmp_path, [(40, 160, 90)])
    first = Chain(store, FakeBackend(tmp_path / "unused.mp4"), "fake", tmp_path)
    _, shas = asyncio.run(first.resolve(from_parent(), {"a": record}))
    png = store.path_for(shas["a:take1:last"], "png")
    png.write_bytes(png.read_bytes()[:-10] + b"0123456789")  # same size, other bytes
    backend = FakeBackend(tmp_path / "unused.mp4")
    fresh = ObjectStore(store.root)  # a new run: nothing verified yet
    # Another backend: the image was never uploaded there, so the stored frame is read.
    request, again = asyncio.run(Chain(fresh, backend, "other", tmp_path).resolve(
        from_parent(), {"a": record}))
    assert again == shas
    video = store.path_for(record.takes[0].sha256, "mp4")
    assert np.array_equal(uploaded_image(backend, request["inputs"]["frameImages"][0]["image"]),
                          np.asarray(extract_frame(video, "last")))


def test_a_damaged_parent_video_is_refused_not_used(store: ObjectStore, tmp_path: Path) -> None:
    record = stored_record(store, tmp_path, [(40, 160, 90)])
    video = store.path_for(record.takes[0].sha256, "mp4")
    data = bytearray(video.read_bytes())
    data[len(data) // 2] ^= 0xFF
    video.write_bytes(bytes(data))
    chain = Chain(ObjectStore(store.root), FakeBackend(tmp_path / "unused.mp4"), "fake",
                  tmp_path)
    with pytest.raises(CacheError, match="damaged"):
        asyncio.run(chain.resolve(from_parent(), {"a": record}))


def test_the_takes_frames_use_are_those_whose_frame_is_not_stored(store: ObjectStore,
                                                                  tmp_path: Path) -> None:
    record = stored_record(store, tmp_path, [(1, 2, 3), (4, 5, 6)])
    requests = {"b": from_parent("last", take=2), "c": {"positivePrompt": "alone"}}
    assert takes_frames_use(requests, {"a": record}, store) == [record.takes[1]]
    asyncio.run(Chain(store, FakeBackend(tmp_path / "unused.mp4"), "fake", tmp_path).resolve(
        requests["b"], {"a": record}))
    assert takes_frames_use(requests, {"a": record}, store) == []
