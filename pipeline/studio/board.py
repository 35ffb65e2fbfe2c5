"""Board: a storyboard path and its store in; everything the studio shows, out.

Compiles the storyboard against its lock and cache the way `storyreel run` does
(`prepare_run`), then gathers per shot its takes, its status (cached, or why it would run,
or what a run is doing to it now, or why it failed), its settings and costs; per film its
file; and every seam with its measures. A storyboard that does not compile gives a board
that carries the problems instead, so the page can show them until the file is fixed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import StoryreelError
from ..language.compile import Compiled
from ..language.continuity import Thresholds
from ..language.plan import PlannedShot, Reason
from ..media.formats import format_for_file
from ..run.execute import RunRequest, prepare_run
from ..store import Lock, LockEntry, ObjectStore, ShotRecord, Take
from ..store.activity import TaskActivity, latest_tasks
from ..store.journal import TaskPhase
from .seams import Seam, measure_seams, seam_edges


@dataclass(frozen=True)
class LiveState:
    """What a run is doing to a shot identity right now."""

    status: str
    error: str | None = None


@dataclass(frozen=True)
class TakeView:
    n: int
    sha256: str
    ext: str
    picked: bool
    duration: float | None = None


@dataclass(frozen=True)
class ShotView:
    shot: PlannedShot
    status: str
    takes: tuple[TakeView, ...]
    previous: tuple[TakeView, ...]  # the takes of the last render, when the shot will run again
    spent: float | None
    task_uuid: str | None
    error: str | None = None
    scene: str | None = None

    @property
    def key(self) -> str:
        return self.shot.key

    @property
    def will_run(self) -> bool:
        return not self.shot.cached

    @property
    def can_reroll(self) -> bool:
        """Whether a new seed makes a new take: some models take no seed."""
        return self.shot.seed_source != "none"

    @property
    def settings(self) -> dict[str, Any]:
        """Camera, style and the other provider settings, flat: `cameraMovement: crane_up`."""
        provider = self.shot.request.get("providerSettings") or {}
        return {k: v for values in provider.values() if isinstance(values, Mapping)
                for k, v in values.items()}


@dataclass(frozen=True)
class FilmView:
    variant: Mapping[str, Any]
    file: str
    keys: tuple[str, ...]
    sha256: str | None  # of the file on disk, None when it is not there
    ext: str
    content_type: str
    up_to_date: bool


@dataclass(frozen=True)
class Board:
    name: str
    file: str
    variants: tuple[Mapping[str, Any], ...] = ()
    shots: tuple[ShotView, ...] = ()
    seams: tuple[Seam, ...] = ()
    films: tuple[FilmView, ...] = ()
    spent: float = 0.0
    estimate: float = 0.0
    to_run: int = 0
    cost_is_estimate: bool = False
    unpriced: tuple[str, ...] = ()  # shots to run whose model has no published price
    problems: str | None = None  # the rendered errors of a storyboard that does not compile
    warnings: tuple[str, ...] = ()
    folder: Path = field(default_factory=Path)
    sources: tuple[Path, ...] = ()  # the storyboard file and the scene files it includes

    def shot(self, key: str) -> ShotView | None:
        return next((s for s in self.shots if s.key == key or s.shot.id == key), None)

    def in_variant(self, variant: Mapping[str, Any]) -> list[ShotView]:
        return [s for s in self.shots if dict(s.shot.variant) == dict(variant)]

    def seams_into(self, key: str) -> list[Seam]:
        return [s for s in self.seams if s.edge.child == key]

    def videos(self) -> dict[str, str]:
        """sha256 -> extension of every take on the board, current and previous."""
        return {t.sha256: t.ext for s in self.shots for t in (*s.takes, *s.previous)}


@dataclass
class BoardInputs:
    """What building a board reads besides the storyboard: the live states of a run the
    studio started, and a file hasher that can remember."""

    live: Mapping[str, LiveState] = field(default_factory=dict)
    hash_file: Callable[[Path], str] | None = None
    run_active: bool = False
    workers: int = 2


def build_board(path: Path, display: str, inputs: BoardInputs) -> Board:
    try:
        prepared = prepare_run(RunRequest(path, display))
    except StoryreelError as exc:  # the storyboard's problems, or an unreadable lock file
        return Board(name=path.stem, file=display, problems=exc.render(),
                     folder=path.resolve().parent, sources=_yaml_files(path))
    return _board(prepared.compiled, prepared.lock, prepared.store, display, inputs)


def _board(compiled: Compiled, lock: Lock, store: ObjectStore, display: str,
           inputs: BoardInputs) -> Board:
    plan = compiled.plan
    records = _records(store, plan.shots, lock)
    journal = latest_tasks(store)
    scenes = {s.id: s.scene for s in compiled.board.shots}
    shots = tuple(_shot_view(s, records, lock.shots.get(s.key), journal, inputs, scenes[s.id])
                  for s in plan.shots)
    limits = Thresholds.of(compiled.board.continuity)
    seams = measure_seams(seam_edges(plan), plan, records, store, lock.shots, limits,
                          inputs.workers)
    return Board(
        name=plan.name, file=display, variants=_variants(compiled),
        shots=shots, seams=tuple(seams), films=tuple(_films(compiled, lock, inputs)),
        spent=_spent(lock), estimate=plan.estimated_cost,
        to_run=len({s.identity for s in plan.shots if not s.cached}),
        cost_is_estimate=any(s.cost_is_estimate for s in plan.shots if not s.cached),
        unpriced=tuple(plan.unpriced),
        warnings=tuple(p.render() for p in plan.warnings), folder=compiled.board.folder,
        sources=_sources(compiled))


def _sources(compiled: Compiled) -> tuple[Path, ...]:
    board = compiled.board
    scenes = board.doc.data.get("scenes") or []
    return (board.path, *(board.path.parent / s["include"] for s in scenes if "include" in s))


def _yaml_files(path: Path, limit: int = 200) -> tuple[Path, ...]:
    """What to watch while the storyboard does not compile (an included file may be the
    broken one): every YAML file in its folder and the folders under it."""
    found = [p for pattern in ("*.yaml", "*.yml", "*/*.yaml", "*/*.yml")
             for p in path.parent.glob(pattern) if ".storyreel" not in p.parts]
    return (path, *sorted(found)[:limit])


def _variants(compiled: Compiled) -> tuple[Mapping[str, Any], ...]:
    return tuple(dict(f.variant) for f in compiled.plan.films)


def _records(store: ObjectStore, shots: tuple[PlannedShot, ...], lock: Lock
             ) -> dict[str, ShotRecord]:
    """identity -> record of every finished identity the plan or the lock names."""
    identities = {s.identity for s in shots} | {e.identity for e in lock.shots.values()}
    found = {i: store.find_shot(i) for i in identities}
    return {i: r for i, r in found.items() if r is not None}


def _shot_view(shot: PlannedShot, records: Mapping[str, ShotRecord], entry: LockEntry | None,
               journal: Mapping[str, TaskActivity], inputs: BoardInputs,
               scene: str | None) -> ShotView:
    record = records.get(shot.identity)
    takes = _takes(record, shot.pick)
    previous: tuple[TakeView, ...] = ()
    if record is None and entry is not None and entry.identity in records:
        previous = _takes(records[entry.identity], entry.pick)
    status, error = _status(shot, journal.get(shot.identity), inputs)
    return ShotView(shot, status, takes, previous, entry.cost if entry else None,
                    record.task_uuid if record else entry.task_uuid if entry else None,
                    error, scene)


def _takes(record: ShotRecord | None, pick: int) -> tuple[TakeView, ...]:
    if record is None:
        return ()
    return tuple(_take(t, pick) for t in record.takes)


def _take(take: Take, pick: int) -> TakeView:
    duration = take.probe.get("duration")
    return TakeView(take.index, take.sha256, take.ext, take.index == pick,
                    float(duration) if isinstance(duration, int | float) else None)


def _status(shot: PlannedShot, task: TaskActivity | None, inputs: BoardInputs
            ) -> tuple[str, str | None]:
    """A run's word on the shot when there is one, else the plan's."""
    live = inputs.live.get(shot.identity)
    if live is not None:
        return live.status, live.error
    if shot.cached or task is None:
        return str(shot.reason), None
    if task.state is TaskPhase.FAILED:
        return "failed", task.error
    if task.state in (TaskPhase.PREPARED, TaskPhase.SUBMITTED) and inputs.run_active:
        return "rendering", None
    return str(shot.reason), None


def _spent(lock: Lock) -> float:
    """What the lock's takes cost, each task once (shots that share a request share it)."""
    by_task = {e.task_uuid: e.cost or 0.0 for e in lock.shots.values()}
    return round(sum(by_task.values()), 6)


def _films(compiled: Compiled, lock: Lock, inputs: BoardInputs) -> list[FilmView]:
    out = []
    folder = compiled.board.folder
    for film in compiled.plan.films:
        target = (folder / film.file).resolve()
        inside = target.is_relative_to(folder) and target.is_file()
        sha = _hash(inputs, target) if inside else None
        fmt = format_for_file(target)
        out.append(FilmView(dict(film.variant), film.file, film.keys, sha, fmt.extension,
                            fmt.content_type, _up_to_date(compiled, film.keys, lock)))
    return out


def _hash(inputs: BoardInputs, target: Path) -> str:
    if inputs.hash_file is not None:
        return inputs.hash_file(target)
    from ..store import sha256_file

    return sha256_file(target)


def _up_to_date(compiled: Compiled, keys: tuple[str, ...], lock: Lock) -> bool:
    """Whether the film on disk is the one a run would make: every shot cached, each pick
    as the last run left it."""
    for key in keys:
        shot = compiled.plan.shot(key)
        entry = lock.shots.get(key)
        if not shot.cached or entry is None or entry.pick != shot.pick:
            return False
    return True


__all__ = ["Board", "BoardInputs", "FilmView", "LiveState", "Reason", "ShotView", "TakeView",
           "build_board"]
