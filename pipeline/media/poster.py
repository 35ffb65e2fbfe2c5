"""Posters: a clip file in; a small JPEG of one of its frames out, for thumbnails and the
`poster` of a video player.

The frame is the keyframe at or before a third of the clip: a chained shot's first frame is
its parent's last, so the opening frame would make every poster of a chain look alike. A
keyframe decodes alone, so a poster costs one frame; only when the nearest keyframe is the
clip's first frame (a long GOP) is the clip decoded on to the third.
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
        height = max(2, round(frame.height * width / frame.width))
        # Scaled by FFmpeg's swscale while converting to RGB: a fraction of PIL's resize time.
        image: Image.Image = frame.to_image(  # type: ignore[no-untyped-call]  # untyped in PyAV
            width=width, height=height, interpolation="BILINEAR")
    return _jpeg(image)


def _target_pts(container: InputContainer, stream: VideoStream) -> int | None:
    seconds = video_duration(container, stream)
    if not seconds:
        return None
    return (stream.start_time or 0) + int(Fraction(seconds) * POSTER_AT / time_base(stream))


def _frame_near(container: InputContainer, stream: VideoStream, target: int | None
                ) -> VideoFrame | None:
    """The keyframe the seek to `target` lands on, or a frame near `target`."""
    if target is not None:
        try:
            container.seek(target, stream=stream, backward=True)
        except av.FFmpegError:
            pass  # a file that cannot seek: decode from where it stands, the start
    return _first_from(container.decode(stream), target)


def _first_from(frames: Iterable[VideoFrame], target: int | None) -> VideoFrame | None:
    """The first frame decoded after the seek, unless that is the opening frame of the clip:
    then the first one at `target` (or the last there is)."""
    first: VideoFrame | None = None
    last = None
    for frame in frames:
        if first is None:
            first = frame
            if target is None or frame.pts is None or frame.key_frame and frame.pts > 0:
                return frame
        if frame.pts is not None and target is not None and frame.pts >= target:
            return frame
        last = frame
    return last


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    # No metadata: the same pixels always give the same bytes, so the poster's hash is stable.
    image.save(buffer, format="JPEG", quality=POSTER_QUALITY)
    return buffer.getvalue()
