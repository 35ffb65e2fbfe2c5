"""Probe: a clip file in; what it is (container, codec, size, frame rate, length), out.

Also the small helpers every media module reads a file with, and `media_errors`, the one
place that turns PyAV/FFmpeg and file-system failures into a `MediaError` naming the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.container import InputContainer
from av.stream import Stream
from av.video.stream import VideoStream

from ..errors import MediaError

__all__ = ["Probe", "frame_rate", "media_errors", "open_input", "probe_video", "time_base",
           "video_duration", "video_stream"]


@dataclass(frozen=True)
class Probe:
    """What a clip is: enough to record it in the lock file and to decide how to stitch it."""

    path: str
    container: str
    codec: str
    width: int
    height: int
    pix_fmt: str
    fps: Fraction
    frames: int
    duration: float
    has_audio: bool

    def to_dict(self) -> dict[str, object]:
        """JSON-able, keys in field order; fps as "num/den" so it survives a round trip."""
        data = asdict(self)
        data["fps"] = f"{self.fps.numerator}/{self.fps.denominator}"
        data["duration"] = round(self.duration, 6)
        return data


@contextmanager
def media_errors(path: Path | str) -> Iterator[None]:
    """Turn a PyAV/FFmpeg or file-system failure about `path` into a MediaError naming it."""
    try:
        yield
    except (av.FFmpegError, OSError) as exc:  # PyAV's errors about files are OSErrors too
        reason = exc.strerror or type(exc).__name__
        raise MediaError(f"{path}: {reason}") from exc


def open_input(path: Path) -> InputContainer:
    with media_errors(path):
        return av.open(str(path), "r")


def video_stream(container: InputContainer, path: Path | str) -> VideoStream:
    if not container.streams.video:
        raise MediaError(f"{path}: no video stream")
    return container.streams.video[0]


def time_base(stream: Stream) -> Fraction:
    """A demuxed stream always has a time base; PyAV's types allow None for unopened ones."""
    if stream.time_base is None:
        raise MediaError(f"stream {stream.index} has no time base")
    return stream.time_base


def video_duration(container: InputContainer, stream: VideoStream) -> float:
    """Seconds of video; WebM streams carry no duration, so fall back to the container's."""
    if stream.duration:
        return float(stream.duration * time_base(stream))
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def probe_video(path: Path) -> Probe:
    with media_errors(path), open_input(path) as container:
        stream = video_stream(container, path)
        ctx = stream.codec_context
        return Probe(
            path=str(path),
            container=_container_name(container, ctx.name),
            codec=ctx.name,
            width=ctx.width,
            height=ctx.height,
            pix_fmt=ctx.pix_fmt or "",
            fps=frame_rate(stream),
            frames=_frame_count(container, stream),
            duration=video_duration(container, stream),
            has_audio=bool(container.streams.audio),
        )


def _container_name(container: InputContainer, codec: str) -> str:
    """A short name: FFmpeg calls MP4 and MOV both "mov,mp4,...", and WebM "matroska,webm"."""
    names = container.format.name.split(",")
    if "mp4" in names:
        return "mov" if container.metadata.get("major_brand", "").strip() == "qt" else "mp4"
    if "webm" in names:
        return "webm" if codec in {"vp8", "vp9", "av1"} else "mkv"
    return names[0]


def frame_rate(stream: VideoStream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return Fraction(rate) if rate else Fraction(0)


def _frame_count(container: InputContainer, stream: VideoStream) -> int:
    """The muxer's count when it wrote one; otherwise count packets, which needs no decoding."""
    if stream.frames:
        return stream.frames
    return sum(1 for packet in container.demux(stream) if packet.size)
