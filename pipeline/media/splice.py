"""Splice: pieces of H.264 clips whose headers match our encoder in; the film, out.

The GOPs clear of every seam and every cut are copied as they are; only the frames around
each (a crossfade, or a cut that does not fall on a keyframe) are decoded, blended and
encoded with a fresh encoder, and the encoded packets are rewritten from Annex B start codes
to MP4's length prefixes so both share one track.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
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

__all__ = ["can_splice", "copy_gops", "length_prefixed", "splice_encoder", "splice_pieces"]


def can_splice(clips: list[Clip], fmt: OutputFormat, canvas: Canvas) -> bool:
    """Copied and encoded packets share one track, so their H.264 headers must be equal."""
    key = video_key(clips[0])
    if fmt.video_codec != "libx264" or any(video_key(clip) != key for clip in clips[1:]):
        return False
    extradata = clips[0].video.codec_context.extradata or b""
    # an avcC record with 4-byte NAL lengths, the form encoded packets are rewritten to
    if key[0] != "h264" or len(extradata) < 7 or extradata[0] != 1 or extradata[4] & 3 != 3:
        return False
    return avcc_units(extradata) == annexb_units(splice_encoder(canvas, fmt).extradata or b"")


def splice_encoder(canvas: Canvas, fmt: OutputFormat) -> VideoCodecContext:
    """A stand-alone encoder whose headers go to extradata, where MP4 keeps them."""
    ctx = cast(VideoCodecContext, av.CodecContext.create(fmt.video_codec, "w"))
    configure_encoder(ctx, canvas, fmt)
    ctx.flags |= Flags.global_header
    ctx.open()
    return ctx


Run = tuple[bool, list[Piece], list[int]]  # copy?, pieces, crossfade frames between them


def _splice_plan(entries: list[Piece], fades: Sequence[int]) -> list[Run]:
    """Runs to copy or encode: each entry's GOPs clear of its fades and cuts are copied, the
    rest encoded; an encoded run may join the end of one entry and the start of the next."""
    runs: list[Run] = []
    pending: list[Piece] = []
    joins: list[int] = []
    for i, entry in enumerate(entries):
        fade_in = fades[i - 1] if i else 0
        head, tail = _copied(entry, fade_in, fades[i] if i < len(entries) - 1 else 0)
        if head > entry.start or head >= tail:
            joins += [fade_in] if pending else []
            pending.append(Piece(entry.clip, entry.start, entry.stop if head >= tail else head))
        if head >= tail:
            continue
        if pending:
            runs.append((False, pending, joins))
        runs.append((True, [Piece(entry.clip, head, tail)], []))
        pending, joins = ([Piece(entry.clip, tail, entry.stop)] if tail < entry.stop else []), []
    return [*runs, (False, pending, joins)] if pending else runs


def _copied(entry: Piece, fade_in: int, fade_out: int) -> tuple[int, int]:
    """The frames [head, tail) of an entry that copy: from the first keyframe clear of its
    fade in, to the last place clear of its fade out that nothing before it needs."""
    clip = entry.clip
    head = next((k for k in clip.keyframes if k >= entry.start + fade_in), entry.stop)
    tail = max((e for e in clip.clean_ends if head < e <= entry.stop - fade_out), default=head)
    return head, tail


def splice_pieces(
    entries: list[Piece], tmp: Path, fmt: OutputFormat, canvas: Canvas, fades: Sequence[int]
) -> tuple[int, float]:
    with open_output(tmp, fmt) as output:
        video = output.add_stream_from_template(entries[0].clip.video)
        sound = SoundQueue(output, fmt, film_sound(entries, canvas, fades))
        position = 0
        for copy, pieces, joins in _splice_plan(entries, fades):
            packets = (copy_gops(pieces[0], video, position, canvas) if copy
                       else _encode_pieces(pieces, video, position, canvas, fmt, joins))
            position += sound.mux(packets)
        sound.drain()
    return position, float(position / canvas.fps)


def copy_gops(
    piece: Piece, video: VideoStream, position: int, canvas: Canvas
) -> Iterator[AnyPacket]:
    """The packets of frames [start, stop), from the keyframe of `start` on, moved."""
    clip = piece.clip
    low = clip.stamps[piece.start]
    high = clip.stamps[piece.stop] if piece.stop < len(clip.stamps) else None
    ticks = round((position - piece.start) / canvas.fps / clip.time_base) - clip.origin
    with media_errors(clip.path):
        clip.container.seek(low, stream=clip.video, backward=True)
    count, wanted = 0, piece.stop - piece.start
    for packet in clip.packets(clip.video):
        pts = packet.pts or 0
        if not count and not (packet.is_keyframe and pts == low):
            continue  # before the first keyframe: the seek landed early
        if pts < low or (high is not None and pts >= high):
            break
        move_packet(packet, ticks, video)
        count += 1
        yield packet
        if count == wanted:
            return
    raise MediaError(f"{clip.path}: {count} frames from frame {piece.start} before frame "
                     f"{piece.stop}, expected {wanted}")


def _encode_pieces(
    pieces: list[Piece], video: VideoStream, position: int, canvas: Canvas, fmt: OutputFormat,
    joins: Sequence[int],
) -> Iterator[AnyPacket]:
    """Encode the pieces with a fresh encoder, so the run starts on a keyframe of its own."""
    encoder = splice_encoder(canvas, fmt)
    frames = pieces_frames(pieces, canvas, joins)
    for index, frame in enumerate(frames, start=position):
        yield from length_prefixed(encoder.encode(stamp_frame(frame, index, canvas)), video)
    yield from length_prefixed(encoder.encode(None), video)


def length_prefixed(packets: Iterable[AnyPacket], video: VideoStream) -> Iterator[AnyPacket]:
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
