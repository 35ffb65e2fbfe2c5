"""Run: a storyboard -> its films, its lock file and a summary.

Compiles the storyboard against its lock and cache, checks `--frozen` and `--max-cost`,
selects part of the graph, picks the backend (the embedded simulator unless `--backend
runware`), runs the scheduler, stitches each variant's film, and writes the lock file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ExitCode, StoryreelError, UsageError
from ..language.compile import Compiled, compile_storyboard
from ..language.plan import PlannedShot, Reason
from ..language.select import select_keys
from ..store import (
    Journal,
    Lock,
    LockEntry,
    ObjectStore,
    lock_path_for,
    read_lock,
    store_root_for,
    write_lock,
)
from .continuity import frames_used
from .films import FilmResult, make_films
from .scheduler import Job, JobStatus, Reporter, RunOptions, Scheduler

SIMULATOR_URL = "http://simulator.storyreel.invalid/v1"


def plan_state(path: Path) -> tuple[Mapping[str, Any], Callable[[str], bool]]:
    """The lock entries and the cache lookup that `plan` and `run` compile against."""
    lock = read_lock(lock_path_for(path))
    store = ObjectStore(store_root_for(path))
    return lock.shots, lambda identity: store.find_shot(identity) is not None


@dataclass(frozen=True)
class RunRequest:
    path: Path
    display: str
    backend: str = "simulator"
    options: RunOptions = RunOptions()
    frozen: bool = False
    select: tuple[str, ...] = ()
    allow_outside: bool = False
    simulator: Mapping[str, Any] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


@dataclass(repr=False)
class RunSummary:
    compiled: Compiled
    jobs: dict[str, Job]
    films: list[FilmResult]
    requests: dict[str, int]
    lock_changed: bool
    store: ObjectStore

    def __repr__(self) -> str:
        # Short on purpose: when `asyncio.run` ends it formats its main task, result and all
        # (signal.getsignal builds an error text from the SIGINT handler that holds the task).
        # The generated repr walks the whole plan: seconds for a few hundred shots.
        return (f"RunSummary({len(self.jobs)} jobs, {len(self.films)} films, "
                f"complete={self.complete})")

    @property
    def cost(self) -> float:
        return round(sum(j.cost or 0.0 for j in self.jobs.values()), 6)

    @property
    def complete(self) -> bool:
        done = (JobStatus.DONE, JobStatus.CACHED)
        return all(j.status in done for j in self.jobs.values()) and all(
            f.path is not None for f in self.films)

    def shot_rows(self) -> list[dict[str, Any]]:
        rows = []
        for shot in self.compiled.plan.shots:
            job = self.jobs.get(shot.identity)
            if job is None:
                continue
            path = _picked_path(self.store, job, shot.pick)
            rows.append({
                "id": shot.id, "key": shot.key, "variant": dict(shot.variant),
                "status": str(job.status), "taskUUID": job.record.task_uuid if job.record
                else job.task_uuid, "seed": job.record.seed if job.record else shot.seed,
                "cost": job.cost, "cached": job.status is JobStatus.CACHED,
                "path": str(path.resolve()) if path else None, "error": job.error,
                "frames": frames_used(self.compiled.plan, shot, self.store),
            })
        return rows

    def to_json(self) -> dict[str, Any]:
        return {
            "films": [film.to_json() for film in self.films],
            "shots": self.shot_rows(),
            "requests": dict(sorted(self.requests.items())),
            "cost": self.cost,
            "complete": self.complete,
        }


def _picked_path(store: ObjectStore, job: Job, pick: int) -> Path | None:
    if job.record is None or not 1 <= pick <= len(job.record.takes):
        return None
    take = job.record.takes[pick - 1]
    return store.path_for(take.sha256, take.ext)


def prepare_run(req: RunRequest) -> tuple[Compiled, Lock, ObjectStore]:
    lock = read_lock(lock_path_for(req.path))
    store = ObjectStore(store_root_for(req.path))
    compiled = compile_storyboard(req.path, display=req.display, lock=lock.shots,
                                  is_cached=lambda i: store.find_shot(i) is not None,
                                  allow_outside=req.allow_outside)
    if req.frozen:
        check_frozen(compiled, lock)
    return compiled, lock, store


def check_frozen(compiled: Compiled, lock: Lock) -> None:
    """Refuse a run that would generate anything or change the lock file."""
    changes = [f"{s.key}: would run ({s.reason})" for s in compiled.plan.shots
               if s.reason is not Reason.CACHED]
    changes += [f"{s.key}: pick {lock.shots[s.key].pick} -> {s.pick}"
                for s in compiled.plan.shots
                if s.key in lock.shots and lock.shots[s.key].pick != s.pick]
    changes += [f"{k}: would be removed from the lock" for k in lock.shots
                if k not in {s.key for s in compiled.plan.shots}]
    if changes:
        raise StoryreelError("--frozen: the run would change the lock file:\n  "
                             + "\n  ".join(changes),
                             hint="run without --frozen, then commit the lock file",
                             exit_code=ExitCode.FAILED)


async def execute(req: RunRequest, reporter: Reporter,
                  prepared: tuple[Compiled, Lock, ObjectStore] | None = None) -> RunSummary:
    """Run a storyboard; `prepared` is `prepare_run(req)` when the caller has it already."""
    compiled, lock, store = prepared or prepare_run(req)
    plan = compiled.plan
    keys = select_keys(compiled, req.select, lambda i: store.find_shot(i) is not None)
    chosen = plan if keys is None else _subplan(plan, keys)
    backend, backend_id = make_backend(req, store)
    from .chain import Chain

    with store.exclusive():
        journal = Journal(store.journal_path)
        try:
            chain = Chain(store, backend, backend_id, compiled.board.folder)
            scheduler = Scheduler(chosen, compiled.graph.remaining, backend, store, journal,
                                  chain, reporter, options=req.options)
            jobs = await scheduler.run()
        finally:
            journal.close()
            await backend.aclose()
        films = make_films(compiled, jobs, store, reporter) if keys is None else []
        new_lock = updated_lock(lock, chosen.shots, jobs, full=keys is None)
        changed = write_lock(lock_path_for(req.path), new_lock)
    counts = dict(getattr(backend, "request_counts", {}))
    return RunSummary(compiled, jobs, films, counts, changed, store)


def _subplan(plan: Any, keys: set[str]) -> Any:
    """The selected shots, plus the (cached) parents their frames come from."""
    from dataclasses import replace

    wanted = keys | {p for s in plan.shots if s.key in keys for p in s.needs}
    return replace(plan, shots=tuple(s for s in plan.shots if s.key in wanted))


def make_backend(req: RunRequest, store: ObjectStore) -> tuple[Any, str]:
    """(backend, backend id for the upload cache)."""
    from ..api import RunwareClient

    if req.backend == "runware":
        client = RunwareClient.from_env(req.environ)
        return client, client.base_url
    if req.backend != "simulator":
        raise UsageError(f"unknown backend {req.backend!r}", hint="use simulator or runware")
    from ..simulator.app import SimulatorConfig, simulator_transport

    config = SimulatorConfig(state_dir=store.simulator_dir, **req.simulator)
    transport = simulator_transport(config)
    return RunwareClient("simulator", base_url=SIMULATOR_URL, transport=transport), "simulator"


def updated_lock(lock: Lock, shots: Any, jobs: Mapping[str, Job], *, full: bool) -> Lock:
    """The lock with an entry per finished shot key; keys gone from a full run dropped."""
    new = lock.without(lock.shots) if full else lock
    for shot in shots:
        job = jobs.get(shot.identity)
        entry = _entry(shot, job, lock.shots.get(shot.key)) if job else None
        if entry is not None:
            new = new.with_entry(shot.key, entry)
        elif shot.key in lock.shots:
            new = new.with_entry(shot.key, lock.shots[shot.key])
    return new


def _entry(shot: PlannedShot, job: Job, old: LockEntry | None) -> LockEntry | None:
    record = job.record
    if record is None or not 1 <= shot.pick <= len(record.takes):
        return None
    take = record.takes[shot.pick - 1]
    inputs = job.inputs or (dict(old.inputs) if old and old.identity == shot.identity else {})
    return LockEntry(identity=shot.identity, seed=shot.seed, task_uuid=record.task_uuid,
                     video_uuids=tuple(t.video_uuid for t in record.takes), cost=record.cost,
                     pick=shot.pick, sha256=take.sha256, probe=dict(take.probe),
                     inputs=dict(sorted(inputs.items())))


def summary_json(summary: RunSummary) -> str:
    return json.dumps(summary.to_json(), indent=2, ensure_ascii=False)
