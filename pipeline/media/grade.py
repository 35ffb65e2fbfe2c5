"""Grading: a clip in; the same clip with its colour drift cancelled, as a new file, out.

A `Correction` holds the mean and spread of each L*a*b* channel at the clip's first frame
and at its last. Graded, frame i of n is moved, channel by channel, from where the drift has
taken it by then (the first frame's values, drifted linearly towards the last's) back to the
first frame's: nothing changes at the first frame, and by the last frame the drift between
the two is gone. That change is applied to each frame as the affine map (3x3 and an offset)
of its Y'CbCr values that best matches it over the frame's own colours (least squares on
every 8th pixel each way): a global grade, without the cost of taking every pixel through
RGB and L*a*b* (it matches the per-pixel result to 40-50 dB).

The source is only read; the graded clip is encoded with the film's own encoder settings (so
it can share a track with other graded clips) and keeps the source's frame count, frame
rate, colour tags and sound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from ..store.atomic import atomic_path
from .clip import Canvas, Clip
from .colour import YuvSpace, lab_to_rgb, mix_channels, rgb_to_lab
from .copy import move_packet
from .encode import configure_encoder, stamp_frame
from .formats import format_for_file, open_output
from .frames import Planes, extract_frame, split_planes
from .probe import media_errors, time_base

__all__ = ["Correction", "grade_clip", "grade_planes", "measure_correction"]

Vector = tuple[float, float, float]
_MIN_SPREAD = 1.0  # L*a*b* units: a flatter channel (a grey picture's a and b) is not scaled
_MAX_SCALE = 2.0  # a channel's spread is at most doubled or halved
_SAMPLE = 8  # the matrix is fitted on every 8th pixel of every 8th row


@dataclass(frozen=True)
class Correction:
    """Per L*a*b* channel, the mean and spread at a clip's first frame and at its last."""

    first_mean: Vector
    first_spread: Vector
    last_mean: Vector
    last_spread: Vector

    @classmethod
    def between(cls, first: npt.NDArray[Any], last: npt.NDArray[Any]) -> Correction:
        """The drift from one RGB frame to another."""
        (m0, s0), (m1, s1) = _stats(first), _stats(last)
        return cls(m0, s0, m1, s1)

    @property
    def drift(self) -> float:
        """Delta E between the first and the last frame's mean colours."""
        return math.dist(self.first_mean, self.last_mean)

    def at(self, t: float) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """(scale, offset) per channel for the frame `t` (0..1) of the way through the clip."""
        m0, s0 = np.array(self.first_mean), np.array(self.first_spread)
        m1, s1 = np.array(self.last_mean), np.array(self.last_spread)
        mean, spread = m0 + t * (m1 - m0), s0 + t * (s1 - s0)
        ratio = np.maximum(s0, _MIN_SPREAD) / np.maximum(spread, _MIN_SPREAD)
        scale = np.clip(ratio, 1 / _MAX_SCALE, _MAX_SCALE)
        return scale.astype(np.float32), (m0 - mean * scale).astype(np.float32)

    def to_json(self) -> dict[str, list[float]]:
        return {name: [round(v, 4) for v in getattr(self, name)]
                for name in ("first_mean", "first_spread", "last_mean", "last_spread")}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Correction:
        def vector(name: str) -> Vector:
            a, b, c = (float(v) for v in data[name])
            return a, b, c

        return cls(vector("first_mean"), vector("first_spread"), vector("last_mean"),
                   vector("last_spread"))


def _stats(rgb: npt.NDArray[Any]) -> tuple[Vector, Vector]:
    lab = rgb_to_lab(np.asarray(rgb)).reshape(-1, 3).astype(np.float64)
    mean, spread = lab.mean(axis=0), lab.std(axis=0)
    return (float(mean[0]), float(mean[1]), float(mean[2])), (
        float(spread[0]), float(spread[1]), float(spread[2]))


def measure_correction(path: Path) -> Correction:
    """The drift of a clip: its first frame against its last."""
    first = np.asarray(extract_frame(path, "first").convert("RGB"))
    last = np.asarray(extract_frame(path, "last").convert("RGB"))
    return Correction.between(first, last)


def grade_planes(planes: Planes, correction: Correction, t: float, space: YuvSpace) -> Planes:
    """One yuv420p frame's planes graded as the frame `t` (0..1) of the way through its clip.

    The change is fitted on a sample of the frame's own colours as an affine map of Y'CbCr
    (any affine map of RGB is one), and applied to the planes as they are: luma from luma
    and its block's chroma, chroma from chroma and its block's mean luma. No conversion of
    the whole frame to RGB and back, which would cost more than the grade and round it.
    """
    scale, offset = correction.at(t)
    if np.allclose(scale, 1) and np.allclose(offset, 0, atol=1e-3):
        return planes
    y, u, v = planes
    sample = np.stack([y[::_SAMPLE, ::_SAMPLE], u[:: _SAMPLE // 2, :: _SAMPLE // 2],
                       v[:: _SAMPLE // 2, :: _SAMPLE // 2]], axis=-1).reshape(-1, 3)
    lab = rgb_to_lab(np.clip(mix_channels(sample, space.to_rgb), 0, 255))
    lab *= scale
    lab += offset
    target = mix_channels(lab_to_rgb(lab), space.from_rgb)
    given = np.c_[sample.astype(np.float32), np.ones(len(sample), np.float32)]
    fit = np.linalg.lstsq(given, target, rcond=None)[0].astype(np.float32)
    quads = y[0::2, 0::2].astype(np.float32)
    quads += y[1::2, 0::2]
    quads += y[0::2, 1::2]
    quads += y[1::2, 1::2]
    mean_y = quads * np.float32(0.25)
    uf, vf = u.astype(np.float32), v.astype(np.float32)
    chroma_part = uf * fit[1, 0] + vf * fit[2, 0] + fit[3, 0]
    luma = y * fit[0, 0] + chroma_part.repeat(2, axis=0).repeat(2, axis=1)
    graded_u = mean_y * fit[0, 1] + uf * fit[1, 1] + vf * fit[2, 1] + fit[3, 1]
    graded_v = mean_y * fit[0, 2] + uf * fit[1, 2] + vf * fit[2, 2] + fit[3, 2]
    return _to_u8(luma), _to_u8(graded_u), _to_u8(graded_v)


def _to_u8(plane: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    plane += 0.5
    np.clip(plane, 0, 255, out=plane)
    return plane.astype(np.uint8)


def grade_clip(src: Path, out: Path, correction: Correction) -> int:
    """Write `src` graded to `out` (atomically); return its frame count."""
    fmt = format_for_file(out)
    with Clip.open(src) as clip, media_errors(out), atomic_path(out) as tmp:
        clip.index()
        canvas = Canvas.of(clip)
        count = canvas.frames_in(clip)
        space = YuvSpace.of(canvas.colour[3], canvas.colour[0])
        with open_output(tmp, fmt) as output:
            stream = cast(VideoStream, output.add_stream(fmt.video_codec, rate=canvas.fps))
            configure_encoder(stream.codec_context, canvas, fmt)
            sound = output.add_stream_from_template(clip.audio) if clip.audio else None
            for i, frame in enumerate(clip.frames(canvas, 0, count)):
                planes = grade_planes(_planes(frame), correction, i / max(count - 1, 1), space)
                graded = VideoFrame.from_ndarray(np.concatenate(
                    [planes[0], planes[1].reshape(-1, planes[0].shape[1]),
                     planes[2].reshape(-1, planes[0].shape[1])]), format="yuv420p")
                output.mux(stream.encode(stamp_frame(graded, i, canvas)))
            output.mux(stream.encode(None))
            if clip.audio is not None and sound is not None:
                _copy_sound(clip, clip.audio, sound, output)
    return count


def _planes(frame: VideoFrame) -> Planes:
    """The Y, U and V planes of a yuv420p frame (its packed array split)."""
    return split_planes(cast(npt.NDArray[np.uint8], frame.to_ndarray()), frame.width,
                        frame.height)


def _copy_sound(clip: Clip, audio: AudioStream, stream: AudioStream,
                output: OutputContainer) -> None:
    """The source's sound packets as they are, keeping their offset to the first frame."""
    shift = -round(clip.origin * clip.time_base / time_base(audio))
    with media_errors(clip.path):
        clip.container.seek(0)
    for packet in clip.packets(audio):
        move_packet(packet, shift, stream)
        output.mux_one(packet)
