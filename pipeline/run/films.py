"""Films: finished jobs -> one stitched film per variant, written next to the storyboard, and
its timeline.

Each film entry goes in as the part of its shot's picked take that the film plan keeps:
trimmed, cut where chained shots hand over (`frame: best` read as the frame it chose), and
graded when its shot holds its colour. A film is re-stitched only when its inputs (the clips,
the frames kept of each, the seams, the format) changed or the file is gone or altered;
otherwise the file on disk is left as it is, byte for byte, and the timeline recorded with it
is returned. Every clip is checked against its hash before a film reads it (`takes_films_use`
names them for the run to check up front, so that a damaged one is got back first). A film
whose shot failed is not made, and says which shot stopped it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from pathlib import Path

from ..errors import FileError, MediaError
from ..language.compile import Compiled
from ..language.films import FilmEntry, FilmPlan, SeamKind
from ..language.plan import Plan
from ..media.stitch import Span, Timeline, Transition
from ..store import ObjectStore, Take, remove_partials, sha256_file, write_atomic
from .continuity import frame_count, frame_index, is_graded, take_clip
from .finishing import make_film_file
from .jobs import Job, Reporter

TakeOf = Callable[[str], Take | None]  # a shot key -> its picked take, once made
_DAMAGED = "its clips are damaged in the cache; run again to get them back"


class FilmStatus(StrEnum):
    MADE = "made"
    UNCHANGED = "unchanged"  # the file on disk is what these inputs make; left alone
    NOT_MADE = "not made"  # a shot it needs did not finish
    FAILED = "failed"


@dataclass(frozen=True)
class FilmOutcome:
    film: FilmPlan
    status: FilmStatus
    path: Path | None = None
    method: str | None = None  # copy | splice | reencode | crossfade; +how it was finished
    error: str | None = None
    timeline: Timeline | None = None

    @property
    def made(self) -> bool:
        return self.status in (FilmStatus.MADE, FilmStatus.UNCHANGED)


def make_films(compiled: Compiled, jobs: Mapping[str, Job], store: ObjectStore,
               reporter: Reporter) -> list[FilmOutcome]:
    take_of = _job_takes(compiled.plan, jobs)
    return [_make_film(compiled, film, take_of, store, reporter) for film in compiled.plan.films]


def film_path(compiled: Compiled, film: FilmPlan) -> Path:
    return (compiled.board.folder / film.file).resolve()


def takes_films_use(compiled: Compiled, jobs: Mapping[str, Job], store: ObjectStore
                    ) -> list[Take]:
    """The cached takes this run's films may read: every picked take of every film, but for
    a film whose file is still one storyreel stitched and whose shots are all cached (so a
    run that changes nothing reads no clip)."""
    take_of = _job_takes(compiled.plan, jobs)
    used: list[Take] = []
    for film in compiled.plan.films:
        takes = [take_of(key) for key in dict.fromkeys(film.keys)]
        cached = [take for take in takes if take is not None]
        if len(cached) < len(takes) or not _still_made(store, film_path(compiled, film)):
            used += cached
    return used


def _still_made(store: ObjectStore, target: Path) -> bool:
    if not target.is_file():
        return False
    sha = store.file_sha256(target)
    return any(_record_of(path).get("sha256") == sha for path in store.film_record_paths())


def _job_takes(plan: Plan, jobs: Mapping[str, Job]) -> TakeOf:
    def take_of(key: str) -> Take | None:
        shot = plan.shot(key)
        job = jobs.get(shot.identity)
        if job is None or job.record is None or not 1 <= shot.pick <= len(job.record.takes):
            return None
        return job.record.takes[shot.pick - 1]

    return take_of


def _make_film(compiled: Compiled, film: FilmPlan, take_of: TakeOf, store: ObjectStore,
               reporter: Reporter) -> FilmOutcome:
    target = film_path(compiled, film)
    if not target.is_relative_to(compiled.board.folder):
        return FilmOutcome(film, FilmStatus.FAILED,
                           error=f"film.file {film.file!r} is outside the storyboard's folder")
    if target.is_dir():
        return FilmOutcome(film, FilmStatus.FAILED,
                           error=f"cannot write the film {film.file}: {target} is a folder")
    takes = [take for key in dict.fromkeys(film.keys) if (take := take_of(key)) is not None]
    if not _still_made(store, target) and not all(_intact(store, take) for take in takes):
        return FilmOutcome(film, FilmStatus.FAILED, error=f"not made: {_DAMAGED}")
    _note_grading(compiled.plan, film, take_of, store, reporter)
    try:
        spans = film_spans(compiled.plan, film, take_of, store)
    except MissingShot as exc:
        return FilmOutcome(film, FilmStatus.NOT_MADE, error=f"not made: {exc.key} did not finish")
    except MediaError as exc:
        return FilmOutcome(film, FilmStatus.FAILED, error=exc.render())
    if target.parent.is_dir():
        remove_partials(target)  # a run killed while stitching; this one holds the folder
    stamp = _stamp(spans, film)
    recorded = _recorded(store, stamp, target)
    if recorded is not None:
        return FilmOutcome(film, FilmStatus.UNCHANGED, target, timeline=recorded)
    if not all(store.verify_file(span.clip) for span in spans):
        return FilmOutcome(film, FilmStatus.FAILED, error=f"not made: {_DAMAGED}")
    return _stitch(film, spans, target, stamp, store, reporter)


def _intact(store: ObjectStore, take: Take) -> bool:
    return store.verify(take.sha256, take.ext)


def _stitch(film: FilmPlan, spans: list[Span], target: Path, stamp: str, store: ObjectStore,
            reporter: Reporter) -> FilmOutcome:
    laid = f", with {film.finish.summary()}" if film.finish else ""
    reporter.note(f"stitching {film.file} from {len(spans)} clips{laid}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)  # plan checked it stays inside
        made = make_film_file(spans, target, _transitions(film), film.finish, store,
                              size=film.size, fps=film.fps)
        _record(store, stamp, target, made.timeline, made.captions)
    except MediaError as exc:
        return FilmOutcome(film, FilmStatus.FAILED, error=exc.render())
    except OSError as exc:
        error = FileError.from_os(exc, f"write the film {film.file}")
        return FilmOutcome(film, FilmStatus.FAILED, error=error.render())
    return FilmOutcome(film, FilmStatus.MADE, target, made.method, timeline=made.timeline)


def _record_of(path: Path) -> dict[str, object]:
    """A film record's JSON; empty when it is missing or unreadable (the film is made again)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


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


def _recorded(store: ObjectStore, stamp: str, target: Path) -> Timeline | None:
    """The timeline recorded with the film, if the file is still the one made from `stamp`."""
    if not target.is_file():
        return None
    recorded = _record_of(store.film_stamp_path(stamp))
    timeline, captions = recorded.get("timeline"), recorded.get("captions") or {}
    if recorded.get("sha256") != store.file_sha256(target) or not isinstance(timeline, dict):
        return None
    for name, sha in (captions.items() if isinstance(captions, dict) else []):
        beside = target.with_name(name)
        if not beside.is_file() or sha256_file(beside) != sha:
            return None
    return Timeline.from_json(timeline)


def _record(store: ObjectStore, stamp: str, target: Path, timeline: Timeline,
            captions: Mapping[str, str]) -> None:
    data = json.dumps({"sha256": store.file_sha256(target), "file": target.name,
                       "timeline": timeline.to_json(), "captions": dict(captions)},
                      indent=2).encode()
    path = store.film_stamp_path(stamp)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
