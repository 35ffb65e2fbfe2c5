"""Run: a storyboard -> its films, its lock file and a `RunSummary`.

Compiles the storyboard against its lock and cache, checks before anything is spent that
the files it will write can be written (and, with `--frozen`, that nothing would change and
the lock and the cache agree), selects part of the graph, picks the backend (the embedded
simulator unless `--backend runware`), runs the scheduler, stitches each variant's film,
and writes the lock file.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from contextlib import AsyncExitStack, closing
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from ..api import Backend, RunwareClient
from ..api.polling import BATCH_POLL, PATIENCE, SIMULATOR_POLL
from ..errors import FileError, UsageError
from ..language.compile import Compiled, compile_storyboard
from ..language.plan import Plan, Reason
from ..language.select import select_keys
from ..simulator.options import SimOptions
from ..store import Journal, Lock, ObjectStore, Take, lock_path_for, write_lock
from .chain import Chain, takes_frames_use
from .films import film_path, make_films, takes_films_use
from .jobs import Job, Reporter, RunOptions
from .locking import check_frozen, updated_lock
from .scheduler import Scheduler
from .state import PlanState, plan_state
from .summary import RunSummary, Stop, summarize

SIMULATOR_URL = "http://simulator.storyreel.invalid/v1"

__all__ = ["BackendName", "Prepared", "RunRequest", "check_budget", "execute", "plan_state",
           "prepare_run"]


class BackendName(StrEnum):
    SIMULATOR = "simulator"
    RUNWARE = "runware"


@dataclass(frozen=True)
class RunRequest:
    path: Path
    display: str
    backend: BackendName = BackendName.SIMULATOR
    options: RunOptions = RunOptions()
    frozen: bool = False
    select: tuple[str, ...] = ()
    allow_outside: bool = False
    simulator: SimOptions = SimOptions()
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


@dataclass(frozen=True)
class Prepared:
    """A storyboard compiled against its lock and cache, checked, ready to run."""

    compiled: Compiled
    state: PlanState

    @property
    def lock(self) -> Lock:
        return self.state.lock

    @property
    def store(self) -> ObjectStore:
        return self.state.store


def options_for(backend: BackendName, concurrency: int | None, max_cost: float | None, *,
                patience: float = PATIENCE) -> RunOptions:
    """The options `storyreel run` (and the studio) run with: the simulator answers in a
    fraction of a second and is polled on a short tick; Runware takes tens of seconds a
    clip."""
    policy = SIMULATOR_POLL if backend is BackendName.SIMULATOR else BATCH_POLL
    return RunOptions(concurrency=concurrency or 8, max_cost=max_cost, poll=policy,
                      patience=patience)


def prepare_run(req: RunRequest) -> Prepared:
    state = plan_state(req.path)
    compiled = compile_storyboard(req.path, display=req.display, lock=state.lock.shots,
                                  is_cached=state.is_cached, store_reason=state.reason,
                                  allow_outside=req.allow_outside)
    check_writable(compiled, lock_path_for(req.path))
    if req.frozen:
        check_frozen(compiled, state.lock, state.store)
    return Prepared(compiled, state)


def check_budget(plan: Plan, max_cost: float | None, allow_unpriced: bool) -> None:
    """Refuse a spending limit that cannot be kept: shots to run with no published price."""
    if max_cost is None or not plan.unpriced or allow_unpriced:
        return
    more = f" and {len(plan.unpriced) - 5} more" if len(plan.unpriced) > 5 else ""
    raise UsageError(f"--max-cost {max_cost:g} cannot be kept: no published price for "
                     f"{', '.join(plan.unpriced[:5])}{more}",
                     hint="pass --allow-unpriced to run them anyway, or drop --max-cost")


def check_writable(compiled: Compiled, lock: Path) -> None:
    """Refuse, before anything is spent, a run whose lock file or films cannot be written."""
    targets = [(lock, "the lock file")]
    targets += [(film_path(compiled, film), "film.file") for film in compiled.plan.films]
    for target, what in targets:
        if target.is_dir():
            raise UsageError(f"{what} {target} is a folder", hint="remove the folder, or "
                             "choose another film.file" if what == "film.file" else
                             "remove the folder: the lock file is written there")
        folder = target.parent
        if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            read_only = os.statvfs(folder).f_flag & os.ST_RDONLY
            reason = OSError(errno.EROFS if read_only else errno.EACCES, "cannot write")
            raise FileError.from_os(reason, f"write {what} {target}",
                                    hint=f"make {folder} writable, or copy the storyboard "
                                    "to a folder you can write in")


async def execute(req: RunRequest, reporter: Reporter,
                  prepared: Prepared | None = None) -> RunSummary:
    """Run a storyboard; `prepared` is `prepare_run(req)` when the caller has it already."""
    prepared = prepared or prepare_run(req)
    compiled, store = prepared.compiled, prepared.store
    keys = select_keys(compiled, req.select, prepared.state.is_cached)
    chosen = compiled.plan if keys is None else _subplan(compiled.plan, keys)
    for shot in chosen.shots:
        if shot.reason is Reason.LOCK_MISMATCH:
            reporter.note(f"{shot.key}: the lock file disagrees with the cache; its entry is "
                          "written again from the cache")
    async with AsyncExitStack() as held:
        # Runware's client first: a missing key stops the run before it touches the folder.
        runware = make_backend(req, store) if req.backend is BackendName.RUNWARE else None
        if runware is not None:
            held.push_async_callback(runware[0].aclose)
        held.enter_context(store.exclusive(req.display))
        backend, backend_id = runware or make_backend(req, store)
        if runware is None:
            held.push_async_callback(backend.aclose)
        journal = held.enter_context(closing(Journal(store.journal_path)))
        chain = Chain(store, backend, backend_id, compiled.board.folder)
        scheduler = Scheduler(chosen, compiled.graph.remaining, backend, store, journal, chain,
                              reporter, options=req.options,
                              used=lambda jobs: _takes_used(compiled, jobs, store,
                                                            full=keys is None))
        jobs = await scheduler.run()
        stop = _stop(scheduler, journal)
        films = make_films(compiled, jobs, store, reporter) if keys is None else []
        changed = _write_lock(req.path, prepared.lock, chosen, jobs, full=keys is None)
    return summarize(compiled, jobs, films, store, requests=backend.request_counts,
                     lock_changed=changed, simulated=req.backend is BackendName.SIMULATOR,
                     stopped=stop)


def _stop(scheduler: Scheduler, journal: Journal) -> Stop | None:
    gone = scheduler.stopped
    if gone is None:
        return None
    return Stop(gone.message, gone.hint, len(journal.open_tasks()))


def _takes_used(compiled: Compiled, jobs: Mapping[str, Job], store: ObjectStore, *,
                full: bool) -> list[Take]:
    """The cached takes the run will read: for the films it stitches, and for frames."""
    records = {s.key: j.record for j in jobs.values() for s in j.shots if j.record}
    requests = {j.lead.key: j.lead.request for j in jobs.values() if j.record is None}
    used = takes_frames_use(requests, records, store)
    return used + takes_films_use(compiled, jobs, store) if full else used


def _write_lock(path: Path, lock: Lock, plan: Plan, jobs: Mapping[str, Job], *,
                full: bool) -> bool:
    records = {i: j.record for i, j in jobs.items() if j.record is not None}
    inputs = {i: j.inputs for i, j in jobs.items()}
    new = updated_lock(lock, plan.shots, records, inputs, full=full)
    target = lock_path_for(path)
    try:
        return write_lock(target, new)
    except OSError as exc:
        raise FileError.from_os(exc, f"write the lock file {target}") from None


def _subplan(plan: Plan, keys: set[str]) -> Plan:
    """The selected shots, plus the (cached) parents their frames come from."""
    wanted = keys | {p for s in plan.shots if s.key in keys for p in s.needs}
    return replace(plan, shots=tuple(s for s in plan.shots if s.key in wanted))


def make_backend(req: RunRequest, store: ObjectStore) -> tuple[Backend, str]:
    """(backend, backend id for the upload cache)."""
    if req.backend is BackendName.RUNWARE:
        client = RunwareClient.from_env(req.environ)
        return client, client.base_url
    from ..simulator.app import SimulatorConfig, simulator_transport

    config = req.simulator.apply(SimulatorConfig(state_dir=store.simulator_dir))
    transport = simulator_transport(config)
    return RunwareClient("simulator", base_url=SIMULATOR_URL, transport=transport), "simulator"

