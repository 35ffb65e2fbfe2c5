"""Posters: a clip file in; a small JPEG of one of its frames out, for thumbnails and the
`poster` of a video player.

The frame is the one at a third of the clip: a chained shot's first frame is its parent's
last, so the opening frame would make every poster of a chain look alike. Found by seeking
to the keyframe before it and decoding forward, so a poster costs one GOP, not the clip.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream
from PIL import Image

from ..errors import MediaError
from .probe import media_errors, open_input, time_base, video_duration, video_stream

__all__ = ["POSTER_WIDTH", "poster_jpeg"]

# Twice the width a thumbnail is shown at, so it is sharp on a high-density screen; at
# quality 80 a 16:9 poster is 15-40 kB.
POSTER_WIDTH = 480
POSTER_QUALITY = 80
POSTER_AT = Fraction(1, 3)


def poster_jpeg(path: Path, width: int = POSTER_WIDTH) -> bytes:
    """The JPEG bytes of the frame a third of the way into `path`, `width` pixels wide."""
    with media_errors(path), open_input(path) as container:
        stream = video_stream(container, path)
        stream.thread_type = "AUTO"
        frame = _frame_near(container, stream, _target_pts(container, stream))
        if frame is None:
            raise MediaError(f"{path}: no frame could be decoded")
        image: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]  # untyped in PyAV
    return _jpeg(image, width)


def _target_pts(container: InputContainer, stream: VideoStream) -> int | None:
    seconds = video_duration(container, stream)
    if not seconds:
        return None
    return (stream.start_time or 0) + int(Fraction(seconds) * POSTER_AT / time_base(stream))


def _frame_near(container: InputContainer, stream: VideoStream, target: int | None
                ) -> VideoFrame | None:
    """The first frame at or after `target` (or the last one before the end of the file)."""
    if target is not None:
        try:
            container.seek(target, stream=stream, backward=True)
        except av.FFmpegError:
            pass  # a file that cannot seek: decode from where it stands, the start
    return _first_from(container.decode(stream), target)


def _first_from(frames: Iterable[VideoFrame], target: int | None) -> VideoFrame | None:
    last = None
    for frame in frames:
        if target is None or frame.pts is None or frame.pts >= target:
            return frame
        last = frame
    return last


def _jpeg(image: Image.Image, width: int) -> bytes:
    height = max(2, round(image.height * width / image.width))
    small = image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    # No metadata: the same pixels always give the same bytes, so the poster's hash is stable.
    small.save(buffer, format="JPEG", quality=POSTER_QUALITY, optimize=True)
    return buffer.getvalue()
