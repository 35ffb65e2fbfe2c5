"""Stream copy: clips that agree on codec, size, frame rate and headers in; the film, out.

Packets are moved onto the film's timeline and muxed as they are: no pixel is decoded. A
clip may be cut to a window of its frames where copy allows it: from a keyframe, up to a
frame that nothing before it needs. The sound is copied too, minus what runs outside each
clip's picture, when every clip has the same kind of sound; otherwise (some clips silent,
or sounds of different kinds) the pictures are still copied and the film's track is built
anew (`sound.film_sound`) and muxed beside them.
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

__all__ = ["Window", "can_copy", "can_copy_video", "copy_allows", "copy_clips", "move_packet",
           "video_key"]

Window = tuple[int, int] | None  # frames [start, stop) of an indexed clip; None: all of it


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


def copy_allows(clip: Clip, start: int, stop: int) -> bool:
    """Frames [start, stop) of an indexed clip copy as they are: they start on a keyframe and
    stop where the frames before decode without any after them."""
    return (start == 0 or start in clip.keyframes) and (
        stop == len(clip.stamps) or stop in clip.clean_ends)


def copy_clips(clips: list[Clip], tmp: Path, fmt: OutputFormat,
               windows: list[Window] | None = None, track: Sound | None = None
               ) -> tuple[list[int], float]:
    """Copy each clip's packets, or those of the frames `windows[i]` of it; with `track`,
    copy only the pictures and mux `track` as the film's sound instead of the clips' own.
    Return the frames copied of each clip and the film's length in seconds."""
    with open_output(tmp, fmt) as output:
        video = output.add_stream_from_template(clips[0].video)
        own = clips[0].audio if track is None else None
        audio = output.add_stream_from_template(own) if own is not None else None
        queue = SoundQueue(output, fmt, track)
        offset, counts, clock = Fraction(0), list[int](), _SoundClock()
        for clip, window in zip(clips, windows or [None] * len(clips), strict=True):
            tally = _Tally()
            queue.mux(_copy_clip(clip, (video, audio), offset, clock, tally, window))
            offset = offset + tally.length
            counts.append(tally.frames)
        queue.drain()
    return counts, float(offset)


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
    floor: int = -(2**62)  # start of the current clip's picture, when it is cut


@dataclass(frozen=True)
class _Cut:
    """The video timestamps a copy keeps: [first, stop), stop None for the clip's end."""

    first: int
    stop: int | None
    picture: Fraction  # seconds of picture kept

    @classmethod
    def of(cls, clip: Clip, window: Window) -> _Cut:
        if window is None:
            return cls(clip.video.start_time or 0, None,
                       Fraction(video_duration(clip.container, clip.video)))
        start, stop = window
        first = clip.stamps[start]
        if stop < len(clip.stamps):
            return cls(first, clip.stamps[stop], (clip.stamps[stop] - first) * clip.time_base)
        return cls(first, None, clip.end - (first - clip.stamps[0]) * clip.time_base)

    def keeps(self, pts: int) -> bool:
        return self.first <= pts and (self.stop is None or pts < self.stop)


def _copy_clip(
    clip: Clip,
    streams: tuple[VideoStream, AudioStream | None],
    offset: Fraction,
    clock: _SoundClock,
    tally: _Tally,
    window: Window = None,
) -> Iterator[AnyPacket]:
    """One clip's packets (those of `window`) moved to start at `offset` seconds; `tally`
    gets frames and length.

    The shift is worked out in ticks once per clip: Fractions per packet cost more than muxing.
    """
    cut = _Cut.of(clip, window)
    tb, shift = clip.time_base, offset - cut.first * clip.time_base
    ticks, step, end = round(shift / tb), round(1 / (clip.fps * tb)), 0
    sound_ticks = 0
    sound = clip.audio if streams[1] is not None else None
    if clip.stamps:  # indexed, so read to its end: back to the start
        with media_errors(clip.path):
            clip.container.seek(clip.origin, stream=clip.video, backward=True)
    if sound is not None:
        sound_tb = time_base(sound)
        sound_ticks = round(shift / sound_tb)
        clock.limit = int((offset + cut.picture) / sound_tb)
        clock.floor = int(offset / sound_tb) if window and window[0] else -(2**62)
    for packet in clip.packets(clip.video, sound):
        if packet.stream.type == "video":
            if window is not None and not cut.keeps(packet.pts or 0):
                continue
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
    if start >= clock.limit or start <= clock.last or start < clock.floor:
        return False
    clock.last = start
    return True
