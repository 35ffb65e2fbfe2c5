"""The simulator's videos, decoded: size, duration, format, frame images, seeds, GOP.

Each clip is asked for as a client would (submit, poll, download its videoURL) and checked
with PyAV; sizes are the smallest PixVerse offers so the whole file runs in seconds.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipeline.api import RunwareClient, TaskStatus, VideoResult
from pipeline.media.frames import extract_frame
from pipeline.media.probe import probe_video
from pipeline.simulator.app import SimulatorApp, SimulatorConfig, simulator_transport

FPS = 24


def picture(width: int, height: int, hue: int) -> Image.Image:
    """A frame image with structure (gradient, shapes), so a match is not a flat colour."""
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    rgb = np.stack([np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)),
                    np.full((height, width), float(hue))], axis=-1)
    image = Image.fromarray(rgb.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 4, height // 4, width // 2, height // 2), fill=(hue, 255 - hue, 90))
    draw.rectangle((width // 2, height // 3, width - 40, height - 40), fill=(250, hue, 30))
    return image


def as_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def psnr(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a.convert("RGB"), dtype=np.float64)
    y = np.asarray(b.convert("RGB").resize(a.size), dtype=np.float64)
    mse = float(np.mean((x - y) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


class Renders:
    """Videos made through the client, against one in-process simulator."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.transport = simulator_transport(SimulatorConfig(latency=(0, 0)))
        self.app: SimulatorApp = self.transport.app
        self.client = RunwareClient("k", base_url="http://127.0.0.1/v1",
                                    transport=self.transport)

    def make(self, images: list[Image.Image] | None = None, **fields: Any) -> list[Path]:
        return asyncio.run(self._make(images or [], fields))

    async def _make(self, images: list[Image.Image], fields: dict[str, Any]) -> list[Path]:
        uuids = [await self.client.upload_image(as_png(i)) for i in images]
        task = {"taskUUID": str(uuid.uuid4()), "model": "pixverse:1@3",
                "positivePrompt": "a paper boat drifting down a rain gutter",
                "duration": 5, **fields}
        if uuids:
            task["inputs"] = {"frameImages": uuids}
        [outcome] = await self.client.submit([task])
        assert outcome.ok, outcome.error
        state = (await self.client.poll([task["taskUUID"]]))[task["taskUUID"]]
        assert state.status is TaskStatus.SUCCESS
        return [await self._fetch(r) for r in state.results]

    async def _fetch(self, result: VideoResult) -> Path:
        dest = self.folder / result.video_url.rsplit("/", 1)[1]
        await self.client.download(result.video_url, dest, max_bytes=10**8, timeout=60)
        return dest

    def close(self) -> None:
        asyncio.run(self.client.aclose())


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Renders]:
    made = Renders(tmp_path_factory.mktemp("renders"))
    yield made
    made.close()


@pytest.fixture(scope="module")
def text_clips(renders: Renders) -> list[Path]:
    return renders.make(width=640, height=360, seed=11, numberResults=2,
                        providerSettings={"pixverse": {"cameraMovement": "zoom_in"}})


def test_a_text_to_video_clip_has_the_requested_size_duration_and_format(
    text_clips: list[Path]
) -> None:
    probe = probe_video(text_clips[0])
    assert (probe.width, probe.height) == (640, 360)
    assert abs(probe.frames - 5 * FPS) <= 1
    assert abs(probe.duration - 5.0) <= 1 / FPS + 1e-6
    assert (probe.codec, probe.pix_fmt) == ("h264", "yuv420p")
    assert probe.fps == FPS


def test_keyframes_come_at_least_every_second(text_clips: list[Path]) -> None:
    with av.open(str(text_clips[0])) as container:
        stream = container.streams.video[0]
        keys = [i for i, packet in enumerate(container.demux(stream))
                if packet.size and packet.is_keyframe]
    assert keys[0] == 0
    assert max(b - a for a, b in zip(keys, [*keys[1:], 5 * FPS], strict=True)) <= FPS


def test_different_seeds_give_different_pictures(text_clips: list[Path]) -> None:
    first, second = (extract_frame(p, 60) for p in text_clips)
    assert psnr(first, second) < 25


def test_the_camera_moves_the_picture(text_clips: list[Path]) -> None:
    assert psnr(extract_frame(text_clips[0], "first"), extract_frame(text_clips[0], "last")) < 30


def test_first_and_last_frames_match_the_given_images(renders: Renders) -> None:
    start, end = picture(640, 360, 40), picture(640, 360, 220)
    [clip] = renders.make([start, end], resolution="360p")
    probe = probe_video(clip)
    assert (probe.width, probe.height) == (640, 360)
    assert psnr(extract_frame(clip, "first"), start) > 30
    assert psnr(extract_frame(clip, "last"), end) > 30


def test_a_single_frame_image_is_scaled_into_the_first_frame(renders: Renders) -> None:
    start = picture(720, 720, 120)
    [clip] = renders.make([start], resolution="360p", outputFormat="MOV")
    probe = probe_video(clip)
    assert (probe.width, probe.height) == (360, 360)  # 1:1 row of 360p, from the image
    assert psnr(extract_frame(clip, "first"), start.resize((360, 360))) > 30
    assert clip.suffix == ".mov" and probe.codec == "h264"


def test_webm_is_vp9(renders: Renders) -> None:
    [clip] = renders.make(resolution="360p", outputFormat="WEBM", seed=3)
    probe = probe_video(clip)
    assert clip.suffix == ".webm" and probe.codec == "vp9" and probe.pix_fmt == "yuv420p"
    assert abs(probe.frames - 5 * FPS) <= 1


def test_each_result_was_generated_exactly_once(renders: Renders, text_clips: list[Path]
                                                ) -> None:
    stats = renders.app.stats
    assert set(stats.generations_by_video.values()) == {1}
    assert set(stats.generations_by_task.values()) <= {1, 2}
    assert stats.generations == sum(stats.generations_by_video.values())
