"""Stitching: the picked clip of every shot in the film, in order, in; the film, out.

Input: clip files and the film's transition (a cut, or a crossfade of some seconds).
Output: one video file, written atomically, with the same bytes for the same inputs:

- cut, and the clips agree on codec, size, pixel format, frame rate and codec headers: the
  packets are copied and no pixel is decoded ("copy", `copy`);
- cut, and the clips differ: the film is re-encoded on the first clip's size and frame rate,
  the others scaled and letterboxed onto it ("reencode", `encode`);
- crossfade: H.264 clips whose headers match our encoder keep the GOPs between seams as they
  are and only the GOPs around each seam are re-encoded (`splice`); other clips are
  re-encoded whole ("crossfade" either way).

A stream copy copies the audio too. Otherwise the film's audio is rebuilt (a clip without
sound is silence, a crossfade mixes) and encoded once (`sound`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from pathlib import Path

from ..errors import MediaError
from ..store.atomic import atomic_path
from .clip import Canvas, Clip
from .copy import can_copy, copy_clips
from .encode import encode_clips
from .formats import OutputFormat, format_for_file
from .probe import media_errors
from .splice import can_splice, splice_clips

__all__ = ["StitchMethod", "StitchResult", "Transition", "stitch_clips"]


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
    fmt = format_for_file(out, output_format)
    with ExitStack() as stack:
        opened = [stack.enter_context(Clip.open(path)) for path in clips]
        with media_errors(out), atomic_path(out) as tmp:
            method, frames, seconds = _stitch(opened, tmp, fmt, transition)
    return StitchResult(out, method, seconds, frames)


def _stitch(
    clips: list[Clip], tmp: Path, fmt: OutputFormat, transition: Transition
) -> tuple[StitchMethod, int, float]:
    fade = 0
    if transition.kind == "crossfade":
        fade = round(Fraction(transition.seconds) * clips[0].fps)
    if not fade and can_copy(clips, fmt):
        return (StitchMethod.COPY, *copy_clips(clips, tmp, fmt))
    for clip in clips:
        clip.index()
    canvas = _canvas(clips[0])
    _check_lengths(clips, canvas, fade)
    if not fade:
        return (StitchMethod.REENCODE, *encode_clips(clips, tmp, fmt, canvas, 0))
    if can_splice(clips, fmt, canvas):
        return (StitchMethod.CROSSFADE, *splice_clips(clips, tmp, fmt, canvas, fade))
    return (StitchMethod.CROSSFADE, *encode_clips(clips, tmp, fmt, canvas, fade))


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
