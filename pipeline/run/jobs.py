"""Jobs: a plan in; one job per distinct request (shot identity), with its status, out.

Shots that send the same request (the same shot in several variants, say) share one job,
so they are generated once and paid for once. A job's parents and priority are by identity
too: the priority is the longest remaining path through the shot graph from it, so slots go
to the critical path first. Also the options a run takes, and what it reports to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from ..api.polling import BATCH_POLL, PATIENCE, PollPolicy
from ..language.plan import Plan, PlannedShot
from ..store import ShotRecord

MiB = 1 << 20


class JobStatus(StrEnum):
    QUEUED = "queued"
    WAITING = "waiting"
    EXTRACTING = "extracting"
    UPLOADING = "uploading"
    SUBMITTED = "submitted"
    RENDERING = "rendering"
    DOWNLOADING = "downloading"
    DONE = "done"
    RESTORED = "downloaded again"  # lost from the cache, fetched again without paying
    CACHED = "cached"
    FAILED = "failed"
    SKIPPED = "skipped"
    STOPPED = "stopped"  # the run stopped before the job could finish (the service is gone)


FINISHED = (JobStatus.DONE, JobStatus.RESTORED, JobStatus.CACHED)
FINAL = (*FINISHED, JobStatus.FAILED, JobStatus.SKIPPED, JobStatus.STOPPED)


@dataclass(frozen=True)
class RunOptions:
    concurrency: int = 8
    max_cost: float | None = None
    poll: PollPolicy = BATCH_POLL
    # Seconds the service may fail every request before the run stops (tasks stay open).
    patience: float = PATIENCE
    task_attempts: int = 3  # new tasks for a transient task failure, the first included
    resend_unknown: int = 3  # times a task the server does not know is sent again
    download_max_bytes: int = 512 * MiB
    download_timeout: float = 300.0


@dataclass
class Job:
    """One distinct request and every shot key that shares it."""

    identity: str
    shots: list[PlannedShot]
    parents: list[str]  # identities
    priority: float
    status: JobStatus = JobStatus.QUEUED
    record: ShotRecord | None = None
    task_uuid: str | None = None
    attempt: int = 0
    error: str | None = None
    cost: float | None = None  # what this run paid for it: None when it paid nothing
    inputs: dict[str, str] = field(default_factory=dict)
    started: float | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def lead(self) -> PlannedShot:
        """The shot that stands for the job: the first in plan order, which pays for it."""
        return self.shots[0]

    @property
    def label(self) -> str:
        return self.lead.key

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class Reporter(Protocol):
    """Where a run says what it is doing: a line per change, or a live table."""

    def update(self, job: Job) -> None: ...
    def note(self, message: str) -> None: ...


def make_jobs(plan: Plan, remaining: Mapping[str, float]) -> dict[str, Job]:
    """Group shot keys by identity; parents and priorities are by identity too."""
    jobs: dict[str, Job] = {}
    identity_of = {s.key: s.identity for s in plan.shots}
    for shot in plan.shots:
        job = jobs.get(shot.identity)
        if job is None:
            parents = list(dict.fromkeys(identity_of[k] for k in shot.needs))
            job = jobs[shot.identity] = Job(shot.identity, [], parents, 0.0)
        job.shots.append(shot)
        job.priority = max(job.priority, remaining.get(shot.key, 1.0))
    return jobs
