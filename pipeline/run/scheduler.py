"""Scheduler: Plan + backend -> one result per shot identity (the one asyncio loop).

Each distinct identity is a job: a coroutine that waits for its parents, takes one of
`concurrency` slots (longest remaining path first), resolves its images, writes its task to the
journal, submits it, waits for the poller, downloads its takes into the store and records them.
One poller sends one batched getResponse request per tick for every task in flight. A job
whose task fails is retried as a new task for transient codes only; a failed job skips its
descendants with the cause, and independent jobs go on. Tasks left open in the journal by an
earlier run are polled (or resent with the same taskUUID) instead of paid for again.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import uuid as uuidlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Any, Protocol, TypeVar

from ..api import (
    Backend,
    SubmitOutcome,
    SubmitStatus,
    TaskState,
    TaskStatus,
    VideoResult,
)
from ..api.wire import TRANSIENT_CODES
from ..errors import ApiError, StoryreelError
from ..language.plan import Plan, PlannedShot
from ..media.formats import EXTENSIONS
from ..media.probe import probe_video
from ..store import Journal, JournalTask, ObjectStore, ShotRecord, Take, TaskPhase
from .chain import Chain

MiB = 1 << 20
T = TypeVar("T")


class JobStatus(StrEnum):
    QUEUED = "queued"
    WAITING = "waiting"
    EXTRACTING = "extracting"
    UPLOADING = "uploading"
    SUBMITTED = "submitted"
    RENDERING = "rendering"
    DOWNLOADING = "downloading"
    DONE = "done"
    CACHED = "cached"
    FAILED = "failed"
    SKIPPED = "skipped"


FINAL = (JobStatus.DONE, JobStatus.CACHED, JobStatus.FAILED, JobStatus.SKIPPED)


class Reporter(Protocol):
    def update(self, job: Job) -> None: ...
    def note(self, message: str) -> None: ...


@dataclass(frozen=True)
class RunOptions:
    concurrency: int = 8
    max_cost: float | None = None
    poll_interval: float = 1.0
    first_poll: float = 1.0
    task_attempts: int = 3  # new tasks for a transient task failure, the first included
    resend_unknown: int = 3  # times a task the server does not know is sent again
    # Rounds of the client's own retries a job waits through when the service keeps failing
    # transiently (an outage of a minute or so), before the job is reported failed.
    transient_rounds: int = 3
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
    cost: float | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    started: float | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def lead(self) -> PlannedShot:
        return self.shots[0]

    @property
    def label(self) -> str:
        return self.lead.key


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


class Slots:
    """At most `size` holders; waiters are served highest priority first."""

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiting: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def acquire(self, priority: float) -> None:
        if self.free > 0 and not self._waiting:
            self.free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (-priority, next(self._order), future))
        await future

    def release(self) -> None:
        while self._waiting:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(None)
                return
        self.free += 1


class Scheduler:
    def __init__(self, plan: Plan, remaining: Mapping[str, float], backend: Backend,
                 store: ObjectStore, journal: Journal, chain: Chain, reporter: Reporter, *,
                 options: RunOptions = RunOptions(),
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.jobs = make_jobs(plan, remaining)
        self.backend, self.store, self.journal = backend, store, journal
        self.chain, self.reporter, self.options, self.sleep = chain, reporter, options, sleep
        self.slots = Slots(options.concurrency)
        self.spent = 0.0
        self.committed = 0.0
        self._waiters: dict[str, asyncio.Future[TaskState]] = {}
        self._wake = asyncio.Event()
        self._outbox: list[tuple[Mapping[str, Any], asyncio.Future[SubmitOutcome]]] = []
        self._flushing: set[asyncio.Task[None]] = set()

    async def run(self) -> dict[str, Job]:
        """Run every job; returns them with their final status."""
        self._load_cached()
        poller = asyncio.create_task(self._poll_loop())
        try:
            # Started longest-path first, so free slots go to the critical path from the start.
            ordered = sorted(self.jobs.values(), key=lambda j: -j.priority)
            await asyncio.gather(*(self._run_job(j) for j in ordered))
        finally:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
        return self.jobs

    def _load_cached(self) -> None:
        for job in self.jobs.values():
            record = self.store.find_shot(job.identity)
            if record is not None:
                job.record, job.cost = record, None
                self._finish(job, JobStatus.CACHED)

    def _set(self, job: Job, status: JobStatus) -> None:
        job.status = status
        self.reporter.update(job)

    def _finish(self, job: Job, status: JobStatus, error: str | None = None) -> None:
        job.error = error
        self._set(job, status)
        job.done.set()

    # -- one job -------------------------------------------------------------------------

    async def _run_job(self, job: Job) -> None:
        if job.status in FINAL:
            return
        try:
            await self._job_body(job)
        except StoryreelError as exc:
            self._finish(job, JobStatus.FAILED, exc.render())
        except (OSError, ValueError) as exc:
            self._finish(job, JobStatus.FAILED, f"{type(exc).__name__}: {exc}")

    async def _job_body(self, job: Job) -> None:
        self._set(job, JobStatus.WAITING)
        cause = await self._wait_parents(job)
        if cause is not None:
            self._finish(job, JobStatus.SKIPPED, cause)
            return
        state = await self._in_slot(job)
        if state is not None:
            await self._collect(job, state)

    async def _in_slot(self, job: Job) -> TaskState | None:
        """A slot is a task at the service: held until its results are ready. The frames it
        needs are extracted and uploaded before it takes one (resolved again inside, they come
        from the cache), and its results download after, so no task waits for a transfer."""
        if not any(t.is_open for t in self.journal.tasks_for(job.identity)):
            await self._patiently(f"{job.label}: preparing its images", lambda: self.chain.resolve(
                job.lead.request, self._parent_records(job)))
        await self.slots.acquire(job.priority)
        try:
            return await self._obtain(job)
        finally:
            self.slots.release()

    async def _wait_parents(self, job: Job) -> str | None:
        for identity in job.parents:
            parent = self.jobs[identity]
            await parent.done.wait()
            if parent.status in (JobStatus.FAILED, JobStatus.SKIPPED):
                return f"{parent.label} {parent.status}"
        return None

    async def _obtain(self, job: Job) -> TaskState | None:
        """Resume the task an earlier run left open, or make a new one; retry transient
        task failures as new tasks. None when the job has failed."""
        open_task = next((t for t in reversed(self.journal.tasks_for(job.identity))
                          if t.is_open), None)
        task = open_task.request if open_task else None
        if open_task is not None:
            job.task_uuid, job.attempt = open_task.task_uuid, open_task.attempt
            self.reporter.note(f"{job.label}: resuming task {open_task.task_uuid}")
        while True:
            if task is None:
                task = await self._new_task(job)
                if task is None:
                    return None
            state = await self._submit_and_wait(job, task, open_task)
            open_task = None
            if state.status is TaskStatus.SUCCESS:
                return state
            if not self._retryable(job, state):
                self._fail_task(job, state)
                return None
            self.journal.mark_failed(job.task_uuid or "", _error_json(state.error))
            self.reporter.note(f"{job.label}: task failed ({_reason(state)}); trying a new task")
            task = None

    async def _new_task(self, job: Job) -> dict[str, Any] | None:
        estimate = job.lead.estimated_cost
        limit = self.options.max_cost
        if limit is not None and max(self.spent, self.committed) + estimate > limit + 1e-9:
            self._finish(job, JobStatus.SKIPPED,
                         f"--max-cost {limit:g}: ${estimate:.3f} more would pass it")
            return None
        request, job.inputs = await self._patiently(
            f"{job.label}: preparing its images",
            lambda: self.chain.resolve(job.lead.request, self._parent_records(job)))
        job.attempt += 1
        job.task_uuid = str(uuidlib.uuid4())
        task = {"taskType": "videoInference", "taskUUID": job.task_uuid, **request}
        task["taskUUID"] = job.task_uuid
        self.journal.prepare(job.task_uuid, job.identity, job.label, task, job.attempt)
        self.committed += estimate
        return task

    def _parent_keys(self, job: Job) -> dict[str, str]:
        by_key = {s.key: s.identity for j in self.jobs.values() for s in j.shots}
        return {k: by_key[k] for k in job.lead.needs}

    def _parent_records(self, job: Job) -> dict[str, ShotRecord]:
        """Each parent shot key's finished record (the parents are done when this is asked)."""
        records = {k: self.jobs[i].record for k, i in self._parent_keys(job).items()}
        return {k: r for k, r in records.items() if r is not None}

    async def _submit_and_wait(self, job: Job, task: Mapping[str, Any],
                               resumed: JournalTask | None) -> TaskState:
        job.started = asyncio.get_running_loop().time()
        uuid = str(task["taskUUID"])
        if resumed is None or resumed.state is TaskPhase.PREPARED:
            await self._submit(task)
        for _ in range(self.options.resend_unknown + 1):
            self._set(job, JobStatus.RENDERING)
            state = await self._wait_for(uuid)
            if state.status is not TaskStatus.UNKNOWN:
                return state
            self.reporter.note(f"{job.label}: the server does not know task {uuid}; sending it again")
            await self._submit(task)
        raise ApiError(f"the server keeps losing task {uuid}", code="taskNotFound",
                       task_uuid=uuid)

    async def _submit(self, task: Mapping[str, Any]) -> None:
        uuid = str(task["taskUUID"])
        outcome = await self._patiently(f"submitting {uuid}", lambda: self._batched_submit(task))
        if outcome.status is SubmitStatus.REFUSED:
            error = outcome.error or ApiError("task refused", task_uuid=uuid)
            self.journal.mark_failed(uuid, _error_json(error))
            raise error
        self.journal.mark_submitted(uuid)

    async def _patiently(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run `attempt`; when the service still fails transiently after the client's own
        retries, wait and try again, a few rounds, before letting the failure stand."""
        for round_ in range(self.options.transient_rounds):
            try:
                return await attempt()
            except ApiError as exc:
                if not exc.transient:
                    raise
                delay = self.options.poll_interval * 2 ** (round_ + 1)
                self.reporter.note(f"{what}: {exc.render()}; trying again in {delay:g} s")
                await self.sleep(delay)
        return await attempt()

    async def _batched_submit(self, task: Mapping[str, Any]) -> SubmitOutcome:
        """Tasks that become ready in the same turn of the loop share one request."""
        future: asyncio.Future[SubmitOutcome] = asyncio.get_running_loop().create_future()
        self._outbox.append((task, future))
        if len(self._outbox) == 1:
            asyncio.get_running_loop().call_soon(self._flush_soon)
        return await future

    def _flush_soon(self) -> None:
        task = asyncio.create_task(self._flush())
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the other jobs of this turn add their tasks
        batch, self._outbox = self._outbox, []
        try:
            outcomes = await self.backend.submit([task for task, _ in batch])
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)

    async def _wait_for(self, uuid: str) -> TaskState:
        future: asyncio.Future[TaskState] = asyncio.get_running_loop().create_future()
        self._waiters[uuid] = future
        self._wake.set()
        return await future

    def _retryable(self, job: Job, state: TaskState) -> bool:
        code = state.error.code if state.error else ""
        return code in TRANSIENT_CODES and job.attempt < self.options.task_attempts

    def _fail_task(self, job: Job, state: TaskState) -> None:
        self.journal.mark_failed(job.task_uuid or "", _error_json(state.error))
        self._finish(job, JobStatus.FAILED, _reason(state))

    async def _collect(self, job: Job, state: TaskState) -> None:
        """Download every take into the store, then record the shot and close the task."""
        self._set(job, JobStatus.DOWNLOADING)
        ext = EXTENSIONS[job.lead.request.get("outputFormat", "MP4")]
        takes = [await self._patiently(f"{job.label}: downloading take {i + 1}",
                                       partial(self._download, r, i + 1, ext))
                 for i, r in enumerate(state.results)]
        job.cost = round(sum(r.cost or 0.0 for r in state.results), 6)
        self.spent += job.cost
        seed = state.results[0].seed if state.results[0].seed is not None else job.lead.seed
        job.record = ShotRecord(job.identity, job.task_uuid or "", int(seed), tuple(takes),
                                job.cost)
        self.store.record_shot(job.identity, job.record)
        self.journal.mark_done(job.task_uuid or "", [_result_json(r) for r in state.results])
        self._finish(job, JobStatus.DONE)

    async def _download(self, result: VideoResult, index: int, ext: str) -> Take:
        temp = self.store.temp_path(f".{ext}")
        got = await self.backend.download(result.video_url, temp,
                                          max_bytes=self.options.download_max_bytes,
                                          timeout=self.options.download_timeout)
        stored = self.store.put_file(got.path, ext, sha256=got.sha256)
        probe = await asyncio.to_thread(probe_video, stored.path)
        facts = {k: v for k, v in probe.to_dict().items() if k != "path"}
        return Take(index, result.video_uuid, stored.sha256, ext, stored.size, facts)

    # -- the poller ----------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        """One getResponse request per tick for every task in flight."""
        while True:
            if not self._waiters:
                self._wake.clear()
                await self._wake.wait()
                await self.sleep(self.options.first_poll)
            else:
                await self.sleep(self.options.poll_interval)
            await self._poll_once()

    async def _poll_once(self) -> None:
        uuids = list(self._waiters)
        if not uuids:
            return
        try:
            states = await self.backend.poll(uuids)
        except ApiError as exc:
            if exc.transient:
                self.reporter.note(f"poll failed, will poll again: {exc.render()}")
                return
            for uuid in uuids:
                self._waiters.pop(uuid).set_exception(exc)
            return
        for uuid, state in states.items():
            if uuid in self._waiters and _settled(state):
                self._waiters.pop(uuid).set_result(state)


def _settled(state: TaskState) -> bool:
    if state.status is TaskStatus.SUCCESS:
        return len(state.results) >= max(state.expected, 1)
    return state.status in (TaskStatus.ERROR, TaskStatus.UNKNOWN)


def _reason(state: TaskState) -> str:
    return state.error.render() if state.error else f"task {state.status}"


def _error_json(error: ApiError | None) -> dict[str, Any]:
    if error is None:
        return {"code": "unknown", "message": "no error given"}
    return {"code": error.code, "message": error.message, "parameter": error.parameter,
            "status": error.status}


def _result_json(result: VideoResult) -> dict[str, Any]:
    return {"videoUUID": result.video_uuid, "videoURL": result.video_url, "seed": result.seed,
            "cost": result.cost}
