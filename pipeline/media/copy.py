"""Stream copy: clips that agree on codec, size, frame rate and headers in; the film, out.

Packets are moved onto the film's timeline and muxed as they are: no pixel is decoded. The
sound is copied too, minus what runs past each clip's picture, when every clip has the same
kind of sound; otherwise (some clips silent, or sounds of different kinds) the pictures are
still copied and the film's track is built anew (`sound.film_sound`) and muxed beside them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from av.audio.stream import AudioStream
from av.packet import Packet
from av.stream import Stream
from av.video.stream import VideoStream

from .clip import Clip
from .formats import OutputFormat, open_output
from .probe import media_errors, time_base, video_duration
from .sound import Sound, SoundQueue

if TYPE_CHECKING:  # PyAV's Packet is generic only in its stubs
    AnyPacket = Packet[Any]

__all__ = ["can_copy", "can_copy_video", "copy_clips", "move_packet", "video_key"]


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


def can_copy_video(clips: list[Clip], fmt: OutputFormat) -> bool:
    """Whether every clip's picture packets can go into one track of `fmt` as they are."""
    key = video_key(clips[0])
    return (clips[0].video.codec_context.name in fmt.copy_video
            and all(video_key(clip) == key for clip in clips[1:]))


def can_copy(clips: list[Clip], fmt: OutputFormat) -> bool:
    """Whether pictures and sound alike can be copied (every clip's sound is the same kind,
    or no clip has sound)."""
    sound = clips[0].audio and clips[0].audio.codec_context.name
    if sound not in {None, *fmt.copy_audio} or not can_copy_video(clips, fmt):
        return False
    key = _audio_key(clips[0])
    return all(_audio_key(clip) == key for clip in clips[1:])


def copy_clips(clips: list[Clip], tmp: Path, fmt: OutputFormat,
               track: Sound | None = None) -> tuple[int, float]:
    """Copy the clips' packets; with `track`, copy only the pictures and mux `track` as the
    film's sound instead of the clips' own."""
    with open_output(tmp, fmt) as output:
        video = output.add_stream_from_template(clips[0].video)
        own = clips[0].audio if track is None else None
        audio = output.add_stream_from_template(own) if own is not None else None
        queue = SoundQueue(output, fmt, track)
        offset, frames, clock = Fraction(0), 0, _SoundClock()
        for clip in clips:
            tally = _Tally()
            queue.mux(_copy_clip(clip, (video, audio), offset, clock, tally))
            offset, frames = offset + tally.length, frames + tally.frames
        queue.drain()
    return frames, float(offset)


@dataclass
class _Tally:
    """What one clip's copy gave: frames, and seconds from its offset to its picture's end."""

    frames: int = 0
    length: Fraction = Fraction(0)


@dataclass
class _SoundClock:
    """How far the copied sound has got, in ticks of its time base (the same in every clip)."""

    last: int = -(2**62)  # decode time of the last packet written
    limit: int = 0  # end of the current clip's picture


def _copy_clip(
    clip: Clip,
    streams: tuple[VideoStream, AudioStream | None],
    offset: Fraction,
    clock: _SoundClock,
    tally: _Tally,
) -> Iterator[AnyPacket]:
    """One clip's packets moved to start at `offset` seconds; `tally` gets frames and length.

    The shift is worked out in ticks once per clip: Fractions per packet cost more than muxing.
    """
    tb, shift = clip.time_base, offset - (clip.video.start_time or 0) * clip.time_base
    ticks, step, end = round(shift / tb), round(1 / (clip.fps * tb)), 0
    sound_ticks = 0
    sound = clip.audio if streams[1] is not None else None
    if sound is None and clip.stamps:  # indexed, so read to its end: back to the start
        with media_errors(clip.path):
            clip.container.seek(clip.origin, stream=clip.video, backward=True)
    if sound is not None:
        sound_tb, picture = time_base(sound), video_duration(clip.container, clip.video)
        sound_ticks = round(shift / sound_tb)
        clock.limit = int((offset + Fraction(picture)) / sound_tb)
    for packet in clip.packets(clip.video, sound):
        if packet.stream.type == "video":
            end = max(end, (packet.pts or 0) + (packet.duration or step))
            tally.frames += 1
            move_packet(packet, ticks, streams[0])
        elif streams[1] is None or not _keep_sound(packet, sound_ticks, clock):
            continue
        else:
            move_packet(packet, sound_ticks, streams[1])
        yield packet
    tally.length = (end + ticks) * tb - offset


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
