"""Benchmark: the simulator's renderer against a bare PyAV encode on the same machine.

Input: nothing (pictures are made here). Output: a table on stdout, one row per case with
the median wall time of 3 renders, its ratio to the yardstick (PyAV encoding 120 black
1280x720 frames with libx264 ultrafast, measured in the same run) and the median CPU time,
which shows how much of the wall time other work on the machine took.

Run: python bench/render.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pipeline.simulator.render import EXTENSIONS, RenderSpec, render_clip

RUNS = 3


def median_seconds(job: Callable[[], object]) -> tuple[float, float]:
    """Median wall time and median CPU time (all threads of this process) of RUNS runs."""
    walls, cpus = [], []
    for _ in range(RUNS):
        wall, cpu = time.perf_counter(), time.process_time()
        job()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def yardstick(path: Path) -> None:
    """120 identical black 1280x720 frames, libx264 ultrafast, as plainly as PyAV allows."""
    black = np.zeros((720, 1280, 3), np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        for index in range(120):
            frame = av.VideoFrame.from_ndarray(black, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def photo(seed: int) -> Image.Image:
    """A 1920x1080 picture with gradients and soft shapes, standing in for an upload."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:1080, 0:1920].astype(np.float32)
    base = np.stack([xx / 1920 * 200 + 30, yy / 1080 * 180 + 40, 220 - xx / 1920 * 150], axis=2)
    image = Image.fromarray(base.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(30):
        x, y = int(rng.integers(0, 1920)), int(rng.integers(0, 1080))
        r = int(rng.integers(20, 300))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    return image.filter(ImageFilter.GaussianBlur(2))


def cases() -> dict[str, RenderSpec]:
    prompt = "a lighthouse on a cliff at sunset, waves crashing, cinematic"
    base: dict[str, Any] = {"width": 1280, "height": 720, "prompt": prompt, "seed": 42}
    return {
        "text-to-video 5 s MP4, zoom_in": RenderSpec(duration=5, camera_movement="zoom_in",
                                                     **base),
        "first+last frame 5 s MP4, pan_right": RenderSpec(
            duration=5, camera_movement="pan_right", first_frame=photo(1), last_frame=photo(2),
            **base),
        "text-to-video 8 s MP4, auto_camera": RenderSpec(duration=8, camera_movement="auto_camera",
                                                       **base),
        "text-to-video 5 s WEBM, zoom_in": RenderSpec(duration=5, camera_movement="zoom_in",
                                                    output_format="WEBM", **base),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        stick, stick_cpu = median_seconds(lambda: yardstick(out / "yardstick.mp4"))
        print(f"yardstick: PyAV ultrafast, 120 black 1280x720 frames: {stick:.3f} s wall, "
              f"{stick_cpu:.3f} s CPU (medians of {RUNS})")
        print(f"{'case':40} {'wall s':>7} {'x yardstick':>12} {'CPU s':>7}")
        for name, spec in cases().items():
            path = out / f"clip.{EXTENSIONS[spec.output_format]}"
            seconds, cpu = median_seconds(lambda: render_clip(spec, path))
            print(f"{name:40} {seconds:7.3f} {seconds / stick:12.2f} {cpu:7.3f}")


if __name__ == "__main__":
    main()
