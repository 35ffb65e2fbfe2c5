"""Small synthetic clips for media tests, and ways to read them back.

Every frame of a test clip shows its own index as ten black/white blocks across the top half
and the clip's colour in the bottom half, so a test can read back which frame it got.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.stream import VideoStream

from pipeline.media.formats import H264_OPTIONS

W, H, FPS = 320, 180, 24
RED, GREEN, BLUE, YELLOW = (200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40)
Picture = npt.NDArray[np.uint8]


def picture(index: int, colour: tuple[int, int, int], width: int = W, height: int = H) -> Picture:
    img = np.empty((height, width, 3), np.uint8)
    img[:] = colour
    block = width // 10
    for bit in range(10):
        img[: height // 2, bit * block : (bit + 1) * block] = 255 if index >> bit & 1 else 0
    return img


def frame_number(img: Picture) -> int:
    height, width = img.shape[:2]
    block = width // 10
    bits = [img[: height // 2, b * block : (b + 1) * block].mean() > 128 for b in range(10)]
    return sum(1 << b for b, on in enumerate(bits) if on)


def psnr(a: Picture, b: Picture) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def make_clip(
    path: Path,
    frames: int,
    colour: tuple[int, int, int] = RED,
    *,
    size: tuple[int, int] = (W, H),
    fps: int = FPS,
    options: dict[str, str] = H264_OPTIONS,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    audio: bool = False,
) -> Path:
    """A clip with a keyframe every 24 frames, written the way a test needs it."""
    with av.open(str(path), "w") as container:
        stream = cast(VideoStream, container.add_stream(codec, rate=fps, options=dict(options)))
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], pix_fmt
        stream.codec_context.gop_size = 24
        sound = container.add_stream("aac", rate=48000) if audio else None
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(picture(i, colour, *size), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if sound is not None:
            _add_tone(container, sound, frames / fps)
    return path


def _add_tone(container: OutputContainer, stream: AudioStream, seconds: float) -> None:
    t = np.arange(int(seconds * 48000)) / 48000
    wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
    frame.sample_rate, frame.pts = 48000, 0
    container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def write_pictures(path: Path, pictures: list[Picture], options: dict[str, str],
                   gop: int | None = None) -> Path:
    """An H.264 clip of exactly these pictures, one frame each, with libx264 `options` (and
    a keyframe every `gop` frames, when given)."""
    with av.open(str(path), "w") as container:
        stream = cast(VideoStream, container.add_stream("libx264", rate=FPS,
                                                        options=dict(options)))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        if gop is not None:
            stream.codec_context.gop_size = gop
        for i, img in enumerate(pictures):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def decoded(path: Path) -> list[Picture]:
    with av.open(str(path)) as container:
        frames = container.decode(video=0)
        return [np.asarray(f.to_ndarray(format="rgb24"), np.uint8) for f in frames]


def video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(video=0) if p.size]
