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

import re
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.packet import Packet
from av.stream import Stream
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType, VideoFrame
from av.video.stream import VideoStream

from pipeline.errors import MediaError
from pipeline.media import atomic_output, media_errors, open_input, video_duration, video_stream

__all__ = ["StitchResult", "Transition", "stitch_clips"]

# A fixed count, not the machine's: encoder output depends on the thread count, and a re-run
# on another machine must give the same film byte for byte.
ENCODER_THREADS = 4

# ultrafast: a re-encode must keep pace with ffmpeg's; crf 20 buys back the quality in bits.
# stitchable=1 keeps x264's headers independent of the pictures, so every segment encoded
# with these settings has the same SPS/PPS and can share a track with copied packets.
H264_OPTIONS = {"preset": "ultrafast", "crf": "20", "x264-params": "stitchable=1"}
VP9_OPTIONS = {"deadline": "realtime", "cpu-used": "8", "crf": "32", "b": "0", "row-mt": "1"}
AUDIO_RATE = 48_000

Sound = npt.NDArray[np.float32]  # (2, samples), stereo at AUDIO_RATE


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
    copy_video: frozenset[str]  # codecs the container takes as they are
    copy_audio: frozenset[str]

    @property
    def mux_options(self) -> dict[str, str]:
        # bitexact: no random segment UIDs in WebM and no version strings in the file.
        options = {"fflags": "+bitexact"}
        if self.muxer in ("mp4", "mov"):
            options["movflags"] = "+faststart"  # index first, so a browser plays while loading
        return options


_MP4_VIDEO = frozenset({"h264", "hevc", "av1"})
_FORMATS = {
    "MP4": _Format("mp4", "libx264", H264_OPTIONS, "aac", _MP4_VIDEO, frozenset({"aac", "mp3"})),
    "MOV": _Format("mov", "libx264", H264_OPTIONS, "aac", _MP4_VIDEO | {"prores"},
                   frozenset({"aac"})),
    "WEBM": _Format("webm", "libvpx-vp9", VP9_OPTIONS, "libopus", frozenset({"vp8", "vp9", "av1"}),
                    frozenset({"opus", "vorbis"})),
}
_EXTENSIONS = {".mp4": "MP4", ".m4v": "MP4", ".mov": "MOV", ".webm": "WEBM"}


@dataclass
class _Clip:
    """An open input clip; `_index` fills in its frame timestamps when a path needs them."""

    path: Path
    container: InputContainer
    video: VideoStream
    audio: AudioStream | None
    stamps: list[int] = field(default_factory=list)  # video pts in presentation order
    keyframes: list[int] = field(default_factory=list)  # indices into stamps
    end: Fraction = Fraction(0)  # seconds of picture from the first frame

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
    """Join `clips` in order into `out`; the module docstring says which way and when."""
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
    fade = 0
    if transition.kind == "crossfade":
        fade = round(Fraction(transition.seconds) * _frame_rate(clips[0]))
    if not fade and _can_copy(clips, fmt):
        return ("copy", *_copy(clips, tmp, fmt))
    for clip in clips:
        _index(clip)
    _check_lengths(clips, fade)
    if not fade:
        return ("reencode", *_render_all(clips, tmp, fmt, 0))
    if _can_splice(clips, fmt):
        return ("crossfade", *_splice(clips, tmp, fmt, fade))
    return ("crossfade", *_render_all(clips, tmp, fmt, fade))


def _output_format(out: Path, name: str | None) -> _Format:
    key = name.upper() if name else _EXTENSIONS.get(out.suffix.lower(), "")
    if key not in _FORMATS:
        shown = name or out.name
        raise ValueError(f"no film format for {shown!r}; expected one of {', '.join(_FORMATS)}")
    return _FORMATS[key]


@contextmanager
def _open_clip(path: Path) -> Iterator[_Clip]:
    with open_input(path) as container:
        video = video_stream(container, path)
        video.thread_type = "AUTO"  # frame threads: decoding is most of a re-encode's time
        audio = container.streams.audio[0] if container.streams.audio else None
        yield _Clip(path, container, video, audio)


def _frame_rate(clip: _Clip) -> Fraction:
    rate = clip.video.average_rate or clip.video.guessed_rate
    if not rate:
        raise MediaError(f"{clip.path}: the video has no frame rate")
    return Fraction(rate)


def _check_lengths(clips: list[_Clip], fade: int) -> None:
    """A clip must hold its fades: the fade in and the fade out may not overlap."""
    canvas = _canvas(clips[0])
    for i, clip in enumerate(clips):
        fades = fade * ((i > 0) + (i < len(clips) - 1))
        if canvas.frames_in(clip) < max(fades, 1):
            raise MediaError(f"{clip.path}: {float(clip.end):.2f} s is too short for "
                             f"{fades} frames of crossfade")


def _canvas(clip: _Clip) -> _Canvas:
    width, height = clip.video.codec_context.width, clip.video.codec_context.height
    if width % 2 or height % 2:
        raise MediaError(f"{clip.path}: {width}x{height} cannot be encoded; "
                         "yuv420p needs an even width and height")
    return _Canvas(width, height, _frame_rate(clip))


# --- stream copy -----------------------------------------------------------------------


def _video_key(clip: _Clip) -> tuple[object, ...]:
    """What must agree for packets of different clips to play in one video track."""
    ctx = clip.video.codec_context
    return (ctx.name, ctx.width, ctx.height, ctx.pix_fmt, clip.video.average_rate,
            ctx.profile, ctx.extradata)


def _audio_key(clip: _Clip) -> tuple[object, ...] | None:
    if clip.audio is None:
        return None
    ctx = clip.audio.codec_context
    return (ctx.name, ctx.sample_rate, ctx.layout.name, ctx.extradata)


def _can_copy(clips: list[_Clip], fmt: _Format) -> bool:
    first = clips[0]
    if first.video.codec_context.name not in fmt.copy_video:
        return False
    if first.audio is not None and first.audio.codec_context.name not in fmt.copy_audio:
        return False
    keys = (_video_key(first), _audio_key(first))
    return all((_video_key(clip), _audio_key(clip)) == keys for clip in clips[1:])


def _copy(clips: list[_Clip], tmp: Path, fmt: _Format) -> tuple[int, float]:
    with _open_output(tmp, fmt) as output:
        video = output.add_stream_from_template(clips[0].video)
        audio = output.add_stream_from_template(clips[0].audio) if clips[0].audio else None
        offset, frames, clock = Fraction(0), 0, _AudioClock()
        for clip in clips:
            count, length = _copy_clip(clip, output, video, audio, offset, clock)
            offset, frames = offset + length, frames + count
    return frames, float(offset)


@dataclass
class _AudioClock:
    """The last audio decode time written, in seconds: it must rise across seams."""

    dts: Fraction = Fraction(-(10**9))


def _copy_clip(
    clip: _Clip,
    output: OutputContainer,
    video: VideoStream,
    audio: AudioStream | None,
    offset: Fraction,
    clock: _AudioClock,
) -> tuple[int, Fraction]:
    """Mux one clip's packets moved to start at `offset` seconds; return frames and length."""
    shift = offset - (clip.video.start_time or 0) * clip.video.time_base
    limit = offset + Fraction(video_duration(clip.container, clip.video))
    frames, end = 0, offset
    for packet in _packets(clip, clip.video, clip.audio):
        if packet.stream.type == "video":
            end = max(end, _packet_end(packet) + shift)
            frames += 1
            _move(packet, shift, video)
        elif audio is None or not _place_audio(packet, shift, limit, clock):
            continue
        else:
            _move(packet, shift, audio)
        output.mux_one(packet)
    return frames, end - offset


def _packets(clip: _Clip, *streams: Stream | None) -> Iterator[Packet]:
    with media_errors(clip.path):
        for packet in clip.container.demux([s for s in streams if s is not None]):
            if packet.dts is not None and packet.size:  # not an end-of-stream marker
                yield packet


def _packet_end(packet: Packet) -> Fraction:
    return ((packet.pts or 0) + (packet.duration or 1)) * packet.time_base


def _move(packet: Packet, seconds: Fraction, stream: Stream) -> None:
    ticks = round(seconds / packet.time_base)
    packet.pts = None if packet.pts is None else packet.pts + ticks
    packet.dts = None if packet.dts is None else packet.dts + ticks
    packet.stream = stream


def _place_audio(packet: Packet, shift: Fraction, limit: Fraction, clock: _AudioClock) -> bool:
    """Drop sound past the clip's picture; nudge a packet that overlaps the last one (AAC)."""
    tb = packet.time_base
    start = (packet.dts or 0) * tb + shift
    if start >= limit:
        return False
    if start <= clock.dts:
        packet.dts = (packet.dts or 0) + int((clock.dts - start) / tb) + 1
        packet.pts = max(packet.pts or 0, packet.dts)
        start = packet.dts * tb + shift
    clock.dts = start
    return True


@contextmanager
def _open_output(tmp: Path, fmt: _Format) -> Iterator[OutputContainer]:
    with av.open(str(tmp), "w", format=fmt.muxer, options=fmt.mux_options) as output:
        yield output


# --- decoding onto the canvas ----------------------------------------------------------


def _index(clip: _Clip) -> None:
    """Read every video packet's timestamp, no decoding: frame order, keyframes, length."""
    rows = sorted((p.pts or 0, p.is_keyframe, p.duration or 0) for p in _packets(clip, clip.video))
    if not rows:
        raise MediaError(f"{clip.path}: no video frames")
    clip.stamps = [pts for pts, _, _ in rows]
    clip.keyframes = [i for i, (_, key, _) in enumerate(rows) if key]
    step = rows[-1][2] or round(1 / (_frame_rate(clip) * clip.video.time_base))
    clip.end = (clip.stamps[-1] + step - clip.stamps[0]) * clip.video.time_base


def _piece_frames(piece: _Piece, canvas: _Canvas) -> Iterator[VideoFrame]:
    """The piece on the canvas grid: frame k is what the clip shows at k / fps.

    Timestamps, not frame counts, place each picture, so a clip at another or a variable
    frame rate lands at the right moments.
    """
    clip, tb, k = piece.clip, piece.clip.video.time_base, piece.start
    tolerance = 1 / (2 * canvas.fps)
    held: VideoFrame | None = None
    for frame in _decode_from(clip, clip.origin + round(piece.start / canvas.fps / tb)):
        at = ((frame.pts or 0) - clip.origin) * tb
        while held is not None and k < piece.stop and at > k / canvas.fps + tolerance:
            yield held
            k += 1
        if k >= piece.stop:
            return
        held = _fit(frame, canvas)
    while held is not None and k < piece.stop:
        yield held
        k += 1


def _decode_from(clip: _Clip, pts: int) -> Iterator[VideoFrame]:
    with media_errors(clip.path):
        clip.container.seek(pts, stream=clip.video, backward=True)
        yield from clip.container.decode(clip.video)


def _fit(frame: VideoFrame, canvas: _Canvas) -> VideoFrame:
    """The frame in yuv420p at the canvas size; another shape is letterboxed, not stretched."""
    size = (canvas.width, canvas.height)
    if (frame.width, frame.height) == size and frame.format.name == "yuv420p":
        return frame
    if frame.width * canvas.height == frame.height * canvas.width:
        return frame.reformat(*size, format="yuv420p")
    scale = min(Fraction(canvas.width, frame.width), Fraction(canvas.height, frame.height))
    width, height = (round(frame.width * scale / 2) * 2, round(frame.height * scale / 2) * 2)
    picture = np.zeros((canvas.height, canvas.width, 3), np.uint8)
    top, left = (canvas.height - height) // 2, (canvas.width - width) // 2
    picture[top : top + height, left : left + width] = frame.to_ndarray(
        width=width, height=height, format="rgb24"
    )
    return VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")


def _pieces_frames(pieces: list[_Piece], canvas: _Canvas, fade: int) -> Iterator[VideoFrame]:
    """All pieces in order, the last `fade` frames of each blended into the next one's first."""
    tail: list[VideoFrame] = []
    for i, piece in enumerate(pieces):
        frames = _piece_frames(piece, canvas)
        for j, (a, b) in enumerate(zip(tail, frames)):
            yield _blend(a, b, Fraction(j + 1, fade + 1))
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


def _blend(a: VideoFrame, b: VideoFrame, weight: Fraction) -> VideoFrame:
    """Linear mix; in Y'CbCr it equals the mix in RGB, as the conversion is affine."""
    w = round(weight * 256)
    mixed = a.to_ndarray().astype(np.uint16) * (256 - w) + b.to_ndarray().astype(np.uint16) * w
    return VideoFrame.from_ndarray(((mixed + 128) >> 8).astype(np.uint8), format="yuv420p")


# --- encoding --------------------------------------------------------------------------


def _configure(ctx: VideoCodecContext, canvas: _Canvas, fmt: _Format) -> None:
    ctx.width, ctx.height, ctx.pix_fmt = canvas.width, canvas.height, "yuv420p"
    ctx.time_base = 1 / canvas.fps
    ctx.framerate = canvas.fps
    ctx.gop_size = max(1, int(canvas.fps))  # a keyframe at least every second
    ctx.thread_count = ENCODER_THREADS
    ctx.options = dict(fmt.video_options)


def _encoder(canvas: _Canvas, fmt: _Format) -> VideoCodecContext:
    """A stand-alone encoder whose headers go to extradata, as MP4 keeps them."""
    ctx = cast(VideoCodecContext, av.CodecContext.create(fmt.video_codec, "w"))
    _configure(ctx, canvas, fmt)
    ctx.flags |= av.codec.context.Flags.global_header
    ctx.open()
    return ctx


def _stamp(frame: VideoFrame, index: int, canvas: _Canvas) -> VideoFrame:
    frame.pts, frame.time_base = index, 1 / canvas.fps
    frame.pict_type = PictureType.NONE  # else the source's keyframes are forced on the encoder
    return frame


def _render_all(clips: list[_Clip], tmp: Path, fmt: _Format, fade: int) -> tuple[int, float]:
    """Decode every clip and encode the film anew, crossfading `fade` frames at each seam."""
    canvas = _canvas(clips[0])
    pieces = [_Piece(clip, 0, canvas.frames_in(clip)) for clip in clips]
    with _open_output(tmp, fmt) as output:
        stream = output.add_stream(fmt.video_codec, rate=canvas.fps)
        _configure(stream.codec_context, canvas, fmt)
        sound = _SoundQueue(output, fmt, clips, canvas, fade)
        frames = 0
        for frame in _pieces_frames(pieces, canvas, fade):
            sound.mux(stream.encode(_stamp(frame, frames, canvas)))
            frames += 1
        sound.mux(stream.encode(None))
        sound.drain()
    return frames, float(frames / canvas.fps)


# --- splice: copy between seams, encode around them ------------------------------------

_START_CODE = re.compile(b"\x00?\x00\x00\x01")


def _can_splice(clips: list[_Clip], fmt: _Format) -> bool:
    """Copied and encoded packets share one track, so their H.264 headers must be equal."""
    key = _video_key(clips[0])
    if fmt.video_codec != "libx264" or any(_video_key(clip) != key for clip in clips[1:]):
        return False
    extradata = clips[0].video.codec_context.extradata or b""
    # avcC with 4-byte NAL lengths, which is what encoded packets are rewritten to
    if clips[0].video.codec_context.name != "h264" or extradata[:1] != b"\x01":
        return False
    if len(extradata) < 7 or extradata[4] & 3 != 3:
        return False
    encoder = _encoder(_canvas(clips[0]), fmt)
    return _avcc_units(extradata) == _annexb_units(encoder.extradata or b"")


def _avcc_units(avcc: bytes) -> list[bytes]:
    """The SPS and PPS NAL units of an avcC record (ISO 14496-15)."""
    units, pos = [], 5
    for mask in (0x1F, 0xFF):  # SPS count shares its byte with reserved bits; PPS count not
        count, pos = avcc[pos] & mask, pos + 1
        for _ in range(count):
            size = int.from_bytes(avcc[pos : pos + 2], "big")
            units.append(avcc[pos + 2 : pos + 2 + size])
            pos += 2 + size
    return units


def _annexb_units(data: bytes) -> list[bytes]:
    return [unit for unit in _START_CODE.split(data) if unit]


def _splice_plan(clips: list[_Clip], fade: int) -> list[tuple[bool, list[_Piece]]]:
    """Runs of (copy?, pieces): each clip's GOPs clear of its fades are copied."""
    runs: list[tuple[bool, list[_Piece]]] = []
    pending: list[_Piece] = []
    last = len(clips) - 1
    for i, clip in enumerate(clips):
        count = len(clip.stamps)
        head = next((k for k in clip.keyframes if k >= fade), count) if i else 0
        tail = count if i == last else max((k for k in clip.keyframes if k <= count - fade), default=0)
        if head >= tail:
            pending.append(_Piece(clip, 0, count))
            continue
        if head:
            runs.append((False, [*pending, _Piece(clip, 0, head)]))
        runs.append((True, [_Piece(clip, head, tail)]))
        pending = [_Piece(clip, tail, count)] if i < last else []
    return runs + [(False, pending)] if pending else runs


def _splice(clips: list[_Clip], tmp: Path, fmt: _Format, fade: int) -> tuple[int, float]:
    canvas = _canvas(clips[0])
    with _open_output(tmp, fmt) as output:
        video = output.add_stream_from_template(clips[0].video)
        sound = _SoundQueue(output, fmt, clips, canvas, fade)
        position = 0
        for copy, pieces in _splice_plan(clips, fade):
            if copy:
                packets = _copy_piece(pieces[0], video, position, canvas)
            else:
                packets = _encode_pieces(pieces, video, position, canvas, fmt, fade)
            position += sound.mux(packets)
        sound.drain()
    return position, float(position / canvas.fps)


def _copy_piece(
    piece: _Piece, video: VideoStream, position: int, canvas: _Canvas
) -> Iterator[Packet]:
    """The packets of whole GOPs [start, stop), moved to output frame `position`."""
    clip = piece.clip
    shift = (position - piece.start) / canvas.fps - clip.origin * clip.video.time_base
    count = 0
    for packet in _gop_packets(clip, piece):
        _move(packet, shift, video)
        count += 1
        yield packet
    if count != piece.stop - piece.start:
        raise MediaError(f"{clip.path}: found {count} frames between keyframes "
                         f"{piece.start} and {piece.stop}, expected {piece.stop - piece.start}")


def _gop_packets(clip: _Clip, piece: _Piece) -> Iterator[Packet]:
    """From the keyframe that starts frame `start` up to the one that starts frame `stop`."""
    first = clip.stamps[piece.start]
    stop = clip.stamps[piece.stop] if piece.stop < len(clip.stamps) else None
    with media_errors(clip.path):
        clip.container.seek(first, stream=clip.video, backward=True)
    packets = _packets(clip, clip.video)
    for packet in packets:
        if packet.is_keyframe and packet.pts == first:
            yield packet
            break
    for packet in packets:
        if packet.is_keyframe and packet.pts == stop:
            return
        yield packet


def _encode_pieces(
    pieces: list[_Piece],
    video: VideoStream,
    position: int,
    canvas: _Canvas,
    fmt: _Format,
    fade: int,
) -> Iterator[Packet]:
    """Encode the pieces with a fresh encoder, so the run starts on a keyframe of its own."""
    encoder = _encoder(canvas, fmt)
    frames = _pieces_frames(pieces, canvas, fade)
    for index, frame in enumerate(frames, start=position):
        yield from _as_mp4(encoder.encode(_stamp(frame, index, canvas)), video)
    yield from _as_mp4(encoder.encode(None), video)


def _as_mp4(packets: Iterable[Packet], video: VideoStream) -> Iterator[Packet]:
    """x264 writes start codes; MP4 samples take 4-byte lengths before each NAL unit."""
    for packet in packets:
        units = _annexb_units(bytes(packet))
        rewritten = Packet(b"".join(len(u).to_bytes(4, "big") + u for u in units))
        rewritten.pts, rewritten.dts = packet.pts, packet.dts
        rewritten.time_base, rewritten.duration = packet.time_base, packet.duration
        rewritten.is_keyframe = packet.is_keyframe
        rewritten.stream = video
        yield rewritten


# --- sound -----------------------------------------------------------------------------


class _SoundQueue:
    """The film's sound, encoded up front, muxed between video packets in time order."""

    def __init__(
        self, output: OutputContainer, fmt: _Format, clips: list[_Clip], canvas: _Canvas, fade: int
    ) -> None:
        self.output = output
        self.packets: deque[Packet] = deque()
        if any(clip.audio is not None for clip in clips):
            parts = [_clip_sound(clip, canvas.frames_in(clip) / canvas.fps) for clip in clips]
            track = _mix(parts, round(fade / canvas.fps * AUDIO_RATE))
            self.packets.extend(_encode_sound(output, fmt, track))

    def mux(self, video: Iterable[Packet]) -> int:
        """Mux video packets, each after the sound that comes before it; count them."""
        count = 0
        for packet in video:
            while self.packets and _dts_seconds(self.packets[0]) <= _dts_seconds(packet):
                self.output.mux_one(self.packets.popleft())
            self.output.mux_one(packet)
            count += 1
        return count

    def drain(self) -> None:
        while self.packets:
            self.output.mux_one(self.packets.popleft())


def _dts_seconds(packet: Packet) -> Fraction:
    return (packet.dts or 0) * packet.time_base


def _clip_sound(clip: _Clip, seconds: Fraction) -> Sound:
    """The clip's sound, cut or padded to the length of its picture; silence if it has none."""
    sound = np.zeros((2, round(seconds * AUDIO_RATE)), np.float32)
    if clip.audio is None:
        return sound
    origin = clip.origin * clip.video.time_base  # sound keeps its offset to the picture
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
    with media_errors(clip.path):
        clip.container.seek(0)
        for frame in clip.container.decode(clip.audio):
            for chunk in resampler.resample(frame):
                _lay(sound, chunk, origin)
        for chunk in resampler.resample(None):
            _lay(sound, chunk, origin)
    return sound


def _lay(sound: Sound, chunk: av.AudioFrame, origin: Fraction) -> None:
    at = round(((chunk.pts or 0) * chunk.time_base - origin) * AUDIO_RATE)
    data = chunk.to_ndarray()
    low, high = max(at, 0), min(at + data.shape[1], sound.shape[1])
    if low < high:
        sound[:, low:high] = data[:, low - at : high - at]


def _mix(parts: list[Sound], overlap: int) -> Sound:
    """Concatenate, overlapping neighbours by `overlap` samples under linear ramps."""
    total = sum(part.shape[1] for part in parts) - overlap * (len(parts) - 1)
    track = np.zeros((2, total), np.float32)
    ramp = np.linspace(0, 1, overlap + 2, dtype=np.float32)[1:-1]
    at = 0
    for i, part in enumerate(parts):
        part = part.copy()
        if i and overlap:
            part[:, :overlap] *= ramp
        if i < len(parts) - 1 and overlap:
            part[:, -overlap:] *= ramp[::-1]
        track[:, at : at + part.shape[1]] += part
        at += part.shape[1] - overlap
    return track


def _encode_sound(output: OutputContainer, fmt: _Format, track: Sound) -> list[Packet]:
    stream = output.add_stream(fmt.audio_codec, rate=AUDIO_RATE, layout="stereo")
    packets: list[Packet] = []
    # One-second frames; the encoder cuts them to its own frame size.
    for start in range(0, track.shape[1], AUDIO_RATE):
        chunk = np.ascontiguousarray(track[:, start : start + AUDIO_RATE])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, start, Fraction(1, AUDIO_RATE)
        packets.extend(stream.encode(frame))
    packets.extend(stream.encode(None))
    return packets
