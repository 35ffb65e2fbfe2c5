"""Re-encoding: pieces of clips in; the film encoded anew on one canvas, out.

Every piece is decoded onto the canvas (size and frame rate), neighbours blended over a
crossfade (`fades[i]` frames between piece i and the next), and the whole encoded with fixed
settings, so the same inputs give the same bytes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import cast

from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType, VideoFrame
from av.video.stream import VideoStream

from .clip import Canvas, Piece, blend_frames
from .formats import ENCODER_THREADS, OutputFormat, open_output
from .sound import SoundQueue, film_sound

__all__ = ["configure_encoder", "pieces_frames", "encode_pieces", "stamp_frame"]


def encode_pieces(
    pieces: list[Piece], tmp: Path, fmt: OutputFormat, canvas: Canvas, fades: Sequence[int]
) -> tuple[int, float]:
    """Decode every piece and encode the film anew, crossfading `fades[i]` frames after
    piece i."""
    with open_output(tmp, fmt) as output:
        stream = cast(VideoStream, output.add_stream(fmt.video_codec, rate=canvas.fps))
        configure_encoder(stream.codec_context, canvas, fmt)
        sound = SoundQueue(output, fmt, film_sound(pieces, canvas, fades))
        frames = 0
        for frame in pieces_frames(pieces, canvas, fades):
            sound.mux(stream.encode(stamp_frame(frame, frames, canvas)))
            frames += 1
        sound.mux(stream.encode(None))
        sound.drain()
    return frames, float(frames / canvas.fps)


def configure_encoder(ctx: VideoCodecContext, canvas: Canvas, fmt: OutputFormat) -> None:
    ctx.width, ctx.height, ctx.pix_fmt = canvas.width, canvas.height, "yuv420p"
    ctx.time_base = 1 / canvas.fps
    ctx.framerate = canvas.fps
    ctx.gop_size = max(1, int(canvas.fps))  # a keyframe at least every second
    ctx.thread_count = ENCODER_THREADS
    ctx.options = fmt.video_options
    # tagged as the first clip is, so players convert the colours the same way
    ctx.color_range, ctx.color_primaries, ctx.color_trc, ctx.colorspace = canvas.colour


def stamp_frame(frame: VideoFrame, index: int, canvas: Canvas) -> VideoFrame:
    frame.pts, frame.time_base = index, 1 / canvas.fps
    frame.pict_type = PictureType.NONE  # else the source's keyframes are forced on the encoder
    return frame


def pieces_frames(
    pieces: list[Piece], canvas: Canvas, fades: Sequence[int]
) -> Iterator[VideoFrame]:
    """All pieces in order, the last `fades[i]` frames of piece i blended into the first ones
    of piece i + 1."""
    tail: list[VideoFrame] = []
    for i, piece in enumerate(pieces):
        frames = piece.clip.frames(canvas, piece.start, piece.stop)
        fade = len(tail)
        for j, (a, b) in enumerate(zip(tail, frames)):
            yield blend_frames(a, b, Fraction(j + 1, fade + 1))
        tail = yield from _hold_back(frames, fades[i] if i < len(pieces) - 1 else 0)


def _hold_back(
    frames: Iterable[VideoFrame], keep: int
) -> Generator[VideoFrame, None, list[VideoFrame]]:
    """Yield all but the last `keep` frames and return those."""
    held: deque[VideoFrame] = deque()
    for frame in frames:
        held.append(frame)
        if len(held) > keep:
            yield held.popleft()
    return list(held)
