"""Clips for the film: an open clip file in; its frames on the film's grid and its sound, out.

A `Clip` reads packet timestamps without decoding (`index`), yields the pictures it shows at
each tick of a `Canvas` (the film's size and frame rate), and its sound resampled to the
film's rate. A `Piece` is a run of a clip's frames that goes into the film.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.packet import Packet
from av.stream import Stream
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from ..errors import MediaError
from .probe import frame_rate, media_errors, open_input, time_base, video_stream
from .sound import AUDIO_RATE, Sound

__all__ = ["Canvas", "Clip", "Piece", "blend_frames", "fit_frame"]


@dataclass(frozen=True)
class Canvas:
    """The film's picture grid: a size and a frame rate, and the first clip's colour tags."""

    width: int
    height: int
    fps: Fraction
    colour: tuple[int, int, int, int] = (0, 2, 2, 2)  # range, primaries, transfer, matrix

    @classmethod
    def of(cls, clip: Clip) -> Canvas:
        """The clip's own grid: its size, frame rate and colour tags."""
        ctx = clip.video.codec_context
        colour = (ctx.color_range, ctx.color_primaries, ctx.color_trc, ctx.colorspace)
        return cls(ctx.width, ctx.height, clip.fps, colour)

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
    # indices into stamps a copy may stop before: every frame before them decodes without any
    # frame after them (with B-frames, not every frame is such a place)
    clean_ends: set[int] = field(default_factory=set)
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
        rate = frame_rate(self.video)
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
        decoded = [(p.pts or 0, p.is_keyframe, p.duration) for p in self.packets(self.video)]
        if not decoded:
            raise MediaError(f"{self.path}: no video frames")
        rows = sorted(decoded)
        self.stamps = [pts for pts, _, _ in rows]
        self.keyframes = [i for i, (_, key, _) in enumerate(rows) if key]
        self.clean_ends = _clean_ends([pts for pts, _, _ in decoded], self.stamps)
        step = rows[-1][2] or round(1 / (self.fps * self.time_base))
        self.end = (self.stamps[-1] + step - self.stamps[0]) * self.time_base

    def canvas_frame(self, canvas: Canvas, index: int) -> int:
        """The canvas frame showing the clip's frame `index` (its count: the clip's end)."""
        if index >= len(self.stamps):
            return canvas.frames_in(self)
        return round((self.stamps[index] - self.origin) * self.time_base * canvas.fps)

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

    def sound(self, seconds: Fraction, start: Fraction = Fraction(0)) -> Sound:
        """The sound under the picture from `start` seconds into it, cut or padded to
        `seconds`; silence if there is none."""
        sound = np.zeros((2, round(seconds * AUDIO_RATE)), np.float32)
        if self.audio is None:
            return sound
        # the sound keeps its offset to the picture
        origin = self.origin * self.time_base + start
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
        with media_errors(self.path):
            self.container.seek(0)
            for frame in [*self.container.decode(self.audio), None]:
                for chunk in resampler.resample(frame):
                    _lay(sound, chunk, origin)
        return sound


def _clean_ends(decoded: list[int], stamps: list[int]) -> set[int]:
    """Where a copy may stop: after m packets in decode order that are the first m frames."""
    rank = {pts: i for i, pts in enumerate(stamps)}
    ends, latest = set(), -1
    for m, pts in enumerate(decoded, start=1):
        latest = max(latest, rank[pts])
        if latest == m - 1:
            ends.add(m)
    return ends


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


@dataclass(frozen=True)
class Piece:
    """Frames [start, stop) of a clip, counted on the canvas's frame grid."""

    clip: Clip
    start: int
    stop: int
