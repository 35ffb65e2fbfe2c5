"""Films: finished jobs -> one stitched film per variant, written next to the storyboard, and
its timeline.

Each film entry goes in as the part of its shot's picked take that the film plan keeps:
trimmed, cut where chained shots hand over (`frame: best` read as the frame it chose), and
graded when its shot holds its colour. A film is re-stitched only when its inputs (the clips,
the frames kept of each, the seams, the format) changed or the file is gone or altered;
otherwise the file on disk is left as it is, byte for byte, and the timeline recorded with it
is returned. A film whose shot failed is not made, and says which shot stopped it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..errors import MediaError
from ..language.compile import Compiled
from ..language.films import FilmEntry, FilmPlan, SeamKind
from ..language.plan import Plan
from ..media.stitch import Span, Timeline, Transition
from ..store import ObjectStore, Take, remove_partials, sha256_file, write_atomic
from .continuity import frame_count, frame_index, is_graded, take_clip
from .finishing import make_film_file
from .scheduler import Job, Reporter

TakeOf = Callable[[str], Take | None]  # a shot key -> its picked take, once made


@dataclass(frozen=True)
class FilmResult:
    variant: dict[str, Any]
    path: Path | None
    method: str | None  # copy | splice | reencode | crossfade | unchanged; +how it was finished
    error: str | None = None
    timeline: Timeline | None = None

    def to_json(self) -> dict[str, Any]:
        return {"variant": self.variant, "path": str(self.path) if self.path else None,
                "method": self.method, "error": self.error,
                "timeline": self.timeline.to_json() if self.timeline else None}


def make_films(compiled: Compiled, jobs: Mapping[str, Job], store: ObjectStore,
               reporter: Reporter) -> list[FilmResult]:
    take_of = _job_takes(compiled.plan, jobs)
    return [_make_film(compiled, film, take_of, store, reporter) for film in compiled.plan.films]


def _job_takes(plan: Plan, jobs: Mapping[str, Job]) -> TakeOf:
    def take_of(key: str) -> Take | None:
        shot = plan.shot(key)
        job = jobs.get(shot.identity)
        if job is None or job.record is None or not 1 <= shot.pick <= len(job.record.takes):
            return None
        return job.record.takes[shot.pick - 1]

    return take_of


def _make_film(compiled: Compiled, film: FilmPlan, take_of: TakeOf, store: ObjectStore,
               reporter: Reporter) -> FilmResult:
    variant = dict(film.variant)
    target = (compiled.board.folder / film.file).resolve()
    if not target.is_relative_to(compiled.board.folder):
        return FilmResult(variant, None, None,
                          f"film.file {film.file!r} is outside the storyboard's folder")
    _note_grading(compiled.plan, film, take_of, store, reporter)
    try:
        spans = film_spans(compiled.plan, film, take_of, store)
    except MissingShot as exc:
        return FilmResult(variant, None, None, f"not made: {exc.key} did not finish")
    except MediaError as exc:
        return FilmResult(variant, None, None, exc.render())
    if target.parent.is_dir():
        remove_partials(target)  # a run killed while stitching; this one holds the folder
    stamp = _stamp(spans, film)
    recorded = _recorded(store, stamp, target)
    if recorded is not None:
        return FilmResult(variant, target, "unchanged", timeline=recorded)
    laid = f", with {film.finish.summary()}" if film.finish else ""
    reporter.note(f"stitching {film.file} from {len(spans)} clips{laid}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)  # plan checked it stays inside
        made = make_film_file(spans, target, _transitions(film), film.finish, store,
                              size=film.size, fps=film.fps)
    except MediaError as exc:
        return FilmResult(variant, None, None, exc.render())
    except OSError as exc:
        return FilmResult(variant, None, None,
                          f"cannot create {target.parent}: {exc.strerror or exc}")
    _record(store, stamp, target, made.timeline, made.captions)
    return FilmResult(variant, target, made.method, timeline=made.timeline)


def _note_grading(plan: Plan, film: FilmPlan, take_of: TakeOf, store: ObjectStore,
                  reporter: Reporter) -> None:
    """Grading takes a while: say so before it starts."""
    takes = [take_of(key) for key in dict.fromkeys(film.keys) if plan.shot(key).color_hold]
    count = sum(1 for take in takes if take is not None and not is_graded(store, take))
    if count:
        reporter.note(f"grading {count} clip{'s' if count > 1 else ''} for {film.file} "
                      "(continuity: color: match)")


class MissingShot(Exception):
    """A film entry's shot has no picked take yet."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def film_spans(plan: Plan, film: FilmPlan, take_of: TakeOf, store: ObjectStore) -> list[Span]:
    """What of each entry's clip the film keeps (graded clips made here when needed);
    raises `MissingShot` for an entry whose take is not made."""
    spans = []
    for entry in film.entries or [FilmEntry(key) for key in film.keys]:
        take = take_of(entry.key)
        if take is None:
            raise MissingShot(entry.key)
        spans.append(entry_span(store, entry, take, plan.shot(entry.key).color_hold))
    return spans


def entry_span(store: ObjectStore, entry: FilmEntry, take: Take, color_hold: bool) -> Span:
    """The frames of a take a film entry keeps: its cut points, narrowed by its trims."""
    count = frame_count(take)
    fps = Fraction(str(take.probe.get("fps") or 24))
    start = frame_index(store, take, entry.start)
    stop = count if entry.stop is None else frame_index(store, take, entry.stop)
    if entry.trim_in is not None:
        start = max(start, round(entry.trim_in * fps))
    if entry.trim_out is not None:
        out = round(entry.trim_out * fps)
        stop = min(stop, out + count if out < 0 else out)
    clip = take_clip(store, take, color_hold).path
    return Span(clip, start, None if stop == count else stop, entry.key)


def _transitions(film: FilmPlan) -> list[Transition] | Transition:
    if not film.seams:
        return Transition(film.transition, film.seconds)
    return [Transition("crossfade" if seam.kind is SeamKind.CROSSFADE else "cut", seam.seconds)
            for seam in film.seams]


def _stamp(spans: list[Span], film: FilmPlan) -> str:
    facts = {"clips": [span.clip.name for span in spans],
             "frames": [[span.start, span.stop] for span in spans],
             "seams": [[str(t.kind), t.seconds] for t in _seams(film, len(spans))],
             "file": Path(film.file).suffix.lower()}
    if film.size or film.fps:
        facts.update(size=film.size, fps=film.fps)
    if film.finish is not None:  # absent otherwise: films made before finishing keep theirs
        facts["finish"] = film.finish.facts()
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def _seams(film: FilmPlan, count: int) -> list[Transition]:
    transitions = _transitions(film)
    return transitions if isinstance(transitions, list) else [transitions] * (count - 1)


def _stamp_path(store: ObjectStore, stamp: str) -> Path:
    return store.film_stamp_path(stamp)


def _recorded(store: ObjectStore, stamp: str, target: Path) -> Timeline | None:
    """The timeline recorded with the film, if the file is still the one made from `stamp`."""
    path = _stamp_path(store, stamp)
    if not path.is_file() or not target.is_file():
        return None
    recorded = json.loads(path.read_text(encoding="utf-8"))
    if recorded.get("sha256") != sha256_file(target) or "timeline" not in recorded:
        return None
    for name, sha in (recorded.get("captions") or {}).items():
        beside = target.with_name(name)
        if not beside.is_file() or sha256_file(beside) != sha:
            return None
    return Timeline.from_json(recorded["timeline"])


def _record(store: ObjectStore, stamp: str, target: Path, timeline: Timeline,
            captions: Mapping[str, str]) -> None:
    data = json.dumps({"sha256": sha256_file(target), "file": target.name,
                       "timeline": timeline.to_json(), "captions": dict(captions)},
                      indent=2).encode()
    path = _stamp_path(store, stamp)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
