"""Frames: a clip file in; one of its frames as an RGB image, and that image as a PNG, out;
and a packed yuv420p frame's Y, U and V planes.

The last frame of a shot becomes the first frame of the next: "first", "last" or a 0-based
index (negative from the end) is found from packet timestamps, decoding as little as it can.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator
from fractions import Fraction
from itertools import islice
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream
from PIL import Image

from ..errors import MediaError
from ..store.atomic import write_atomic
from .probe import media_errors, open_input, time_base, video_duration, video_stream

__all__ = ["Planes", "extract_frame", "save_png", "split_planes"]

U8 = npt.NDArray[np.uint8]
Planes = tuple[U8, U8, U8]


# zlib level 1: a 720p frame compresses in a fraction of the time of level 6 and is at most a
# few percent larger; the PNG is uploaded once and hashed, so speed matters more than bytes.
PNG_COMPRESS_LEVEL = 1


def extract_frame(path: Path, which: str | int) -> Image.Image:
    """One frame as an RGB image: "first", "last", or a 0-based index (negative from the end)."""
    index = _frame_index(which)
    with media_errors(path), open_input(path) as container:
        stream = video_stream(container, path)
        stream.thread_type = "AUTO"
        if index == 0:
            frame = _first_frame(container, stream)
        elif index == -1:
            frame = _last_frame(container, stream, path)
        else:
            frame = _frame_at(container, stream, index, path)
        if frame is None:
            raise MediaError(f"{path}: no frame could be decoded")
        return _to_image(frame)


def _to_image(frame: VideoFrame) -> Image.Image:
    image: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]  # untyped in PyAV
    return image


def _frame_index(which: str | int) -> int:
    if which == "first":
        return 0
    if which == "last":
        return -1
    if isinstance(which, int) and not isinstance(which, bool):
        return which
    raise ValueError(f"frame must be 'first', 'last' or an integer, not {which!r}")


def _first_frame(container: InputContainer, stream: VideoStream) -> VideoFrame | None:
    return next(container.decode(stream), None)


def _last_frame(
    container: InputContainer, stream: VideoStream, path: Path
) -> VideoFrame | None:
    """Seek to the keyframe before the end and decode to EOF; flushing yields the B-frames."""
    end = _end_pts(container, stream)
    if end is not None and _seek(container, stream, end):
        frame = _latest(container.decode(stream))
        if frame is not None:
            return frame
    # No duration, no index, or the seek landed past the data: decode it all from the start.
    return _latest(_decode_afresh(path))


def _seek(container: InputContainer, stream: VideoStream, pts: int) -> bool:
    """Seek back to the keyframe at or before `pts`; False where the file cannot seek."""
    try:
        container.seek(pts, stream=stream, backward=True)
    except av.FFmpegError:
        return False
    return True


def _end_pts(container: InputContainer, stream: VideoStream) -> int | None:
    seconds = video_duration(container, stream)
    if not seconds:
        return None
    return (stream.start_time or 0) + int(Fraction(seconds) / time_base(stream))


def _latest(frames: Iterable[VideoFrame]) -> VideoFrame | None:
    """The frame shown last: decoders emit in presentation order, but trust timestamps."""
    best: VideoFrame | None = None
    for frame in frames:
        if best is None or (frame.pts or 0) >= (best.pts or 0):
            best = frame
    return best


def _frame_at(
    container: InputContainer, stream: VideoStream, index: int, path: Path
) -> VideoFrame | None:
    """Find the index-th timestamp from the packets (no decoding), then seek and decode to it."""
    stamps = [p.pts for p in container.demux(stream) if p.size]
    if not -len(stamps) <= index < len(stamps):
        raise MediaError(f"{path}: frame {index} is out of range; the clip has {len(stamps)}")
    if None in stamps:  # an elementary stream without timestamps: count decoded frames
        return next(islice(_decode_afresh(path), index % len(stamps), None), None)
    target = sorted(pts for pts in stamps if pts is not None)[index]
    if _seek(container, stream, target):
        frame = _frame_with_pts(container.decode(stream), target)
        if frame is not None:
            return frame
    return _frame_with_pts(_decode_afresh(path), target)  # the seek failed or missed


def _decode_afresh(path: Path) -> Iterator[VideoFrame]:
    """Every frame from a new open of the file: for files that cannot seek."""
    with open_input(path) as container:
        yield from container.decode(video_stream(container, path))


def _frame_with_pts(frames: Iterable[VideoFrame], target: int) -> VideoFrame | None:
    for frame in frames:
        if frame.pts == target:
            return frame
        if frame.pts is not None and frame.pts > target:
            return None
    return None


def save_png(image: Image.Image, out: Path) -> str:
    """Write `image` as PNG atomically; the same pixels always give the same bytes."""
    buffer = io.BytesIO()
    # No metadata is passed, so nothing time- or host-dependent ends up in the file.
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    data = buffer.getvalue()
    with media_errors(out):
        write_atomic(out, data)
    return hashlib.sha256(data).hexdigest()


def split_planes(buf: U8, width: int, height: int) -> Planes:
    """Views of the Y, U and V planes in a packed yuv420p buffer."""
    flat = buf.reshape(-1)
    luma, quarter = width * height, width * height // 4
    chroma = (height // 2, width // 2)
    return (flat[:luma].reshape(height, width),
            flat[luma:luma + quarter].reshape(chroma),
            flat[luma + quarter:luma + 2 * quarter].reshape(chroma))
