"""Burn: a stitched film (an open, indexed `Clip`), a black card to put in front of it and
the `Overlay`s to draw (on the finished film's frame grid, the card first) in; the finished
film's video packets, in order, out.

Nothing to draw: the film's packets are copied as they are (if the container takes its
codec). Where the film's H.264 headers
match our encoder's, only the GOPs an overlay touches are decoded, drawn on and encoded with
a fresh encoder (as `splice` does around a seam), the card is encoded the same way, and every
other GOP is copied. Otherwise the whole picture is encoded anew.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from enum import StrEnum
from itertools import chain
from typing import TYPE_CHECKING, Any, cast

from av.container import OutputContainer
from av.packet import Packet
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from .clip import Canvas, Clip, Piece
from .copy import move_packet
from .encode import configure_encoder, stamp_frame
from .formats import OutputFormat
from .splice import can_splice, copy_gops, length_prefixed, splice_encoder
from .text import Overlay, black_frame, draw_overlays

if TYPE_CHECKING:  # PyAV's Packet is generic only in its stubs
    AnyPacket = Packet[Any]

__all__ = ["BurnMethod", "burn_packets", "gop_runs"]


class BurnMethod(StrEnum):
    COPY = "copy"  # nothing drawn: every packet as it was
    SPLICE = "splice"  # the GOPs drawn on encoded, the others copied
    REENCODE = "reencode"


def burn_packets(film: Clip, canvas: Canvas, output: OutputContainer, fmt: OutputFormat,
                 lead: int, overlays: Sequence[Overlay]
                 ) -> tuple[BurnMethod, Iterator[AnyPacket]]:
    """Add the video stream to `output`; return how the picture is made and its packets."""
    if not lead and not overlays and film.video.codec_context.name in fmt.copy_video:
        video = output.add_stream_from_template(film.video)
        return BurnMethod.COPY, _copied(film, video)
    if can_splice([film], fmt, canvas):
        video = output.add_stream_from_template(film.video)
        return BurnMethod.SPLICE, _spliced(film, video, canvas, fmt, lead, overlays)
    video = cast(VideoStream, output.add_stream(fmt.video_codec, rate=canvas.fps))
    configure_encoder(video.codec_context, canvas, fmt)
    return BurnMethod.REENCODE, _encoded(film, video, canvas, lead, overlays)


def _copied(film: Clip, video: VideoStream) -> Iterator[AnyPacket]:
    film.container.seek(0)
    for packet in film.packets(film.video):
        move_packet(packet, 0, video)
        yield packet


def gop_runs(film: Clip, touched: Sequence[tuple[int, int]]) -> list[tuple[bool, int, int]]:
    """The film's frames in runs (drawn on?, first, stop): whole GOPs, split only where a
    copy may start and the frames before it need nothing after (see `Clip.index`)."""
    count = len(film.stamps)
    starts = [0, *(k for k in film.keyframes if 0 < k and k in film.clean_ends), count]
    runs: list[tuple[bool, int, int]] = []
    for first, stop in zip(starts, starts[1:]):
        drawn = any(a < stop and first < b for a, b in touched)
        if runs and runs[-1][0] == drawn:
            runs[-1] = (drawn, runs[-1][1], stop)
        else:
            runs.append((drawn, first, stop))
    return runs


def _spliced(film: Clip, video: VideoStream, canvas: Canvas, fmt: OutputFormat, lead: int,
             overlays: Sequence[Overlay]) -> Iterator[AnyPacket]:
    if lead:
        yield from _encode_run(_card(canvas, lead), 0, video, canvas, fmt, overlays)
    touched = [(o.first - lead, o.stop - lead) for o in overlays if o.stop > lead]
    for drawn, first, stop in gop_runs(film, touched):
        if drawn:
            frames = film.frames(canvas, first, stop)
            yield from _encode_run(frames, lead + first, video, canvas, fmt, overlays)
        else:
            yield from copy_gops(Piece(film, first, stop), video, lead + first, canvas)


def _encode_run(frames: Iterator[VideoFrame], position: int, video: VideoStream,
                canvas: Canvas, fmt: OutputFormat, overlays: Sequence[Overlay]
                ) -> Iterator[AnyPacket]:
    """Frames from film frame `position` on, drawn on and encoded by a fresh encoder, so the
    run starts on a keyframe of its own."""
    encoder, full = splice_encoder(canvas, fmt), canvas.colour[0] == 2
    for index, frame in enumerate(frames, start=position):
        drawn = draw_overlays(frame, index, overlays, full)
        yield from length_prefixed(encoder.encode(stamp_frame(drawn, index, canvas)), video)
    yield from length_prefixed(encoder.encode(None), video)


def _encoded(film: Clip, video: VideoStream, canvas: Canvas, lead: int,
             overlays: Sequence[Overlay]) -> Iterator[AnyPacket]:
    frames = chain(_card(canvas, lead), film.frames(canvas, 0, canvas.frames_in(film)))
    for index, frame in enumerate(frames):
        drawn = draw_overlays(frame, index, overlays, canvas.colour[0] == 2)
        yield from video.encode(stamp_frame(drawn, index, canvas))
    yield from video.encode(None)


def _card(canvas: Canvas, frames: int) -> Iterator[VideoFrame]:
    """The black frames of a title card (new ones: the encoder may hold on to each)."""
    for _ in range(frames):
        yield black_frame(canvas.width, canvas.height, canvas.colour[0] == 2)
