"""Stitching: the picked clip of every shot in the film, in order, in; the film, out.

Input: `Span`s (a clip, and the frames of it the film keeps after trims and cut points), the
transition at each seam (a cut, or a crossfade of some seconds) and, optionally, the film's
size and frame rate.
Output: one video file, written atomically, with the same bytes for the same inputs, on one
canvas (`choose_canvas`: the size and frame rate asked for, else those most clips have),
and its `Timeline` (where each span landed):

- cuts only, the clips agree on codec, size, pixel format, frame rate and codec headers,
  that is the canvas, and every span starts on a keyframe and ends where the frames before
  need nothing after: the packets are copied and no pixel is decoded ("copy", `copy`);
- H.264 clips on the canvas whose headers match our encoder keep the GOPs clear of every
  crossfade and every cut as they are; only the frames around each are re-encoded
  (`splice`): "crossfade" with a crossfade, "splice" with cuts alone;
- otherwise the film is re-encoded on the canvas, other sizes scaled and letterboxed onto
  it, other frame rates re-timed by timestamps ("reencode", or "crossfade" with one;
  `encode`).

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
from .clip import Canvas, Clip, Piece
from .copy import can_copy, can_copy_video, copy_allows, copy_clips
from .encode import encode_pieces
from .formats import OutputFormat, format_for_file
from .probe import media_errors
from .sound import Sound, film_sound
from .splice import can_splice, splice_pieces
from .timeline import Span, Timeline, lay_out

__all__ = ["Span", "StitchMethod", "StitchResult", "Timeline", "Transition", "choose_canvas",
           "stitch_clips", "stitch_film"]


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


    @property
    def is_crossfade(self) -> bool:
        return self.kind == "crossfade" and self.seconds > 0


class StitchMethod(StrEnum):
    COPY = "copy"
    SPLICE = "splice"
    REENCODE = "reencode"
    CROSSFADE = "crossfade"


@dataclass(frozen=True)
class StitchResult:
    path: Path
    method: StitchMethod
    duration: float
    frames: int
    timeline: Timeline
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
    """Join whole `clips` in order into `out`, with `transition` at every seam, on `size` and
    `fps` when given (else those most clips have)."""
    spans = [Span(Path(clip), key=Path(clip).stem) for clip in clips]
    return stitch_film(spans, out, transitions=transition, output_format=output_format,
                       size=size, fps=fps)


def stitch_film(
    spans: Sequence[Span],
    out: Path,
    *,
    transitions: Transition | Sequence[Transition] = Transition(),
    output_format: str | None = None,
    size: tuple[int, int] | None = None,
    fps: Fraction | float | None = None,
) -> StitchResult:
    """Join the spans in order into `out`; `transitions` is one for every seam, or a list
    with one per seam. The module docstring says which way and when."""
    if not spans:
        raise ValueError("no clips to stitch")
    seams = _seams(transitions, len(spans))
    fmt = format_for_file(out, output_format)
    with ExitStack() as stack:
        opened = [stack.enter_context(Clip.open(span.clip)) for span in spans]
        canvas = choose_canvas(opened, size, fps)
        with media_errors(out), atomic_path(out) as tmp:
            method, timeline = _stitch(opened, list(spans), seams, tmp, fmt, canvas)
    return StitchResult(out, method, timeline.seconds, timeline.frames, timeline, canvas)


def _seams(transitions: Transition | Sequence[Transition], count: int) -> list[Transition]:
    if isinstance(transitions, Transition):
        return [transitions] * (count - 1)
    if len(transitions) != count - 1:
        raise ValueError(f"{count} clips need {count - 1} transitions, not {len(transitions)}")
    return list(transitions)


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


def _stitch(clips: list[Clip], spans: list[Span], seams: list[Transition], tmp: Path,
            fmt: OutputFormat, canvas: Canvas) -> tuple[StitchMethod, Timeline]:
    fades = [round(Fraction(t.seconds) * canvas.fps) if t.is_crossfade else 0 for t in seams]
    cut = not all(span.whole for span in spans)
    on_canvas = all(_fits(clip, canvas) for clip in clips)
    for clip, span in zip(clips, spans):
        if not span.whole:
            clip.index()
    if not any(fades) and on_canvas and can_copy(clips, fmt):
        copied = _copy(clips, spans, tmp, fmt, canvas, None)
        if copied is not None:
            return StitchMethod.COPY, copied
    for clip in clips:
        if not clip.stamps:
            clip.index()
    kept = [span.bounds(len(clip.stamps)) for clip, span in zip(clips, spans)]
    pieces = [Piece(clip, clip.canvas_frame(canvas, a), clip.canvas_frame(canvas, b))
              for clip, (a, b) in zip(clips, kept)]
    _check_lengths(pieces, fades)
    if not any(fades) and on_canvas and can_copy_video(clips, fmt):
        copied = _copy(clips, spans, tmp, fmt, canvas, film_sound(pieces, canvas, fades))
        if copied is not None:
            return StitchMethod.COPY, copied
    timeline = lay_out(spans, kept, [p.stop - p.start for p in pieces], fades, canvas.fps)
    if (cut or any(fades)) and on_canvas and can_splice(clips, fmt, canvas):
        splice_pieces(pieces, tmp, fmt, canvas, fades)
        return StitchMethod.CROSSFADE if any(fades) else StitchMethod.SPLICE, timeline
    encode_pieces(pieces, tmp, fmt, canvas, fades)
    return StitchMethod.CROSSFADE if any(fades) else StitchMethod.REENCODE, timeline


def _copy(clips: list[Clip], spans: list[Span], tmp: Path, fmt: OutputFormat, canvas: Canvas,
          track: Sound | None) -> Timeline | None:
    """The film by stream copy (with `track` as its sound, else the clips' own), or None
    where a span's cut is not one copy allows."""
    windows = [None if span.whole else span.bounds(len(clip.stamps))
               for clip, span in zip(clips, spans)]
    if not all(w is None or copy_allows(clip, *w) for clip, w in zip(clips, windows)):
        return None
    counts, _ = copy_clips(clips, tmp, fmt, windows, track)
    kept = [w or (0, count) for w, count in zip(windows, counts)]
    return lay_out(spans, kept, counts, [0] * (len(spans) - 1), canvas.fps)


def _fits(clip: Clip, canvas: Canvas) -> bool:
    ctx = clip.video.codec_context
    return (ctx.width, ctx.height, clip.fps) == (canvas.width, canvas.height, canvas.fps)


def _check_lengths(pieces: list[Piece], fades: list[int]) -> None:
    """A piece must hold its fades: its fade in and its fade out may not overlap."""
    for i, piece in enumerate(pieces):
        both = (fades[i - 1] if i else 0) + (fades[i] if i < len(fades) else 0)
        if piece.stop - piece.start < max(both, 1):
            raise MediaError(f"{piece.clip.path}: {piece.stop - piece.start} frames are too "
                             f"short for {both} frames of crossfade")
