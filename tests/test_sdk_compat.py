"""Runware's official Python SDK (`runware-sdk` from PyPI, REST transport) against the
simulator on a real socket: what it sends is accepted, what it gets back it understands,
and the video it is pointed at plays."""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import io
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from PIL import Image

from pipeline.simulator.app import SimulatorConfig
from pipeline.simulator.serve import serving


def _sdk_version() -> str | None:
    """The installed runware-sdk's version, if it is there and imports."""
    try:
        version = importlib.metadata.version("runware-sdk")
        importlib.import_module("runware")
    except (importlib.metadata.PackageNotFoundError, ImportError):
        return None
    return version


SDK_VERSION = _sdk_version()
pytestmark = pytest.mark.skipif(
    SDK_VERSION is None,
    reason="the official SDK is not installed (pip install 'storyreel[sdk]', PyPI "
           "runware-sdk>=1.8); nothing else needs it",
)


def frame_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 360), (180, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


async def run_with_sdk(url: str, api_key: str, task: dict[str, Any]
                       ) -> tuple[list[dict[str, Any]], str]:
    from runware import Runware, file_to_data_uri

    async with Runware(api_key=api_key, transport="rest", http_base_url=url,
                       max_retries=1, retry_delay=50) as sdk:
        [upload] = await sdk.image_upload({"image": file_to_data_uri(frame_png())})
        task = {**task, "inputs": {"frameImages": [upload["imageUUID"]]}}
        results = await sdk.run(task)
    return results, upload["imageUUID"]


def test_the_sdk_runs_a_pixverse_task_end_to_end(tmp_path: Path) -> None:
    task = {"taskType": "videoInference", "model": "pixverse:1@3",
            "positivePrompt": "a tram climbing a hill at dawn", "width": 640, "height": 360,
            "duration": 5, "seed": 97355, "includeCost": True,
            "providerSettings": {"pixverse": {"cameraMovement": "left_follow"}}}
    with serving(SimulatorConfig(latency=(0.2, 0.4))) as served:
        results, image_uuid = asyncio.run(run_with_sdk(served.url, "sdk-key", task))
        [result] = results
        assert (result["status"], result["seed"], result["cost"]) == ("success", 97355, 0.15)
        clip = tmp_path / "clip.mp4"
        clip.write_bytes(httpx.get(result["videoURL"], timeout=30).raise_for_status().content)
        stats = served.app.stats
        record = served.app.state.tasks[result["taskUUID"]]
    assert record.frames == {"first": image_uuid}
    assert stats.requests["videoInference"] == 1 and stats.requests["getResponse"] >= 1
    assert stats.requests["imageUpload"] == 1 and stats.generations == 1
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert (stream.codec_context.width, stream.codec_context.height) == (640, 360)
    assert abs(frames - 120) <= 1


def test_the_sdk_reads_the_simulators_refusals() -> None:
    from runware import RunwareError

    async def refused(url: str, key: str, task: dict[str, Any]) -> RunwareError:
        from runware import Runware

        async with Runware(api_key=key, transport="rest", http_base_url=url,
                           max_retries=0) as sdk:
            with pytest.raises(RunwareError) as caught:
                await sdk.run(task)
        return caught.value

    bad = {"taskType": "videoInference", "model": "pixverse:1@3", "positivePrompt": "x",
           "resolution": "360p"}
    good = {**bad, "positivePrompt": "a quiet street"}
    with serving(SimulatorConfig(api_key="the-key", latency=(0, 0))) as served:
        wrong_key = asyncio.run(refused(served.url, "not-the-key", good))
        bad_prompt = asyncio.run(refused(served.url, "the-key", bad))
    assert (wrong_key.code, wrong_key.status_code) == ("auth", 401)
    assert (bad_prompt.code, bad_prompt.status_code) == ("validation", 400)
    assert bad_prompt.parameter == "positivePrompt"
