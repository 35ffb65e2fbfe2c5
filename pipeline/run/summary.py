"""Run summary: the jobs, films and counters of a finished run in; a typed `RunSummary` out.

What `run` returns and `report.summary` alone renders, as text or JSON: per shot key its
status, task, seed, what this run paid for it (or which key paid, for shots that share a
request) and the picked take's file; per film its status and file; the requests sent by
type; the cost; whether the lock changed; and, when the service was gone, why the run
stopped and how many tasks it left open.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..language.compile import Compiled
from ..language.plan import Plan, PlannedShot
from ..store import ObjectStore
from .continuity import frames_used
from .films import FilmOutcome
from .jobs import Job, JobStatus

VariantValues = Mapping[str, object]  # a variant's axis -> value, as the storyboard wrote it


@dataclass(frozen=True)
class ShotOutcome:
    id: str
    key: str
    variant: VariantValues
    status: JobStatus
    task_uuid: str | None
    seed: int
    cost: float | None  # what this run paid for the shot's request, on the key that paid
    paid_by: str | None  # the key that carries the cost of a request shared with others
    path: Path | None  # the picked take in the cache
    error: str | None
    frames: Sequence[Mapping[str, object]] = ()  # the other shots' frames it was made from

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.RESTORED, JobStatus.CACHED)


@dataclass(frozen=True)
class Stop:
    """Why a run stopped before its end, and what it left for the next run."""

    reason: str
    hint: str | None
    open_tasks: int


@dataclass(frozen=True, repr=False)
class RunSummary:
    name: str
    shots: tuple[ShotOutcome, ...]
    films: tuple[FilmOutcome, ...]
    requests: Mapping[str, int]
    lock_changed: bool
    simulated: bool  # the embedded simulator: its costs are what Runware would charge
    stopped: Stop | None = None

    def __repr__(self) -> str:
        # Short on purpose: when `asyncio.run` ends it formats its main task, result and all
        # (signal.getsignal builds an error text from the SIGINT handler that holds the task).
        return (f"RunSummary({len(self.shots)} shots, {len(self.films)} films, "
                f"complete={self.complete})")

    @property
    def cost(self) -> float:
        return round(sum(s.cost or 0.0 for s in self.shots), 6)

    @property
    def complete(self) -> bool:
        return (self.stopped is None and all(s.finished for s in self.shots)
                and all(f.made for f in self.films))

    def count(self, status: JobStatus) -> int:
        """Distinct requests (not shot keys) that ended in `status`."""
        return sum(s.status is status and s.paid_by is None for s in self.shots)


def summarize(compiled: Compiled, jobs: Mapping[str, Job], films: list[FilmOutcome],
              store: ObjectStore, *, requests: Mapping[str, int], lock_changed: bool,
              simulated: bool, stopped: Stop | None = None) -> RunSummary:
    plan = compiled.plan
    shots = tuple(_outcome(plan, shot, job, store) for shot in plan.shots
                  if (job := jobs.get(shot.identity)) is not None)
    return RunSummary(compiled.plan.name, shots, tuple(films), dict(sorted(requests.items())),
                      lock_changed, simulated, stopped)


def _outcome(plan: Plan, shot: PlannedShot, job: Job, store: ObjectStore) -> ShotOutcome:
    record = job.record
    lead = job.lead.key
    path = None
    if record is not None and 1 <= shot.pick <= len(record.takes):
        take = record.takes[shot.pick - 1]
        path = store.path_for(take.sha256, take.ext).resolve()
    return ShotOutcome(
        id=shot.id, key=shot.key, variant=dict(shot.variant), status=job.status,
        task_uuid=record.task_uuid if record else job.task_uuid,
        seed=record.seed if record else shot.seed,
        cost=job.cost if shot.key == lead else None,
        paid_by=None if shot.key == lead else lead, path=path, error=job.error,
        frames=frames_used(plan, shot, store))
