"""Stream copy: clips that agree on codec, size, frame rate and headers in; the film, out.

Packets are moved onto the film's timeline and muxed as they are: no pixel is decoded. The
sound is copied too, minus what runs past each clip's picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.packet import Packet
from av.stream import Stream
from av.video.stream import VideoStream

from .clip import Clip
from .formats import OutputFormat, open_output
from .probe import time_base, video_duration

if TYPE_CHECKING:  # PyAV's Packet is generic only in its stubs
    AnyPacket = Packet[Any]

__all__ = ["can_copy", "copy_clips", "move_packet", "video_key"]


def video_key(clip: Clip) -> tuple[object, ...]:
    """What must agree for packets of different clips to play in one video track."""
    ctx = clip.video.codec_context
    return (ctx.name, ctx.width, ctx.height, ctx.pix_fmt, clip.video.average_rate,
            ctx.profile, ctx.extradata)


def _audio_key(clip: Clip) -> tuple[object, ...] | None:
    if clip.audio is None:
        return None
    ctx = clip.audio.codec_context
    return (ctx.name, ctx.sample_rate, ctx.layout.name, ctx.extradata, clip.audio.time_base)


def can_copy(clips: list[Clip], fmt: OutputFormat) -> bool:
    first = clips[0]
    picture, sound = first.video.codec_context.name, first.audio and first.audio.codec_context.name
    if picture not in fmt.copy_video or sound not in {None, *fmt.copy_audio}:
        return False
    keys = (video_key(first), _audio_key(first))
    return all((video_key(clip), _audio_key(clip)) == keys for clip in clips[1:])


def copy_clips(clips: list[Clip], tmp: Path, fmt: OutputFormat) -> tuple[int, float]:
    with open_output(tmp, fmt) as output:
        video = output.add_stream_from_template(clips[0].video)
        audio = output.add_stream_from_template(clips[0].audio) if clips[0].audio else None
        offset, frames, clock = Fraction(0), 0, _SoundClock()
        for clip in clips:
            count, length = _copy_clip(clip, output, (video, audio), offset, clock)
            offset, frames = offset + length, frames + count
    return frames, float(offset)


@dataclass
class _SoundClock:
    """How far the copied sound has got, in ticks of its time base (the same in every clip)."""

    last: int = -(2**62)  # decode time of the last packet written
    limit: int = 0  # end of the current clip's picture


def _copy_clip(
    clip: Clip,
    output: OutputContainer,
    streams: tuple[VideoStream, AudioStream | None],
    offset: Fraction,
    clock: _SoundClock,
) -> tuple[int, Fraction]:
    """Mux one clip's packets moved to start at `offset` seconds; return frames and length.

    The shift is worked out in ticks once per clip: Fractions per packet cost more than muxing.
    """
    tb, shift = clip.time_base, offset - (clip.video.start_time or 0) * clip.time_base
    ticks, step, frames, end = round(shift / tb), round(1 / (clip.fps * tb)), 0, 0
    sound_ticks = 0
    if clip.audio is not None:
        sound_tb, picture = time_base(clip.audio), video_duration(clip.container, clip.video)
        sound_ticks = round(shift / sound_tb)
        clock.limit = int((offset + Fraction(picture)) / sound_tb)
    for packet in clip.packets(clip.video, clip.audio):
        if packet.stream.type == "video":
            end = max(end, (packet.pts or 0) + (packet.duration or step))
            frames += 1
            move_packet(packet, ticks, streams[0])
        elif streams[1] is None or not _keep_sound(packet, sound_ticks, clock):
            continue
        else:
            move_packet(packet, sound_ticks, streams[1])
        output.mux_one(packet)
    return frames, (end + ticks) * tb - offset


def move_packet(packet: AnyPacket, ticks: int, stream: Stream) -> None:
    packet.pts = None if packet.pts is None else packet.pts + ticks
    packet.dts = None if packet.dts is None else packet.dts + ticks
    packet.stream = stream


def _keep_sound(packet: AnyPacket, ticks: int, clock: _SoundClock) -> bool:
    """Drop sound past the clip's picture, and a first AAC packet (priming) that starts
    before the previous clip's last one: MP4 refuses decode times that do not rise."""
    start = (packet.dts or 0) + ticks
    if start >= clock.limit or start <= clock.last:
        return False
    clock.last = start
    return True
