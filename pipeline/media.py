"""Media: the clips the API returns, in; facts, frames and sound read from them, out.

Input: a video file (MP4, MOV or WebM) downloaded for a shot.
Output: a `Probe` of it (recorded in the lock file and used to decide how to stitch), one of its
frames as an RGB image (the last frame of a shot becomes the first frame of the next), PNG
files written atomically with their sha256, and for `pipeline.stitch`, which writes the film,
an open `Clip` that yields its packets, its frames on the film's grid and its sound.

Every PyAV failure is translated into `MediaError` by `media_errors`, the one place that does.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from itertools import islice
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.packet import Packet
from av.stream import Stream
from av.video.frame import VideoFrame
from av.video.stream import VideoStream
from PIL import Image

from .errors import MediaError
from .store.atomic import write_atomic

__all__ = [
    "AUDIO_RATE", "Canvas", "Clip", "Probe", "Sound", "annexb_units",
    "avcc_units", "blend_frames", "extract_frame", "fit_frame", "media_errors", "mix_sounds",
    "open_input", "probe_video", "save_png", "time_base", "video_duration", "video_stream",
]

# zlib level 1: a 720p frame compresses in a fraction of the time of level 6 and is at most a
# few percent larger; the PNG is uploaded once and hashed, so speed matters more than bytes.
PNG_COMPRESS_LEVEL = 1
AUDIO_RATE = 48_000
Sound = npt.NDArray[np.float32]  # (2, samples): stereo at AUDIO_RATE


@dataclass(frozen=True)
class Probe:
    """What a clip is: enough to record it in the lock file and to decide how to stitch it."""

    path: str
    container: str
    codec: str
    width: int
    height: int
    pix_fmt: str
    fps: Fraction
    frames: int
    duration: float
    has_audio: bool

    def to_dict(self) -> dict[str, object]:
        """JSON-able, keys in field order; fps as "num/den" so it survives a round trip."""
        data = asdict(self)
        data["fps"] = f"{self.fps.numerator}/{self.fps.denominator}"
        data["duration"] = round(self.duration, 6)
        return data


@contextmanager
def media_errors(path: Path | str) -> Iterator[None]:
    """Turn a PyAV/FFmpeg or file-system failure about `path` into a MediaError naming it."""
    try:
        yield
    except (av.FFmpegError, OSError) as exc:  # PyAV's errors about files are OSErrors too
        reason = exc.strerror or type(exc).__name__
        raise MediaError(f"{path}: {reason}") from exc


def open_input(path: Path) -> InputContainer:
    with media_errors(path):
        return av.open(str(path), "r")


def video_stream(container: InputContainer, path: Path | str) -> VideoStream:
    if not container.streams.video:
        raise MediaError(f"{path}: no video stream")
    return container.streams.video[0]


def time_base(stream: Stream) -> Fraction:
    """A demuxed stream always has a time base; PyAV's types allow None for unopened ones."""
    if stream.time_base is None:
        raise MediaError(f"stream {stream.index} has no time base")
    return stream.time_base


def video_duration(container: InputContainer, stream: VideoStream) -> float:
    """Seconds of video; WebM streams carry no duration, so fall back to the container's."""
    if stream.duration:
        return float(stream.duration * time_base(stream))
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def probe_video(path: Path) -> Probe:
    with media_errors(path), open_input(path) as container:
        stream = video_stream(container, path)
        ctx = stream.codec_context
        return Probe(
            path=str(path),
            container=_container_name(container, ctx.name),
            codec=ctx.name,
            width=ctx.width,
            height=ctx.height,
            pix_fmt=ctx.pix_fmt or "",
            fps=_frame_rate(stream),
            frames=_frame_count(container, stream),
            duration=video_duration(container, stream),
            has_audio=bool(container.streams.audio),
        )


def _container_name(container: InputContainer, codec: str) -> str:
    """A short name: FFmpeg calls MP4 and MOV both "mov,mp4,...", and WebM "matroska,webm"."""
    names = container.format.name.split(",")
    if "mp4" in names:
        return "mov" if container.metadata.get("major_brand", "").strip() == "qt" else "mp4"
    if "webm" in names:
        return "webm" if codec in {"vp8", "vp9", "av1"} else "mkv"
    return names[0]


def _frame_rate(stream: VideoStream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return Fraction(rate) if rate else Fraction(0)


def _frame_count(container: InputContainer, stream: VideoStream) -> int:
    """The muxer's count when it wrote one; otherwise count packets, which needs no decoding."""
    if stream.frames:
        return stream.frames
    return sum(1 for packet in container.demux(stream) if packet.size)


def extract_frame(path: Path, which: str | int) -> Image.Image:
    """One frame as an RGB image: "first", "last", or a 0-based index (negative from the end)."""
    index = _frame_index(which)
    with media_errors(path), open_input(path) as container:
        stream = video_stream(container, path)
        stream.thread_type = "AUTO"
        if index == 0:
            frame = _first_frame(container, stream)
        elif index == -1:
            frame = _last_frame(container, stream, path)
        else:
            frame = _frame_at(container, stream, index, path)
        if frame is None:
            raise MediaError(f"{path}: no frame could be decoded")
        return _to_image(frame)


def _to_image(frame: VideoFrame) -> Image.Image:
    image: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]  # untyped in PyAV
    return image


def _frame_index(which: str | int) -> int:
    if which == "first":
        return 0
    if which == "last":
        return -1
    if isinstance(which, int) and not isinstance(which, bool):
        return which
    raise ValueError(f"frame must be 'first', 'last' or an integer, not {which!r}")


def _first_frame(container: InputContainer, stream: VideoStream) -> VideoFrame | None:
    return next(container.decode(stream), None)


def _last_frame(
    container: InputContainer, stream: VideoStream, path: Path
) -> VideoFrame | None:
    """Seek to the keyframe before the end and decode to EOF; flushing yields the B-frames."""
    end = _end_pts(container, stream)
    if end is not None and _seek(container, stream, end):
        frame = _latest(container.decode(stream))
        if frame is not None:
            return frame
    # No duration, no index, or the seek landed past the data: decode it all from the start.
    return _latest(_decode_afresh(path))


def _seek(container: InputContainer, stream: VideoStream, pts: int) -> bool:
    """Seek back to the keyframe at or before `pts`; False where the file cannot seek."""
    try:
        container.seek(pts, stream=stream, backward=True)
    except av.FFmpegError:
        return False
    return True


def _end_pts(container: InputContainer, stream: VideoStream) -> int | None:
    seconds = video_duration(container, stream)
    if not seconds:
        return None
    return (stream.start_time or 0) + int(Fraction(seconds) / time_base(stream))


def _latest(frames: Iterable[VideoFrame]) -> VideoFrame | None:
    """The frame shown last: decoders emit in presentation order, but trust timestamps."""
    best: VideoFrame | None = None
    for frame in frames:
        if best is None or (frame.pts or 0) >= (best.pts or 0):
            best = frame
    return best


def _frame_at(
    container: InputContainer, stream: VideoStream, index: int, path: Path
) -> VideoFrame | None:
    """Find the index-th timestamp from the packets (no decoding), then seek and decode to it."""
    stamps = [p.pts for p in container.demux(stream) if p.size]
    if not -len(stamps) <= index < len(stamps):
        raise MediaError(f"{path}: frame {index} is out of range; the clip has {len(stamps)}")
    if None in stamps:  # an elementary stream without timestamps: count decoded frames
        return next(islice(_decode_afresh(path), index % len(stamps), None), None)
    target = sorted(pts for pts in stamps if pts is not None)[index]
    if _seek(container, stream, target):
        frame = _frame_with_pts(container.decode(stream), target)
        if frame is not None:
            return frame
    return _frame_with_pts(_decode_afresh(path), target)  # the seek failed or missed


def _decode_afresh(path: Path) -> Iterator[VideoFrame]:
    """Every frame from a new open of the file: for files that cannot seek."""
    with open_input(path) as container:
        yield from container.decode(video_stream(container, path))


def _frame_with_pts(frames: Iterable[VideoFrame], target: int) -> VideoFrame | None:
    for frame in frames:
        if frame.pts == target:
            return frame
        if frame.pts is not None and frame.pts > target:
            return None
    return None


def save_png(image: Image.Image, out: Path) -> str:
    """Write `image` as PNG atomically; the same pixels always give the same bytes."""
    buffer = io.BytesIO()
    # No metadata is passed, so nothing time- or host-dependent ends up in the file.
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    data = buffer.getvalue()
    with media_errors(out):
        write_atomic(out, data)
    return hashlib.sha256(data).hexdigest()


# --- reading clips for the film ---------------------------------------------------------


@dataclass(frozen=True)
class Canvas:
    """The film's picture grid: a size and a frame rate, and the first clip's colour tags."""

    width: int
    height: int
    fps: Fraction
    colour: tuple[int, int, int, int] = (0, 2, 2, 2)  # range, primaries, transfer, matrix

    def frames_in(self, clip: Clip) -> int:
        return round(clip.end * self.fps)


@dataclass
class Clip:
    """An open clip; `index()` fills in its frame timestamps when a caller needs them."""

    path: Path
    container: InputContainer
    video: VideoStream
    audio: AudioStream | None
    stamps: list[int] = field(default_factory=list)  # video pts in presentation order
    keyframes: list[int] = field(default_factory=list)  # indices into stamps
    end: Fraction = Fraction(0)  # seconds of picture from the first frame

    @classmethod
    @contextmanager
    def open(cls, path: Path) -> Iterator[Clip]:
        with open_input(path) as container:
            video = video_stream(container, path)
            video.thread_type = "AUTO"  # frame threads: decoding is much of a re-encode
            audio = container.streams.audio[0] if container.streams.audio else None
            yield cls(path, container, video, audio)

    @property
    def fps(self) -> Fraction:
        rate = _frame_rate(self.video)
        if not rate:
            raise MediaError(f"{self.path}: the video has no frame rate")
        return rate

    @property
    def time_base(self) -> Fraction:
        return time_base(self.video)

    @property
    def origin(self) -> int:
        return self.stamps[0] if self.stamps else self.video.start_time or 0

    def packets(self, *streams: Stream | None) -> Iterator[Packet[Any]]:
        """Demuxed packets of `streams`, without the empty end-of-stream markers."""
        with media_errors(self.path):
            for packet in self.container.demux([s for s in streams if s is not None]):
                if packet.dts is not None and packet.size:
                    yield packet

    def index(self) -> None:
        """Read every video packet's timestamp, no decoding: frame order, keyframes, length."""
        rows = sorted((p.pts or 0, p.is_keyframe, p.duration) for p in self.packets(self.video))
        if not rows:
            raise MediaError(f"{self.path}: no video frames")
        self.stamps = [pts for pts, _, _ in rows]
        self.keyframes = [i for i, (_, key, _) in enumerate(rows) if key]
        step = rows[-1][2] or round(1 / (self.fps * self.time_base))
        self.end = (self.stamps[-1] + step - self.stamps[0]) * self.time_base

    def frames(self, canvas: Canvas, start: int, stop: int) -> Iterator[VideoFrame]:
        """Canvas frames [start, stop): frame k is what the clip shows at k / fps.

        Timestamps, not counts, place each picture, so a clip at another or a variable frame
        rate still lands at the right moments. Frames come out in yuv420p at the canvas size.
        """
        tb, k = self.time_base, start
        tolerance = 1 / (2 * canvas.fps)
        held: VideoFrame | None = None
        for frame in self._decode_from(self.origin + round(start / canvas.fps / tb)):
            at = ((frame.pts or 0) - self.origin) * tb
            while held is not None and k < stop and at > k / canvas.fps + tolerance:
                yield held
                k += 1
            if k >= stop:
                return
            held = fit_frame(frame, canvas)
        while held is not None and k < stop:
            yield held
            k += 1

    def _decode_from(self, pts: int) -> Iterator[VideoFrame]:
        with media_errors(self.path):
            self.container.seek(pts, stream=self.video, backward=True)
            yield from self.container.decode(self.video)

    def sound(self, seconds: Fraction) -> Sound:
        """The sound under the picture, cut or padded to `seconds`; silence if there is none."""
        sound = np.zeros((2, round(seconds * AUDIO_RATE)), np.float32)
        if self.audio is None:
            return sound
        origin = self.origin * self.time_base  # the sound keeps its offset to the picture
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
        with media_errors(self.path):
            self.container.seek(0)
            for frame in [*self.container.decode(self.audio), None]:
                for chunk in resampler.resample(frame):
                    _lay(sound, chunk, origin)
        return sound


def _lay(sound: Sound, chunk: AudioFrame, origin: Fraction) -> None:
    tb = chunk.time_base or Fraction(1, AUDIO_RATE)  # the resampler's output rate
    at = round(((chunk.pts or 0) * tb - origin) * AUDIO_RATE)
    data = chunk.to_ndarray()
    low, high = max(at, 0), min(at + data.shape[1], sound.shape[1])
    if low < high:
        sound[:, low:high] = data[:, low - at : high - at]


def fit_frame(frame: VideoFrame, canvas: Canvas) -> VideoFrame:
    """The frame in yuv420p at the canvas size; another shape is letterboxed, not stretched."""
    size = (canvas.width, canvas.height)
    if (frame.width, frame.height) == size and frame.format.name == "yuv420p":
        return frame
    if frame.width * canvas.height == frame.height * canvas.width:
        return frame.reformat(*size, format="yuv420p")
    scale = min(Fraction(canvas.width, frame.width), Fraction(canvas.height, frame.height))
    width, height = round(frame.width * scale / 2) * 2, round(frame.height * scale / 2) * 2
    top, left = (canvas.height - height) // 2, (canvas.width - width) // 2
    picture = np.zeros((canvas.height, canvas.width, 3), np.uint8)
    picture[top : top + height, left : left + width] = frame.to_ndarray(
        width=width, height=height, format="rgb24"
    )
    return VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")


def blend_frames(a: VideoFrame, b: VideoFrame, weight: Fraction) -> VideoFrame:
    """Linear mix; in Y'CbCr it equals the mix in RGB, as the conversion is affine."""
    w = round(weight * 256)
    mixed = a.to_ndarray().astype(np.uint16) * (256 - w) + b.to_ndarray().astype(np.uint16) * w
    return VideoFrame.from_ndarray(((mixed + 128) >> 8).astype(np.uint8), format="yuv420p")


def mix_sounds(parts: list[Sound], overlap: int) -> Sound:
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


# --- H.264 parameter sets ---------------------------------------------------------------

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
