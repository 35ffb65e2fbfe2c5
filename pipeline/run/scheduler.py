"""Scheduler: Plan + backend -> one result per shot identity (the one asyncio loop).

It strings the parts together: `jobs` (one job per distinct request), `slots` (the ready
queue: at most `concurrency` tasks at the service, longest remaining path first), `runner`
(a job's task obtained, its takes collected and recorded) and `gateway` (batched submits,
one poller under the `PollPolicy`, the outage budget). Cached jobs finish at once, after the
takes this run will use are checked against their hashes; a damaged one counts as lost and
is downloaded again or generated again. When the service is gone for longer than the
outage budget, every job still running stops where it is: its task stays open in the
journal for the next run.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping

from ..api import Backend
from ..language.plan import Plan
from ..store import Journal, ObjectStore, Take
from .chain import Chain
from .gateway import ServiceGone, TaskGateway
from .jobs import FINAL, Job, JobStatus, Reporter, RunOptions, make_jobs
from .runner import JobRunner
from .slots import Slots

__all__ = ["Job", "JobStatus", "Reporter", "RunOptions", "Scheduler", "ServiceGone"]


class Scheduler:
    def __init__(self, plan: Plan, remaining: Mapping[str, float], backend: Backend,
                 store: ObjectStore, journal: Journal, chain: Chain, reporter: Reporter, *,
                 options: RunOptions = RunOptions(),
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None,
                 used: Callable[[Mapping[str, Job]], Iterable[Take]] = lambda jobs: ()) -> None:
        """`used` names the cached takes the run will read (for films and frames): they are
        checked against their hashes before the run starts."""
        self.jobs = make_jobs(plan, remaining)
        self.store, self.reporter, self.used = store, reporter, used
        self.gateway = TaskGateway(backend, policy=options.poll, patience=options.patience,
                                   note=reporter.note, clock=clock, sleep=sleep, rng=rng)
        self.runner = JobRunner(self.jobs, self.gateway, Slots(options.concurrency), store,
                                journal, chain, reporter, options)
        self.stopped: ServiceGone | None = None

    @property
    def spent(self) -> float:
        return self.runner.spending.spent

    async def run(self) -> dict[str, Job]:
        """Run every job; returns them with their final status."""
        self._load_cached()
        poller = asyncio.create_task(self.gateway.poll_forever())
        # Started longest-path first, so free slots go to the critical path from the start.
        ordered = sorted(self.jobs.values(), key=lambda j: -j.priority)
        running = [asyncio.create_task(self.runner.run(job)) for job in ordered]
        try:
            await asyncio.gather(*running)
        except ServiceGone as gone:
            self.stopped = gone
            await _cancel(running)
            self._stop_the_rest(gone)
        finally:
            await _cancel([*running, poller])
        return self.jobs

    def _load_cached(self) -> None:
        """Finish the jobs the cache holds, but for those with a take this run will use
        whose content is damaged: that take is discarded, and the job runs to get it back."""
        for job in self.jobs.values():
            job.record = self.store.find_shot(job.identity)
        for take in self._damaged(self.used(self.jobs)):
            self.store.discard(take.sha256, take.ext)
        for job in self.jobs.values():
            if job.record is None:
                continue
            if all(map(self.store.holds_take, job.record.takes)):
                self.runner.finish(job, JobStatus.CACHED)
                continue
            self.reporter.note(f"{job.label}: a take in the cache is damaged (its content no "
                               "longer matches its hash); getting it again")
            job.record = None

    def _damaged(self, takes: Iterable[Take]) -> list[Take]:
        """The takes whose content no longer hashes to their name (each read once)."""
        unique = {(take.sha256, take.ext): take for take in takes}
        return [take for take in unique.values() if not self.store.verify(take.sha256, take.ext)]

    def _stop_the_rest(self, gone: ServiceGone) -> None:
        for job in self.jobs.values():
            if job.status not in FINAL:
                self.runner.finish(job, JobStatus.STOPPED,
                                   "the run stopped before it finished: the service is gone")


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
