"""Stitching: the picked clip of every shot in the film, in order, in; the film, out.

Input: clip files, the film's transition (a cut, or a crossfade of some seconds) and,
optionally, the film's size and frame rate.
Output: one video file, written atomically, with the same bytes for the same inputs, on one
canvas (`choose_canvas`: the size and frame rate asked for, else those most clips have):

- cut, and the clips agree on codec, size, pixel format, frame rate and codec headers, and
  that is the canvas: the packets are copied and no pixel is decoded ("copy", `copy`);
- cut, and the clips differ: the film is re-encoded on the canvas, other sizes scaled and
  letterboxed onto it, other frame rates re-timed by timestamps ("reencode", `encode`);
- crossfade: H.264 clips whose headers match our encoder keep the GOPs between seams as they
  are and only the GOPs around each seam are re-encoded (`splice`); other clips are
  re-encoded whole ("crossfade" either way).

A stream copy copies the sound too when every clip has the same kind. Otherwise the film's
track is rebuilt (a clip without sound is silence as long as its picture, a crossfade mixes)
and encoded once (`sound`), so the sound stays in sync across every cut and lasts as long as
the film; pictures that can be copied still are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from pathlib import Path

from ..errors import MediaError
from ..store.atomic import atomic_path
from .clip import Canvas, Clip
from .copy import can_copy, can_copy_video, copy_clips
from .encode import encode_clips
from .formats import OutputFormat, format_for_file
from .probe import media_errors
from .sound import film_sound
from .splice import can_splice, splice_clips

__all__ = ["StitchMethod", "StitchResult", "Transition", "choose_canvas", "stitch_clips"]


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
    canvas: Canvas | None = None


def stitch_clips(
    clips: Sequence[Path],
    out: Path,
    *,
    transition: Transition = Transition(),
    output_format: str | None = None,
    size: tuple[int, int] | None = None,
    fps: Fraction | float | None = None,
) -> StitchResult:
    """Join `clips` in order into `out`, on `size` and `fps` when given (else those most
    clips have); the module docstring says which way and when."""
    if not clips:
        raise ValueError("no clips to stitch")
    fmt = format_for_file(out, output_format)
    with ExitStack() as stack:
        opened = [stack.enter_context(Clip.open(path)) for path in clips]
        canvas = choose_canvas(opened, size, fps)
        with media_errors(out), atomic_path(out) as tmp:
            method, frames, seconds = _stitch(opened, tmp, fmt, transition, canvas)
    return StitchResult(out, method, seconds, frames, canvas)


def choose_canvas(clips: Sequence[Clip], size: tuple[int, int] | None = None,
                  fps: Fraction | float | None = None) -> Canvas:
    """The film's one size and frame rate: those asked for, else the ones most clips have
    (the earliest clip's on a tie), with the colour tags of the first clip of that size."""
    sizes = [(c.video.codec_context.width, c.video.codec_context.height) for c in clips]
    width, height = size or Counter(sizes).most_common(1)[0][0]
    rate = _rate(fps) if fps else Counter(c.fps for c in clips).most_common(1)[0][0]
    if width % 2 or height % 2:
        raise MediaError(f"{width}x{height} cannot be encoded; yuv420p needs an even width "
                         "and height")
    model = clips[sizes.index((width, height))] if (width, height) in sizes else clips[0]
    ctx = model.video.codec_context
    colour = (ctx.color_range, ctx.color_primaries, ctx.color_trc, ctx.colorspace)
    return Canvas(width, height, rate, colour)


def _rate(fps: Fraction | float) -> Fraction:
    """A frame rate as a fraction: 23.976, 29.97 and 59.94 are NTSC's n*1000/1001."""
    ntsc = Fraction(round(fps * Fraction(1001, 1000)) * 1000, 1001)
    return ntsc if abs(ntsc - Fraction(fps)) < Fraction(1, 1000) else (
        Fraction(fps).limit_denominator(1000))


def _stitch(clips: list[Clip], tmp: Path, fmt: OutputFormat, transition: Transition,
            canvas: Canvas) -> tuple[StitchMethod, int, float]:
    fade = 0
    if transition.kind == "crossfade":
        fade = round(Fraction(transition.seconds) * canvas.fps)
    on_canvas = all(_fits(clip, canvas) for clip in clips)
    if not fade and on_canvas and can_copy(clips, fmt):
        return (StitchMethod.COPY, *copy_clips(clips, tmp, fmt))
    for clip in clips:
        clip.index()
    _check_lengths(clips, canvas, fade)
    if not fade and on_canvas and can_copy_video(clips, fmt):
        return (StitchMethod.COPY, *copy_clips(clips, tmp, fmt, film_sound(clips, canvas, 0)))
    if not fade:
        return (StitchMethod.REENCODE, *encode_clips(clips, tmp, fmt, canvas, 0))
    if on_canvas and can_splice(clips, fmt, canvas):
        return (StitchMethod.CROSSFADE, *splice_clips(clips, tmp, fmt, canvas, fade))
    return (StitchMethod.CROSSFADE, *encode_clips(clips, tmp, fmt, canvas, fade))


def _fits(clip: Clip, canvas: Canvas) -> bool:
    ctx = clip.video.codec_context
    return (ctx.width, ctx.height, clip.fps) == (canvas.width, canvas.height, canvas.fps)


def _check_lengths(clips: list[Clip], canvas: Canvas, fade: int) -> None:
    """A clip must hold its fades: its fade in and its fade out may not overlap."""
    for i, clip in enumerate(clips):
        fades = fade * ((i > 0) + (i < len(clips) - 1))
        if canvas.frames_in(clip) < max(fades, 1):
            raise MediaError(f"{clip.path}: {float(clip.end):.2f} s is too short for "
                             f"{fades} frames of crossfade")
