"""Splice: H.264 clips whose headers match our encoder in; a crossfaded film, out.

The GOPs clear of every seam are copied as they are; only the GOPs around each seam are
decoded, blended and encoded with a fresh encoder, and the encoded packets are rewritten
from Annex B start codes to MP4's length prefixes so both share one track.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import av
from av.codec.context import Flags
from av.packet import Packet
from av.video.codeccontext import VideoCodecContext
from av.video.stream import VideoStream

from ..errors import MediaError
from .clip import Canvas, Clip, Piece
from .copy import move_packet, video_key
from .encode import configure_encoder, pieces_frames, stamp_frame
from .formats import OutputFormat, open_output
from .probe import media_errors
from .sound import SoundQueue, film_sound

if TYPE_CHECKING:  # PyAV's Packet is generic only in its stubs
    AnyPacket = Packet[Any]

__all__ = ["can_splice", "splice_clips"]


def can_splice(clips: list[Clip], fmt: OutputFormat, canvas: Canvas) -> bool:
    """Copied and encoded packets share one track, so their H.264 headers must be equal."""
    key = video_key(clips[0])
    if fmt.video_codec != "libx264" or any(video_key(clip) != key for clip in clips[1:]):
        return False
    extradata = clips[0].video.codec_context.extradata or b""
    # an avcC record with 4-byte NAL lengths, the form encoded packets are rewritten to
    if key[0] != "h264" or len(extradata) < 7 or extradata[0] != 1 or extradata[4] & 3 != 3:
        return False
    return avcc_units(extradata) == annexb_units(_encoder(canvas, fmt).extradata or b"")


def _encoder(canvas: Canvas, fmt: OutputFormat) -> VideoCodecContext:
    """A stand-alone encoder whose headers go to extradata, where MP4 keeps them."""
    ctx = cast(VideoCodecContext, av.CodecContext.create(fmt.video_codec, "w"))
    configure_encoder(ctx, canvas, fmt)
    ctx.flags |= Flags.global_header
    ctx.open()
    return ctx


def _splice_plan(clips: list[Clip], fade: int) -> list[tuple[bool, list[Piece]]]:
    """Runs of (copy?, pieces): a clip's GOPs clear of its fades are copied, the rest encoded."""
    runs: list[tuple[bool, list[Piece]]] = []
    pending: list[Piece] = []
    last = len(clips) - 1
    for i, clip in enumerate(clips):
        count = len(clip.stamps)
        head = next((k for k in clip.keyframes if k >= fade), count) if i else 0
        tail = max((k for k in clip.keyframes if k <= count - fade), default=0)
        tail = count if i == last else tail
        if head >= tail:
            pending.append(Piece(clip, 0, count))
            continue
        if head:
            runs.append((False, [*pending, Piece(clip, 0, head)]))
        runs.append((True, [Piece(clip, head, tail)]))
        pending = [Piece(clip, tail, count)] if i < last else []
    return [*runs, (False, pending)] if pending else runs


def splice_clips(
    clips: list[Clip], tmp: Path, fmt: OutputFormat, canvas: Canvas, fade: int
) -> tuple[int, float]:
    with open_output(tmp, fmt) as output:
        video = output.add_stream_from_template(clips[0].video)
        sound = SoundQueue(output, fmt, film_sound(clips, canvas, fade))
        position = 0
        for copy, pieces in _splice_plan(clips, fade):
            packets = (_copy_gops(pieces[0], video, position, canvas) if copy
                       else _encode_pieces(pieces, video, position, canvas, fmt, fade))
            position += sound.mux(packets)
        sound.drain()
    return position, float(position / canvas.fps)


def _copy_gops(
    piece: Piece, video: VideoStream, position: int, canvas: Canvas
) -> Iterator[AnyPacket]:
    """The packets from the keyframe of frame `start` to the one of frame `stop`, moved."""
    clip = piece.clip
    first = clip.stamps[piece.start]
    stop = clip.stamps[piece.stop] if piece.stop < len(clip.stamps) else None
    ticks = round((position - piece.start) / canvas.fps / clip.time_base) - clip.origin
    with media_errors(clip.path):
        clip.container.seek(first, stream=clip.video, backward=True)
    count = 0
    for packet in clip.packets(clip.video):
        if packet.is_keyframe and packet.pts in (first, stop):
            if count or packet.pts == stop:
                break
        elif not count:
            continue  # before the first keyframe: the seek landed early
        move_packet(packet, ticks, video)
        count += 1
        yield packet
    if count != piece.stop - piece.start:
        raise MediaError(f"{clip.path}: {count} frames between keyframes {piece.start} "
                         f"and {piece.stop}, expected {piece.stop - piece.start}")


def _encode_pieces(
    pieces: list[Piece], video: VideoStream, position: int, canvas: Canvas, fmt: OutputFormat,
    fade: int,
) -> Iterator[AnyPacket]:
    """Encode the pieces with a fresh encoder, so the run starts on a keyframe of its own."""
    encoder = _encoder(canvas, fmt)
    frames = pieces_frames(pieces, canvas, fade)
    for index, frame in enumerate(frames, start=position):
        yield from _length_prefixed(encoder.encode(stamp_frame(frame, index, canvas)), video)
    yield from _length_prefixed(encoder.encode(None), video)


def _length_prefixed(packets: Iterable[AnyPacket], video: VideoStream) -> Iterator[AnyPacket]:
    """x264 writes start codes; MP4 samples hold each NAL unit after its 4-byte length."""
    for packet in packets:
        units = annexb_units(bytes(packet))
        rewritten: AnyPacket = Packet(b"".join(len(u).to_bytes(4, "big") + u for u in units))
        rewritten.pts, rewritten.dts = packet.pts, packet.dts
        rewritten.time_base, rewritten.duration = packet.time_base, packet.duration
        rewritten.is_keyframe = packet.is_keyframe
        rewritten.stream = video
        yield rewritten


_START_CODE = re.compile(b"\x00?\x00\x00\x01")


def avcc_units(avcc: bytes) -> list[bytes]:
    """The SPS and PPS NAL units of an avcC record, as MP4 keeps them (ISO 14496-15)."""
    units, pos = [], 5
    for mask in (0x1F, 0xFF):  # the SPS count shares its byte with reserved bits
        count, pos = avcc[pos] & mask, pos + 1
        for _ in range(count):
            size = int.from_bytes(avcc[pos : pos + 2], "big")
            units.append(avcc[pos + 2 : pos + 2 + size])
            pos += 2 + size
    return units


def annexb_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream, as x264 writes them, without start codes."""
    return [unit for unit in _START_CODE.split(data) if unit]
