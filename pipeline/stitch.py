"""Stitching: the picked clip of every shot in the film, in order, in; the film, out.

Input: clip files and the film's transition (a cut, or a crossfade of some seconds).
Output: one video file, written atomically, with the same bytes for the same inputs:

- cut, and the clips agree on codec, size, pixel format, frame rate and codec headers: the
  packets are copied and no pixel is decoded ("copy");
- cut, and the clips differ: the film is re-encoded on the first clip's size and frame rate,
  the others scaled and letterboxed onto it ("reencode");
- crossfade: H.264 clips whose headers match this module's encoder keep the GOPs between
  seams as they are and only the GOPs around each seam are re-encoded (a splice); other
  clips are re-encoded whole ("crossfade" either way).

A stream copy copies the audio too. Otherwise the film's audio is rebuilt (a clip without
sound is silence, a crossfade mixes) and encoded once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import av
import numpy as np
from av.audio.stream import AudioStream
from av.codec.context import Flags
from av.container import OutputContainer
from av.packet import Packet
from av.stream import Stream
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType, VideoFrame
from av.video.stream import VideoStream

from .errors import MediaError
from .media import (
    AUDIO_RATE,
    Canvas,
    Clip,
    Sound,
    annexb_units,
    avcc_units,
    blend_frames,
    media_errors,
    mix_sounds,
    time_base,
    video_duration,
)
from .store.atomic import atomic_path

__all__ = ["StitchMethod", "StitchResult", "Transition", "stitch_clips"]

# A fixed count, not the machine's: encoder output depends on the thread count, and a re-run
# on another machine must give the same film byte for byte.
ENCODER_THREADS = 4

# ultrafast: a re-encode must keep pace with ffmpeg's; crf 20 buys the quality back in bits.
# stitchable=1 keeps x264's headers independent of the pictures, so every segment encoded
# with these settings has the same SPS/PPS and can share a track with copied packets.
H264_OPTIONS = {"preset": "ultrafast", "crf": "20", "x264-params": "stitchable=1"}
VP9_OPTIONS = {"deadline": "realtime", "cpu-used": "8", "crf": "32", "b": "0", "row-mt": "1"}

if TYPE_CHECKING:  # PyAV's Packet is generic only in its stubs
    AnyPacket = Packet[Any]


@dataclass(frozen=True)
class Transition:
    """How consecutive clips meet: a cut, or a linear crossfade over `seconds`."""

    kind: str = "cut"
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("cut", "crossfade"):
            raise ValueError(f"transition must be 'cut' or 'crossfade', not {self.kind!r}")
        if self.seconds < 0:
            raise ValueError(f"transition seconds must not be negative, got {self.seconds}")


class StitchMethod(StrEnum):
    COPY = "copy"
    REENCODE = "reencode"
    CROSSFADE = "crossfade"


@dataclass(frozen=True)
class StitchResult:
    path: Path
    method: StitchMethod
    duration: float
    frames: int


@dataclass(frozen=True)
class _Format:
    muxer: str
    video_codec: str
    audio_codec: str
    copy_video: frozenset[str]  # codecs the container takes as they are
    copy_audio: frozenset[str]

    @property
    def video_options(self) -> dict[str, str]:
        return dict(VP9_OPTIONS if self.video_codec == "libvpx-vp9" else H264_OPTIONS)

    @property
    def mux_options(self) -> dict[str, str]:
        # bitexact: no random segment UIDs in WebM and no version strings in the file.
        options = {"fflags": "+bitexact"}
        if self.muxer in ("mp4", "mov"):
            options["movflags"] = "+faststart"  # index first, so a browser plays while loading
        return options


_MP4 = frozenset({"h264", "hevc", "av1"})
_FORMATS = {
    "MP4": _Format("mp4", "libx264", "aac", _MP4, frozenset({"aac", "mp3"})),
    "MOV": _Format("mov", "libx264", "aac", _MP4 | {"prores"}, frozenset({"aac"})),
    "WEBM": _Format("webm", "libvpx-vp9", "libopus", frozenset({"vp8", "vp9", "av1"}),
                    frozenset({"opus", "vorbis"})),
}
_EXTENSIONS = {".mp4": "MP4", ".m4v": "MP4", ".mov": "MOV", ".webm": "WEBM"}


@dataclass(frozen=True)
class _Piece:
    """Frames [start, stop) of a clip, counted on the canvas's frame grid."""

    clip: Clip
    start: int
    stop: int


def stitch_clips(
    clips: Sequence[Path],
    out: Path,
    *,
    transition: Transition = Transition(),
    output_format: str | None = None,
) -> StitchResult:
    """Join `clips` in order into `out`; the module docstring says which way and when."""
    if not clips:
        raise ValueError("no clips to stitch")
    fmt = _output_format(out, output_format)
    with ExitStack() as stack:
        opened = [stack.enter_context(Clip.open(path)) for path in clips]
        with media_errors(out), atomic_path(out) as tmp:
            method, frames, seconds = _stitch(opened, tmp, fmt, transition)
    return StitchResult(out, method, seconds, frames)


def _stitch(
    clips: list[Clip], tmp: Path, fmt: _Format, transition: Transition
) -> tuple[StitchMethod, int, float]:
    fade = 0
    if transition.kind == "crossfade":
        fade = round(Fraction(transition.seconds) * clips[0].fps)
    if not fade and _can_copy(clips, fmt):
        return (StitchMethod.COPY, *_copy(clips, tmp, fmt))
    for clip in clips:
        clip.index()
    canvas = _canvas(clips[0])
    _check_lengths(clips, canvas, fade)
    if not fade:
        return (StitchMethod.REENCODE, *_render(clips, tmp, fmt, canvas, 0))
    if _can_splice(clips, fmt, canvas):
        return (StitchMethod.CROSSFADE, *_splice(clips, tmp, fmt, canvas, fade))
    return (StitchMethod.CROSSFADE, *_render(clips, tmp, fmt, canvas, fade))


def _output_format(out: Path, name: str | None) -> _Format:
    key = name.upper() if name else _EXTENSIONS.get(out.suffix.lower(), "")
    if key not in _FORMATS:
        shown = name or out.name
        raise ValueError(f"no film format for {shown!r}; expected one of {', '.join(_FORMATS)}")
    return _FORMATS[key]


def _canvas(clip: Clip) -> Canvas:
    ctx = clip.video.codec_context
    if ctx.width % 2 or ctx.height % 2:
        raise MediaError(f"{clip.path}: {ctx.width}x{ctx.height} cannot be encoded; "
                         "yuv420p needs an even width and height")
    colour = (ctx.color_range, ctx.color_primaries, ctx.color_trc, ctx.colorspace)
    return Canvas(ctx.width, ctx.height, clip.fps, colour)


def _check_lengths(clips: list[Clip], canvas: Canvas, fade: int) -> None:
    """A clip must hold its fades: its fade in and its fade out may not overlap."""
    for i, clip in enumerate(clips):
        fades = fade * ((i > 0) + (i < len(clips) - 1))
        if canvas.frames_in(clip) < max(fades, 1):
            raise MediaError(f"{clip.path}: {float(clip.end):.2f} s is too short for "
                             f"{fades} frames of crossfade")


def _open_output(tmp: Path, fmt: _Format) -> OutputContainer:
    return av.open(str(tmp), "w", format=fmt.muxer, options=fmt.mux_options)


# --- stream copy -----------------------------------------------------------------------


def _video_key(clip: Clip) -> tuple[object, ...]:
    """What must agree for packets of different clips to play in one video track."""
    ctx = clip.video.codec_context
    return (ctx.name, ctx.width, ctx.height, ctx.pix_fmt, clip.video.average_rate,
            ctx.profile, ctx.extradata)


def _audio_key(clip: Clip) -> tuple[object, ...] | None:
    if clip.audio is None:
        return None
    ctx = clip.audio.codec_context
    return (ctx.name, ctx.sample_rate, ctx.layout.name, ctx.extradata, clip.audio.time_base)


def _can_copy(clips: list[Clip], fmt: _Format) -> bool:
    first = clips[0]
    picture, sound = first.video.codec_context.name, first.audio and first.audio.codec_context.name
    if picture not in fmt.copy_video or sound not in {None, *fmt.copy_audio}:
        return False
    keys = (_video_key(first), _audio_key(first))
    return all((_video_key(clip), _audio_key(clip)) == keys for clip in clips[1:])


def _copy(clips: list[Clip], tmp: Path, fmt: _Format) -> tuple[int, float]:
    with _open_output(tmp, fmt) as output:
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
            _move(packet, ticks, streams[0])
        elif streams[1] is None or not _keep_sound(packet, sound_ticks, clock):
            continue
        else:
            _move(packet, sound_ticks, streams[1])
        output.mux_one(packet)
    return frames, (end + ticks) * tb - offset


def _move(packet: AnyPacket, ticks: int, stream: Stream) -> None:
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


# --- re-encoding -----------------------------------------------------------------------


def _render(
    clips: list[Clip], tmp: Path, fmt: _Format, canvas: Canvas, fade: int
) -> tuple[int, float]:
    """Decode every clip and encode the film anew, crossfading `fade` frames at each seam."""
    pieces = [_Piece(clip, 0, canvas.frames_in(clip)) for clip in clips]
    with _open_output(tmp, fmt) as output:
        stream = cast(VideoStream, output.add_stream(fmt.video_codec, rate=canvas.fps))
        _configure(stream.codec_context, canvas, fmt)
        sound = _SoundQueue(output, fmt, clips, canvas, fade)
        frames = 0
        for frame in _pieces_frames(pieces, canvas, fade):
            sound.mux(stream.encode(_stamp(frame, frames, canvas)))
            frames += 1
        sound.mux(stream.encode(None))
        sound.drain()
    return frames, float(frames / canvas.fps)


def _configure(ctx: VideoCodecContext, canvas: Canvas, fmt: _Format) -> None:
    ctx.width, ctx.height, ctx.pix_fmt = canvas.width, canvas.height, "yuv420p"
    ctx.time_base = 1 / canvas.fps
    ctx.framerate = canvas.fps
    ctx.gop_size = max(1, int(canvas.fps))  # a keyframe at least every second
    ctx.thread_count = ENCODER_THREADS
    ctx.options = fmt.video_options
    # tagged as the first clip is, so players convert the colours the same way
    ctx.color_range, ctx.color_primaries, ctx.color_trc, ctx.colorspace = canvas.colour


def _stamp(frame: VideoFrame, index: int, canvas: Canvas) -> VideoFrame:
    frame.pts, frame.time_base = index, 1 / canvas.fps
    frame.pict_type = PictureType.NONE  # else the source's keyframes are forced on the encoder
    return frame


def _pieces_frames(pieces: list[_Piece], canvas: Canvas, fade: int) -> Iterator[VideoFrame]:
    """All pieces in order, the last `fade` frames of each blended into the next one's first."""
    tail: list[VideoFrame] = []
    for i, piece in enumerate(pieces):
        frames = piece.clip.frames(canvas, piece.start, piece.stop)
        for j, (a, b) in enumerate(zip(tail, frames)):
            yield blend_frames(a, b, Fraction(j + 1, fade + 1))
        tail = yield from _hold_back(frames, fade if i < len(pieces) - 1 else 0)


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


# --- splice: copy the GOPs between seams, encode the ones around them ------------------

def _can_splice(clips: list[Clip], fmt: _Format, canvas: Canvas) -> bool:
    """Copied and encoded packets share one track, so their H.264 headers must be equal."""
    key = _video_key(clips[0])
    if fmt.video_codec != "libx264" or any(_video_key(clip) != key for clip in clips[1:]):
        return False
    extradata = clips[0].video.codec_context.extradata or b""
    # an avcC record with 4-byte NAL lengths, the form encoded packets are rewritten to
    if key[0] != "h264" or len(extradata) < 7 or extradata[0] != 1 or extradata[4] & 3 != 3:
        return False
    return avcc_units(extradata) == annexb_units(_encoder(canvas, fmt).extradata or b"")


def _encoder(canvas: Canvas, fmt: _Format) -> VideoCodecContext:
    """A stand-alone encoder whose headers go to extradata, where MP4 keeps them."""
    ctx = cast(VideoCodecContext, av.CodecContext.create(fmt.video_codec, "w"))
    _configure(ctx, canvas, fmt)
    ctx.flags |= Flags.global_header
    ctx.open()
    return ctx


def _splice_plan(clips: list[Clip], fade: int) -> list[tuple[bool, list[_Piece]]]:
    """Runs of (copy?, pieces): a clip's GOPs clear of its fades are copied, the rest encoded."""
    runs: list[tuple[bool, list[_Piece]]] = []
    pending: list[_Piece] = []
    last = len(clips) - 1
    for i, clip in enumerate(clips):
        count = len(clip.stamps)
        head = next((k for k in clip.keyframes if k >= fade), count) if i else 0
        tail = max((k for k in clip.keyframes if k <= count - fade), default=0)
        tail = count if i == last else tail
        if head >= tail:
            pending.append(_Piece(clip, 0, count))
            continue
        if head:
            runs.append((False, [*pending, _Piece(clip, 0, head)]))
        runs.append((True, [_Piece(clip, head, tail)]))
        pending = [_Piece(clip, tail, count)] if i < last else []
    return [*runs, (False, pending)] if pending else runs


def _splice(
    clips: list[Clip], tmp: Path, fmt: _Format, canvas: Canvas, fade: int
) -> tuple[int, float]:
    with _open_output(tmp, fmt) as output:
        video = output.add_stream_from_template(clips[0].video)
        sound = _SoundQueue(output, fmt, clips, canvas, fade)
        position = 0
        for copy, pieces in _splice_plan(clips, fade):
            packets = (_copy_gops(pieces[0], video, position, canvas) if copy
                       else _encode_pieces(pieces, video, position, canvas, fmt, fade))
            position += sound.mux(packets)
        sound.drain()
    return position, float(position / canvas.fps)


def _copy_gops(
    piece: _Piece, video: VideoStream, position: int, canvas: Canvas
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
        _move(packet, ticks, video)
        count += 1
        yield packet
    if count != piece.stop - piece.start:
        raise MediaError(f"{clip.path}: {count} frames between keyframes {piece.start} "
                         f"and {piece.stop}, expected {piece.stop - piece.start}")


def _encode_pieces(
    pieces: list[_Piece], video: VideoStream, position: int, canvas: Canvas, fmt: _Format,
    fade: int,
) -> Iterator[AnyPacket]:
    """Encode the pieces with a fresh encoder, so the run starts on a keyframe of its own."""
    encoder = _encoder(canvas, fmt)
    frames = _pieces_frames(pieces, canvas, fade)
    for index, frame in enumerate(frames, start=position):
        yield from _length_prefixed(encoder.encode(_stamp(frame, index, canvas)), video)
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


# --- sound -----------------------------------------------------------------------------


class _SoundQueue:
    """The film's sound, encoded up front, muxed between video packets in time order."""

    def __init__(
        self, output: OutputContainer, fmt: _Format, clips: list[Clip], canvas: Canvas, fade: int
    ) -> None:
        self.output = output
        self.packets: deque[AnyPacket] = deque()
        if any(clip.audio is not None for clip in clips):
            parts = [clip.sound(canvas.frames_in(clip) / canvas.fps) for clip in clips]
            track = mix_sounds(parts, round(fade / canvas.fps * AUDIO_RATE))
            self.packets.extend(_encode_sound(output, fmt, track))

    def mux(self, video: Iterable[AnyPacket]) -> int:
        """Mux video packets, each after the sound due before it; return how many."""
        count = 0
        for packet in video:
            while self.packets and _seconds(self.packets[0]) <= _seconds(packet):
                self.output.mux_one(self.packets.popleft())
            self.output.mux_one(packet)
            count += 1
        return count

    def drain(self) -> None:
        while self.packets:
            self.output.mux_one(self.packets.popleft())


def _seconds(packet: AnyPacket) -> Fraction:
    return (packet.dts or 0) * packet.time_base


def _encode_sound(output: OutputContainer, fmt: _Format, track: Sound) -> list[AnyPacket]:
    stream = cast(AudioStream, output.add_stream(fmt.audio_codec, rate=AUDIO_RATE))
    stream.layout = "stereo"
    packets: list[AnyPacket] = []
    for start in range(0, track.shape[1], AUDIO_RATE):  # the encoder re-cuts to its frame size
        chunk = np.ascontiguousarray(track[:, start : start + AUDIO_RATE])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, start, Fraction(1, AUDIO_RATE)
        packets.extend(stream.encode(frame))
    packets.extend(stream.encode(None))
    return packets
