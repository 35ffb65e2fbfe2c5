"""Stitching: the picked clip of every shot in the film, in order, in; the film, out.

Input: clip files and the film's transition (a cut, or a crossfade of some seconds).
Output: one video file, written atomically, with the same bytes for the same inputs:

- cut, clips that agree on codec, size, pixel format, frame rate and codec headers: the
  packets are copied, no pixel is decoded;
- cut, clips that differ: everything is re-encoded on the first clip's size and frame rate
  (others are scaled and letterboxed onto it);
- crossfade: H.264 clips whose headers match this module's encoder keep the GOPs between
  their seams as they are, and only the GOPs around each seam are re-encoded (a "splice");
  any other clips are re-encoded whole.

Audio is copied along in a stream copy; otherwise the film's audio is rebuilt (clips without
sound contribute silence, crossfades mix) and encoded once.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.packet import Packet
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType, VideoFrame
from av.video.stream import VideoStream

from pipeline import audio_track
from pipeline.errors import MediaError
from pipeline.media import atomic_output, media_errors, open_input, video_stream

__all__ = ["StitchResult", "Transition", "stitch_clips"]

# A fixed count, not the machine's cores: x264 and libvpx output depends on the thread count,
# and a re-run on another machine must give the same film byte for byte.
ENCODER_THREADS = 4

# stitchable=1 keeps x264's headers independent of the content, so every segment encoded with
# these settings shares one SPS/PPS and can sit in one track next to copied packets.
H264_OPTIONS = {"preset": "veryfast", "crf": "20", "x264-params": "stitchable=1"}
VP9_OPTIONS = {"deadline": "realtime", "cpu-used": "8", "crf": "32", "b": "0", "row-mt": "1"}


@dataclass(frozen=True)
class Transition:
    """How consecutive clips meet: a cut, or a linear crossfade of `seconds`."""

    kind: str = "cut"
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("cut", "crossfade"):
            raise ValueError(f"transition must be 'cut' or 'crossfade', not {self.kind!r}")
        if self.seconds < 0:
            raise ValueError(f"transition seconds must not be negative, got {self.seconds}")


@dataclass(frozen=True)
class StitchResult:
    path: Path
    method: str  # "copy" | "reencode" | "crossfade"
    duration: float
    frames: int


@dataclass(frozen=True)
class _Format:
    muxer: str
    video_codec: str
    video_options: dict[str, str]
    audio_codec: str
    copy_video: frozenset[str]  # codecs this container takes as they are
    copy_audio: frozenset[str]

    @property
    def mux_options(self) -> dict[str, str]:
        # bitexact: no random segment UIDs (WebM) and no encoder version strings in the file.
        options = {"fflags": "+bitexact"}
        if self.muxer in ("mp4", "mov"):
            options["movflags"] = "+faststart"  # moov first, so a browser plays while loading
        return options


_MP4_VIDEO = frozenset({"h264", "hevc", "av1"})
_FORMATS = {
    "MP4": _Format("mp4", "libx264", H264_OPTIONS, "aac", _MP4_VIDEO, frozenset({"aac", "mp3"})),
    "MOV": _Format(
        "mov", "libx264", H264_OPTIONS, "aac", _MP4_VIDEO | {"prores"}, frozenset({"aac"})
    ),
    "WEBM": _Format(
        "webm", "libvpx-vp9", VP9_OPTIONS, "libopus",
        frozenset({"vp8", "vp9", "av1"}), frozenset({"opus", "vorbis"}),
    ),
}
_EXTENSIONS = {".mp4": "MP4", ".m4v": "MP4", ".mov": "MOV", ".webm": "WEBM"}


@dataclass
class _Clip:
    """An open input clip; `stamps`/`keyframes`/`end` are filled by `_index` when needed."""

    path: Path
    container: InputContainer
    video: VideoStream
    audio: AudioStream | None
    stamps: list[int] = field(default_factory=list)  # video pts in presentation order
    keyframes: list[int] = field(default_factory=list)  # indices into stamps
    end: Fraction = Fraction(0)  # seconds of video from its first frame

    @property
    def origin(self) -> int:
        return self.stamps[0] if self.stamps else self.video.start_time or 0


@dataclass(frozen=True)
class _Canvas:
    """The film's picture: the first clip's size and frame rate."""

    width: int
    height: int
    fps: Fraction

    def frames_in(self, clip: _Clip) -> int:
        return round(clip.end * self.fps)


@dataclass(frozen=True)
class _Piece:
    """Frames [start, stop) of a clip, counted on the canvas's frame grid."""

    clip: _Clip
    start: int
    stop: int


def stitch_clips(
    clips: Sequence[Path],
    out: Path,
    *,
    transition: Transition = Transition(),
    output_format: str | None = None,
) -> StitchResult:
    """Join `clips` in order into `out`; see the module docstring for how it chooses."""
    if not clips:
        raise ValueError("no clips to stitch")
    fmt = _output_format(out, output_format)
    with ExitStack() as stack:
        opened = [stack.enter_context(_open_clip(path)) for path in clips]
        with media_errors(out), atomic_output(out) as tmp:
            method, frames, seconds = _stitch(opened, tmp, fmt, transition)
    return StitchResult(out, method, seconds, frames)


def _stitch(
    clips: list[_Clip], tmp: Path, fmt: _Format, transition: Transition
) -> tuple[str, int, float]:
    if transition.kind == "cut" or transition.seconds == 0:
        if _can_copy(clips, fmt):
            return ("copy", *_copy(clips, tmp, fmt))
        return ("reencode", *_render_all(clips, tmp, fmt, 0))
    for clip in clips:
        _index(clip)
    fade = round(Fraction(transition.seconds) * _frame_rate(clips[0]))
    _check_fade(clips, fade, transition.seconds)
    if _can_splice(clips, fmt):
        return ("crossfade", *_splice(clips, tmp, fmt, fade))
    return ("crossfade", *_render_all(clips, tmp, fmt, fade))


def _output_format(out: Path, name: str | None) -> _Format:
    key = name.upper() if name else _EXTENSIONS.get(out.suffix.lower())
    if key not in _FORMATS:
        raise ValueError(f"cannot tell the film's format from {name or out.name!r}: "
                         f"use one of {', '.join(_FORMATS)}")
    return _FORMATS[key]


@contextmanager
def _open_clip(path: Path) -> Iterator[_Clip]:
    with open_input(path) as container:
        audio = container.streams.audio[0] if container.streams.audio else None
        yield _Clip(path, container, video_stream(container, path), audio)


def _frame_rate(clip: _Clip) -> Fraction:
    rate = clip.video.average_rate or clip.video.guessed_rate
    if not rate:
        raise MediaError(f"{clip.path}: no frame rate")
    return Fraction(rate)


# --- stream copy -------------------------------------------------------------------------


def _copy_key(clip: _Clip) -> tuple[object, ...]:
    """Everything that must agree for packets of different clips to play in one track."""
    video = clip.video.codec_context
    key: tuple[object, ...] = (video.name, video.width, video.height, video.pix_fmt,
                               clip.video.average_rate, video.profile, video.extradata)
    if clip.audio is None:
        return (*key, None)
    audio = clip.audio.codec_context
    return (*key, audio.name, audio.sample_rate, audio.layout.name, audio.extradata)


def _can_copy(clips: list[_Clip], fmt: _Format) -> bool:
    first = clips[0]
    if first.video.codec_context.name not in fmt.copy_video:
        return False
    if first.audio is not None and first.audio.codec_context.name not in fmt.copy_audio:
        return False
    key = _copy_key(first)
    return all(_copy_key(clip) == key for clip in clips[1:])


def _copy(clips: list[_Clip], tmp: Path, fmt: _Format) -> tuple[int, float]:
    with _open_output(tmp, fmt) as output:
        video = output.add_stream_from_template(clips[0].video)
        audio = output.add_stream_from_template(clips[0].audio) if clips[0].audio else None
        offset, frames = Fraction(0), 0
        last_audio = _AudioClock()
        for clip in clips:
            count, length = _copy_clip(clip, output, (video, audio), offset, last_audio)
            offset, frames = offset + length, frames + count
    return frames, float(offset)


@dataclass
class _AudioClock:
    """The last audio decode time written: AAC at a seam overlaps, and MP4 wants it rising."""

    dts: Fraction = Fraction(-1_000_000)


def _copy_clip(
    clip: _Clip,
    output: OutputContainer,
    streams: tuple[av.video.stream.VideoStream, AudioStream | None],
    offset: Fraction,
    clock: _AudioClock,
) -> tuple[int, Fraction]:
    """Mux one clip's packets shifted to start at `offset` seconds; return frames, seconds."""
    video_out, audio_out = streams
    origin = Fraction(clip.video.start_time or 0) * clip.video.time_base
    frames, end = 0, offset
    for packet in _packets(clip):
        seconds_shift = offset - origin
        if packet.stream.type == "video":
            end = max(end, _packet_end(packet, seconds_shift))
            _shift(packet, seconds_shift, video_out)
            frames += 1
        elif audio_out is not None and _keep_audio(packet, seconds_shift, clock):
            _shift(packet, seconds_shift, audio_out)
        else:
            continue
        output.mux_one(packet)
    return frames, end - offset


def _packets(clip: _Clip) -> Iterator[Packet]:
    streams = [s for s in (clip.video, clip.audio) if s is not None]
    with media_errors(clip.path):
        for packet in clip.container.demux(streams):
            if packet.dts is not None and packet.size:  # skip the end-of-stream markers
                yield packet


def _packet_end(packet: Packet, shift: Fraction) -> Fraction:
    tb = packet.time_base
    duration = packet.duration or 1
    return (packet.pts or 0) * tb + duration * tb + shift


def _shift(packet: Packet, seconds: Fraction, stream: av.stream.Stream) -> None:
    ticks = round(seconds / packet.time_base)
    if packet.pts is not None:
        packet.pts += ticks
    if packet.dts is not None:
        packet.dts += ticks
    packet.stream = stream


def _keep_audio(packet: Packet, shift: Fraction, clock: _AudioClock) -> bool:
    """Pull an audio packet that overlaps the previous clip's last one just after it."""
    tb = packet.time_base
    dts = (packet.dts or 0) * tb + shift
    if dts <= clock.dts:
        moved = clock.dts + tb - shift
        packet.dts = int(moved / tb)
        packet.pts = max(packet.pts or 0, packet.dts)
        dts = packet.dts * tb + shift
    clock.dts = dts
    return True


@contextmanager
def _open_output(tmp: Path, fmt: _Format) -> Iterator[OutputContainer]:
    with av.open(str(tmp), "w", format=fmt.muxer, options=fmt.mux_options) as output:
        yield output


# --- re-encoding ---------------------------------------------------------------------------


def _index(clip: _Clip) -> None:
    """Read every video packet's timestamp (no decoding): frame order, keyframes and length."""
    rows = sorted((p.pts, p.is_keyframe, p.duration) for p in _packets_of_video(clip))
    if not rows:
        raise MediaError(f"{clip.path}: no video frames")
    clip.stamps = [pts for pts, _, _ in rows]
    clip.keyframes = [i for i, (_, key, _) in enumerate(rows) if key]
    last_pts, _, last_duration = rows[-1]
    step = last_duration or round(1 / (_frame_rate(clip) * clip.video.time_base))
    clip.end = (last_pts + step - clip.stamps[0]) * clip.video.time_base
    clip.container.seek(clip.stamps[0], stream=clip.video, backward=True)


def _packets_of_video(clip: _Clip) -> Iterator[Packet]:
    with media_errors(clip.path):
        for packet in clip.container.demux(clip.video):
            if packet.pts is not None and packet.size:
                yield packet


def _render_all(clips: list[_Clip], tmp: Path, fmt: _Format, fade: int) -> tuple[int, float]:
    """Decode every clip and encode the film anew, crossfading `fade` frames at each seam."""
    for clip in clips:
        if not clip.stamps:
            _index(clip)
    canvas = _canvas(clips[0])
    pieces = [_Piece(clip, 0, canvas.frames_in(clip)) for clip in clips]
    with _open_output(tmp, fmt) as output:
        stream = output.add_stream(fmt.video_codec, rate=canvas.fps)
        _configure(stream.codec_context, canvas, fmt)
        sound = audio_track.encode_track(output, fmt.audio_codec, pieces_audio(pieces, canvas), fade / canvas.fps)
        frames = 0
        for frame in _pieces_frames(pieces, canvas, fade):
            _stamp(frame, frames, canvas)
            for packet in stream.encode(frame):
                sound.mux_until(packet)
                output.mux_one(packet)
            frames += 1
        for packet in stream.encode(None):
            output.mux_one(packet)
        sound.mux_rest()
    return frames, float(frames / canvas.fps)
