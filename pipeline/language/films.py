"""Film plans: each variant's rendered film block and the planned shots in; one `FilmPlan`
per variant out: its shots in order, the part of each clip it keeps, what joins them, the
file, and the canvas the storyboard asks for (`film.size`, `film.fps`); where it does not,
the film takes the size and frame rate most of its clips have, which only the clips can
tell (media/stitch.py).

A film entry is a shot (`a`, or `{shot: a, in: 1.5, out: -0.5}`: seconds from the clip's
start, `out` negative from its end) and the frames of its picked take the film keeps.
Where the later of two neighbours continues from a frame of the earlier (`from`, or a first
frame image `{shot: ...}`), or the earlier ends on a frame of the later (a bridge's last
frame image), the two hand over: the earlier stops just before that frame and the later
starts on it, so the frame is shown once, and the seam is a cut. The film's transition joins
the other neighbours.

Trims are checked here, each clip's frame count taken as its duration times its model's
frame rate: a trim that cuts a handover frame out of the film, reaches past its clip, or
keeps nothing is a problem at the film entry. So is a crossfade longer than the clips it
joins can hold, by the stitcher's rule: each clip, as the film keeps it, holds its fade in
and its fade out, counted in frames at the film's frame rate. Pure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from ..errors import Problem
from ..media.cues import Finish
from .catalog import Catalog
from .continuity import image_position
from .load import Document, Path_
from .templates import Variant

if TYPE_CHECKING:
    from .plan import PlannedShot

__all__ = ["BEST_SECONDS", "FilmEntry", "FilmPlan", "FrameMark", "Handover", "Seam", "SeamKind",
           "entry_id", "film_plans", "handovers", "shot_sources"]

FrameMark = str | int  # "first", "last", "best" or an index (negative from the end)
BEST_SECONDS = 0.5  # `frame: best` is chosen among a clip's last half second


class SeamKind(StrEnum):
    HANDOVER = "handover"  # chained neighbours: a cut on the frame they share, shown once
    CUT = "cut"
    CROSSFADE = "crossfade"


@dataclass(frozen=True)
class Handover:
    """Frame `frame` of `source`'s picked take is the `position` frame of `target`."""

    source: str
    frame: FrameMark
    target: str
    position: str  # first | last

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "frame": self.frame, "target": self.target,
                "position": self.position}


@dataclass(frozen=True)
class FilmEntry:
    """A shot in the film: its trims (seconds), and the frames where cut points start it
    (`start`) and end it (`stop`, the first frame not kept; None: its end)."""

    key: str
    trim_in: float | None = None
    trim_out: float | None = None
    start: FrameMark = 0
    stop: FrameMark | None = None

    def to_json(self) -> dict[str, Any]:
        return {"shot": self.key, "in": self.trim_in, "out": self.trim_out,
                "start": self.start, "stop": self.stop}


@dataclass(frozen=True)
class Seam:
    """How film entry i meets entry i + 1."""

    kind: SeamKind
    seconds: float = 0.0
    handover: Handover | None = None

    def to_json(self) -> dict[str, Any]:
        shared = {"handover": self.handover.to_json()} if self.handover else {}
        return {"type": str(self.kind), "seconds": self.seconds, **shared}


@dataclass(frozen=True)
class FilmPlan:
    variant: Mapping[str, Any]
    keys: tuple[str, ...]
    transition: str
    seconds: float
    file: str
    size: tuple[int, int] | None = None  # film.size, else the clips' most common size
    fps: float | None = None  # film.fps, else the clips' most common frame rate
    entries: tuple[FilmEntry, ...] = ()
    seams: tuple[Seam, ...] = ()
    finish: Finish | None = None  # the soundtrack, captions and title laid over it

    def to_json(self) -> dict[str, Any]:
        canvas: dict[str, Any] = {"size": f"{self.size[0]}x{self.size[1]}"} if self.size else {}
        canvas |= {"fps": self.fps} if self.fps else {}
        finish = {"finish": self.finish.to_json()} if self.finish else {}
        return {"variant": dict(self.variant), "shots": list(self.keys), "file": self.file,
                "transition": {"type": self.transition, "seconds": self.seconds}, **canvas,
                "entries": [entry.to_json() for entry in self.entries],
                "seams": [seam.to_json() for seam in self.seams], **finish}


def entry_id(entry: Any) -> str:
    """The shot id of a film entry as written: `a` or `{shot: a, ...}`."""
    return str(entry["shot"]) if isinstance(entry, Mapping) else str(entry)


def shot_sources(request: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The frames of other shots a planned request uses, as `{source: shot, ...}` items."""
    images = (request.get("inputs") or {}).get("frameImages") or []
    items = [i["image"] if isinstance(i, Mapping) and "image" in i else i for i in images]
    return [i for i in items if isinstance(i, Mapping) and i.get("source") == "shot"]


def handovers(shots: Sequence[PlannedShot]) -> list[Handover]:
    """Every frame one planned shot takes from another, and where it puts it."""
    found = []
    for shot in shots:
        images = (shot.request.get("inputs") or {}).get("frameImages") or []
        for i, item in enumerate(images):
            outer = isinstance(item, Mapping) and "image" in item and "source" not in item
            image = item["image"] if outer else item
            if isinstance(image, Mapping) and image.get("source") == "shot":
                found.append(Handover(str(image["key"]), image["frame"], shot.key,
                                      image_position(item, i, len(images))))
    return found


def film_plans(doc: Document, variants: Sequence[Variant], films: Sequence[Mapping[str, Any]],
               keys_by_variant: Mapping[Variant, list[str]], planned: Sequence[PlannedShot],
               catalog: Catalog) -> tuple[list[FilmPlan], list[Problem]]:
    """One film per variant (`films` holds the rendered film block per variant), and the
    problems its trims have."""
    links = _links(handovers(planned))
    clips = {shot.key: _Clip.of(shot, catalog) for shot in planned}
    out, problems = [], []
    for variant, film in zip(variants, films, strict=True):
        transition = film.get("transition", "cut")
        kind = transition if isinstance(transition, str) else transition.get("type", "cut")
        seconds = 0.0 if isinstance(transition, str) else float(transition.get("seconds", 0.5))
        seconds = seconds if kind == "crossfade" else 0.0
        keys = keys_by_variant[variant]
        written = film.get("shots")
        seams, warnings = _seams(doc, keys, written is not None, links, clips,
                                 Seam(SeamKind(kind), seconds))
        entries = _entries(keys, written, seams)
        found = _check(doc, entries, seams, clips, written is not None)
        fps = film.get("fps") or Counter(clips[key].fps for key in keys).most_common(1)[0][0]
        found = found or _fades(doc, transition, entries, seams, clips, fps)
        problems += warnings + found
        size = film.get("size")
        out.append(FilmPlan(dict(variant), tuple(keys), kind, seconds, film["file"],
                            _size(size) if size else None, film.get("fps"), tuple(entries),
                            tuple(seams)))
    return out, list(dict.fromkeys(problems))


def _size(text: str) -> tuple[int, int]:
    width, _, height = str(text).partition("x")
    return int(width), int(height)


def _links(found: Sequence[Handover]) -> dict[tuple[str, str], Handover]:
    """Handovers by the film neighbours (earlier, later) they join."""
    links: dict[tuple[str, str], Handover] = {}
    for handover in found:
        pair = ((handover.source, handover.target) if handover.position == "first"
                else (handover.target, handover.source))
        links.setdefault(pair, handover)
    return links


def _seams(doc: Document, keys: Sequence[str], written: bool,
           links: Mapping[tuple[str, str], Handover], clips: Mapping[str, _Clip], plain: Seam
           ) -> tuple[list[Seam], list[Problem]]:
    """How each pair of neighbours meets; a handover from the earlier shot's first frame
    would leave nothing of it, so there both play whole (with a warning)."""
    seams, warnings = [], []
    for i, pair in enumerate(zip(keys, keys[1:])):
        handover = links.get(pair)
        empty = handover is not None and handover.position == "first" and clips[
            pair[0]].mark(handover.frame, latest=True) <= 0
        if handover is not None and empty:
            where: Path_ = ("film", "shots", i + 1) if written else ("film",)
            warnings.append(doc.problem(
                where, f"film.shots[{i + 1}]: {_id(pair[1])} continues from the first frame of "
                f"{_id(pair[0])}, so the film cannot cut {_id(pair[0])} there: both play whole",
                hint=f"put {_id(pair[1])} before {_id(pair[0])} in film.shots, or continue "
                     "from a later frame", warning=True))
        seams.append(Seam(SeamKind.HANDOVER, 0.0, handover) if handover and not empty
                     else plain)
    return seams, warnings


def _entries(keys: Sequence[str], written: Sequence[Any] | None, seams: Sequence[Seam]
             ) -> list[FilmEntry]:
    """Each entry with its trims and the frames its handovers start and stop it on."""
    entries = []
    for i, key in enumerate(keys):
        item = written[i] if written is not None else None
        trims = item if isinstance(item, Mapping) else {}
        start: FrameMark = 0
        stop: FrameMark | None = None
        before = seams[i - 1].handover if i else None
        after = seams[i].handover if i < len(seams) else None
        if before is not None and before.position == "last":
            start = before.frame  # a bridge before it ends on this frame of it
        if after is not None:
            stop = after.frame if after.position == "first" else "last"
        entries.append(FilmEntry(key, trims.get("in"), trims.get("out"), start, stop))
    return entries


@dataclass(frozen=True)
class _Clip:
    """What the checks know of an entry's clip: its id, frame count and frame rate."""

    id: str
    frames: int
    fps: int

    @classmethod
    def of(cls, shot: PlannedShot, catalog: Catalog) -> _Clip:
        spec = catalog.find(shot.model)
        fps = spec.fps if spec is not None else 24
        return cls(shot.id, round(shot.duration * fps), fps)

    def mark(self, mark: FrameMark, *, latest: bool) -> int:
        """A frame mark's index; `best` at the latest (or earliest) frame it can be."""
        if mark == "best":
            return self.frames - 1 if latest else self.frames - round(BEST_SECONDS * self.fps)
        if mark in ("first", "last"):
            return 0 if mark == "first" else self.frames - 1
        return int(mark) + self.frames if int(mark) < 0 else int(mark)


def _check(doc: Document, entries: Sequence[FilmEntry], seams: Sequence[Seam],
           clips: Mapping[str, _Clip], written: bool) -> list[Problem]:
    problems = []
    for i, entry in enumerate(entries):
        where: Path_ = ("film", "shots", i) if written else ("film",)
        before = seams[i - 1].handover if i else None
        after = seams[i].handover if i < len(seams) else None
        problems += _check_entry(doc, where, i, entry, clips[entry.key], (before, after))
    return problems


def _check_entry(doc: Document, where: Path_, i: int, entry: FilmEntry, clip: _Clip,
                 handover: tuple[Handover | None, Handover | None]) -> list[Problem]:
    label, found = f"film.shots[{i}]", []
    start = clip.mark(entry.start, latest=False)
    stop = clip.frames if entry.stop is None else clip.mark(entry.stop, latest=True)
    if entry.trim_in is not None:
        first = round(entry.trim_in * clip.fps)
        if first >= clip.frames:
            found.append(doc.problem(where + ("in",), f"{label}.in: {entry.trim_in:g} s is at or "
                                     f"past the end of {clip.id} ({clip.frames / clip.fps:g} s)"))
        elif handover[0] is not None and first > start:
            found.append(_cuts_handover(doc, where + ("in",), f"{label}.in", entry, clip,
                                        handover[0], start))
        start = max(start, first)
    if entry.trim_out is not None:
        last = round(entry.trim_out * clip.fps)
        last = last + clip.frames if last < 0 else last
        if not 0 < last <= clip.frames:
            found.append(doc.problem(where + ("out",), f"{label}.out: {entry.trim_out:g} s is "
                                     f"outside {clip.id} ({clip.frames / clip.fps:g} s)",
                                     hint="out is seconds from the clip's start, or negative "
                                          "from its end"))
        elif handover[1] is not None and last < stop:
            found.append(_cuts_handover(doc, where + ("out",), f"{label}.out", entry, clip,
                                        handover[1], stop))
        stop = min(stop, last)
    if not found and start >= stop:
        found.append(doc.problem(where, f"{label}: the film keeps no frame of {clip.id}",
                                 hint=_empty_hint(entry, handover)))
    return found


def _span(entry: FilmEntry, clip: _Clip) -> tuple[int, int]:
    """The frames of its clip the film keeps of an entry: [start, stop), the most it can."""
    start = clip.mark(entry.start, latest=False)
    stop = clip.frames if entry.stop is None else clip.mark(entry.stop, latest=True)
    if entry.trim_in is not None:
        start = max(start, round(entry.trim_in * clip.fps))
    if entry.trim_out is not None:
        last = round(entry.trim_out * clip.fps)
        stop = min(stop, last + clip.frames if last < 0 else last)
    return start, stop


def _fades(doc: Document, transition: Any, entries: Sequence[FilmEntry], seams: Sequence[Seam],
           clips: Mapping[str, _Clip], fps: float) -> list[Problem]:
    """A crossfade each clip can hold: the stitcher needs its fade in and its fade out (at
    the film's frame rate) within the frames the film keeps of it."""
    fades = [round(Fraction(seam.seconds) * Fraction(fps)) if seam.kind is SeamKind.CROSSFADE
             and seam.seconds > 0 else 0 for seam in seams]
    room: list[int] = []
    short: tuple[_Clip, int, list[int]] | None = None
    for i, entry in enumerate(entries):
        clip = clips[entry.key]
        start, stop = _span(entry, clip)
        kept = round((stop - start) * Fraction(fps) / clip.fps)
        sides = [f for f in (fades[i - 1] if i else 0, fades[i] if i < len(fades) else 0) if f]
        room += [kept // len(sides)] if sides else []
        if short is None and kept < max(sum(sides), 1):
            short = (clip, kept, sides)
    if short is None:
        return []
    clip, kept, sides = short
    seconds = max(s.seconds for s in seams if s.kind is SeamKind.CROSSFADE)
    where: Path_ = ("film", "transition") + (("seconds",) if isinstance(transition, Mapping)
                                             and "seconds" in transition else ())
    how = "fades in and out" if len(sides) == 2 else "fades"
    return [doc.problem(where, f"film.transition: a crossfade of {seconds:g} s is "
                        f"{max(fades)} frames at {fps:g} fps; shot {clip.id!r} keeps {kept} "
                        f"frames in the film and {how} over {sum(sides)}",
                        hint=f"use at most {float(Fraction(min(room), Fraction(fps))):g} s, "
                             "or longer shots")]


def _cuts_handover(doc: Document, where: Path_, label: str, entry: FilmEntry, clip: _Clip,
                   handover: Handover, frame: int) -> Problem:
    """A trim that cuts the frame two neighbours share out of the film."""
    other = _id(handover.target if handover.source == entry.key else handover.source)
    if where[-1] == "in":
        return doc.problem(where, f"{label}: {entry.trim_in:g} s starts {clip.id} after frame "
                           f"{frame}, the frame it takes over from {other} on",
                           hint=f"at a handover the film starts {clip.id} on that frame by "
                                f"itself: drop in")
    shared = (f"inside its last half second, where {other}'s frame: best is chosen"
              if entry.stop == "best" else f"before frame {frame}, the frame {other} "
                                           "continues from")
    return doc.problem(where, f"{label}: {entry.trim_out:g} s ends {clip.id} {shared}",
                       hint=f"at a handover the film ends {clip.id} just before that frame by "
                            f"itself: drop out, or continue {other} from an earlier frame")


def _id(key: str) -> str:
    return key.split("[")[0]


def _empty_hint(entry: FilmEntry, handover: tuple[Handover | None, Handover | None]) -> str:
    if entry.stop is not None and handover[1] is not None:
        return (f"{_id(handover[1].target)} continues from frame {entry.stop}: put it "
                "earlier in film.shots, or continue from a later frame")
    return "keep in before out"
