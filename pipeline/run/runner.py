"""Job runner: one job in; its shot generated (or downloaded again), stored and recorded, out.

For a job whose parents are done, it obtains a task (resumes one an earlier run left open in
the journal, or prepares a new one, within `--max-cost`), sends it through the gateway in
a slot, retries a transient task failure as a new task, then downloads every take into the
store, records the shot and closes the task in the journal. A shot whose takes were lost
from the cache is downloaded again from the answer the journal kept, and paid for again
only when that fails. A failed job gives its reason; its descendants are skipped.
"""

from __future__ import annotations

import asyncio
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

from ..api import SubmitStatus, Task, TaskState, TaskStatus, VideoResult
from ..api.wire import TRANSIENT_CODES
from ..errors import ApiError, FileError, StoryreelError
from ..media.formats import EXTENSIONS
from ..media.probe import probe_video
from ..store import (
    CacheError,
    Journal,
    JournalTask,
    ObjectStore,
    ShotRecord,
    Take,
    TaskPhase,
)
from .chain import Chain
from .gateway import ServiceGone, TaskGateway
from .jobs import FINAL, Job, JobStatus, Reporter, RunOptions
from .slots import Slots


@dataclass
class Spending:
    """What the run has paid (`spent`) and may yet pay for the tasks it sent (`committed`)."""

    spent: float = 0.0
    committed: float = 0.0


class JobRunner:
    def __init__(self, jobs: Mapping[str, Job], gateway: TaskGateway, slots: Slots,
                 store: ObjectStore, journal: Journal, chain: Chain, reporter: Reporter,
                 options: RunOptions) -> None:
        self.jobs, self.gateway, self.slots = jobs, gateway, slots
        self.store, self.journal, self.chain = store, journal, chain
        self.reporter, self.options = reporter, options
        self.spending = Spending()

    def set(self, job: Job, status: JobStatus) -> None:
        job.status = status
        self.reporter.update(job)

    def finish(self, job: Job, status: JobStatus, error: str | None = None) -> None:
        job.error = error
        self.set(job, status)
        job.done.set()

    async def run(self, job: Job) -> None:
        """Run one job to a final status; only `ServiceGone` (the run stops) escapes."""
        if job.status in FINAL:
            return
        try:
            await self._body(job)
        except ServiceGone:
            raise
        except StoryreelError as exc:
            self.finish(job, JobStatus.FAILED, exc.render())
        except OSError as exc:  # the cache's folder: a take, a frame, a record
            doing = f"store its take, frames or records in {self.store.root}"
            error = FileError.from_os(exc, doing)
            self.finish(job, JobStatus.FAILED, error.render())
        except ValueError as exc:
            self.finish(job, JobStatus.FAILED, f"{type(exc).__name__}: {exc}")

    async def _body(self, job: Job) -> None:
        self.set(job, JobStatus.WAITING)
        cause = await self._wait_parents(job)
        if cause is not None:
            self.finish(job, JobStatus.SKIPPED, cause)
            return
        if await self._restore(job):
            return
        state = await self._in_slot(job)
        if state is not None:
            await self._collect(job, state)
            self.finish(job, JobStatus.DONE)

    async def _wait_parents(self, job: Job) -> str | None:
        for identity in job.parents:
            parent = self.jobs[identity]
            await parent.done.wait()
            if not parent.finished:
                return f"{parent.label} {parent.status}"
        return None

    # -- obtaining a task ----------------------------------------------------------------

    async def _in_slot(self, job: Job) -> TaskState | None:
        """A slot is a task at the service: held until its results are ready. The frames it
        needs are extracted and uploaded before it takes one (resolved again inside, they come
        from the cache), and its results download after, so no task waits for a transfer."""
        if self._open_task(job) is None:
            await self._resolve(job)
        await self.slots.acquire(job.priority)
        try:
            return await self._obtain(job)
        finally:
            self.slots.release()

    def _open_task(self, job: Job) -> JournalTask | None:
        return next((t for t in reversed(self.journal.tasks_for(job.identity)) if t.is_open),
                    None)

    async def _resolve(self, job: Job) -> tuple[Task, dict[str, str]]:
        return await self.gateway.patiently(
            f"{job.label}: preparing its images",
            lambda: self.chain.resolve(job.lead.request, self._parent_records(job)))

    async def _obtain(self, job: Job) -> TaskState | None:
        """Resume the task an earlier run left open, or make a new one; retry transient
        task failures as new tasks. None when the job has failed."""
        open_task = self._open_task(job)
        task: Task | None = open_task.request if open_task else None
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

    async def _new_task(self, job: Job) -> Task | None:
        estimate = job.lead.estimated_cost
        limit = self.options.max_cost
        spending = self.spending
        if limit is not None and max(spending.spent, spending.committed) + estimate > limit + 1e-9:
            self.finish(job, JobStatus.SKIPPED,
                        f"--max-cost {limit:g}: ${estimate:.3f} more would pass it")
            return None
        request, job.inputs = await self._resolve(job)
        job.attempt += 1
        job.task_uuid = str(uuidlib.uuid4())
        task = {"taskType": "videoInference", **request, "taskUUID": job.task_uuid}
        self.journal.prepare(job.task_uuid, job.identity, job.label, task, job.attempt)
        spending.committed += estimate
        return task

    def _parent_records(self, job: Job) -> dict[str, ShotRecord]:
        """Each parent shot key's finished record (the parents are done when this is asked)."""
        by_key = {s.key: s.identity for j in self.jobs.values() for s in j.shots}
        records = {k: self.jobs[by_key[k]].record for k in job.lead.needs}
        return {k: r for k, r in records.items() if r is not None}

    async def _submit_and_wait(self, job: Job, task: Task, resumed: JournalTask | None
                               ) -> TaskState:
        job.started = asyncio.get_running_loop().time()
        uuid = str(task["taskUUID"])
        if resumed is None or resumed.state is TaskPhase.PREPARED:
            await self._submit(task)
        for _ in range(self.options.resend_unknown + 1):
            self.set(job, JobStatus.RENDERING)
            state = await self.gateway.wait(uuid)
            if state.status is not TaskStatus.UNKNOWN:
                return state
            self.reporter.note(f"{job.label}: the server does not know task {uuid}; "
                               "sending it again")
            await self._submit(task)
        raise ApiError(f"the server keeps losing task {uuid}", code="taskNotFound",
                       task_uuid=uuid)

    async def _submit(self, task: Task) -> None:
        uuid = str(task["taskUUID"])
        outcome = await self.gateway.submit(task)
        if outcome.status is SubmitStatus.REFUSED:
            error = outcome.error or ApiError("task refused", task_uuid=uuid)
            self.journal.mark_failed(uuid, _error_json(error))
            raise error
        self.journal.mark_submitted(uuid)

    def _retryable(self, job: Job, state: TaskState) -> bool:
        code = state.error.code if state.error else ""
        return code in TRANSIENT_CODES and job.attempt < self.options.task_attempts

    def _fail_task(self, job: Job, state: TaskState) -> None:
        self.journal.mark_failed(job.task_uuid or "", _error_json(state.error))
        self.finish(job, JobStatus.FAILED, _reason(state))

    # -- collecting its takes ------------------------------------------------------------

    async def _collect(self, job: Job, state: TaskState) -> None:
        """Download every take into the store, then record the shot and close the task."""
        job.record = await self._store_takes(job, job.task_uuid or "", state.results)
        job.cost = job.record.cost
        self.spending.spent += job.cost or 0.0
        self.journal.mark_done(job.task_uuid or "", [_result_json(r) for r in state.results])

    async def _store_takes(self, job: Job, task_uuid: str, results: tuple[VideoResult, ...],
                           expected: ShotRecord | None = None) -> ShotRecord:
        self.set(job, JobStatus.DOWNLOADING)
        ext = EXTENSIONS[job.lead.request.get("outputFormat", "MP4")]
        takes = [await self.gateway.patiently(f"{job.label}: downloading take {i + 1}",
                                              partial(self._download, r, i + 1, ext))
                 for i, r in enumerate(results)]
        if expected is not None:
            _check_same_takes(expected, takes)
        cost = round(sum(r.cost or 0.0 for r in results), 6)
        seed = results[0].seed if results[0].seed is not None else job.lead.seed
        record = ShotRecord(job.identity, task_uuid, int(seed), tuple(takes), cost)
        self.store.record_shot(job.identity, record)
        return record

    async def _download(self, result: VideoResult, index: int, ext: str) -> Take:
        temp = self.store.temp_path(f".{ext}")
        got = await self.gateway.backend.download(
            result.video_url, temp, max_bytes=self.options.download_max_bytes,
            timeout=self.options.download_timeout)
        stored = self.store.put_file(got.path, ext, sha256=got.sha256)
        probe = await asyncio.to_thread(probe_video, stored.path)
        facts = {k: v for k, v in probe.to_dict().items() if k != "path"}
        return Take(index, result.video_uuid, stored.sha256, ext, stored.size, facts)

    # -- downloading again what the cache lost ------------------------------------------

    async def _restore(self, job: Job) -> bool:
        """Download the takes of the task that made this shot again, from the answer the
        journal kept; whether that worked (if not, the shot is generated again)."""
        done = self.journal.last_done(job.identity)
        if done is None or not done.results or self._open_task(job) is not None:
            return False
        self.reporter.note(f"{job.label}: its takes are missing from the cache; downloading "
                           f"them again from task {done.task_uuid} (nothing to pay)")
        try:
            results = tuple(_result_from_json(r) for r in done.results)
            job.record = await self._store_takes(job, done.task_uuid, results,
                                                 self.store.read_shot(job.identity))
        except (ApiError, CacheError, KeyError, TypeError, ValueError) as exc:
            reason = exc.render() if isinstance(exc, StoryreelError) else repr(exc)
            self.reporter.note(f"{job.label}: cannot download it again ({reason}); "
                               "generating it again")
            return False
        job.task_uuid = done.task_uuid
        self.finish(job, JobStatus.RESTORED)
        return True


def _check_same_takes(expected: ShotRecord, takes: list[Take]) -> None:
    """A take downloaded again must be the video the cache lost, byte for byte."""
    got = [take.sha256 for take in takes]
    wanted = [take.sha256 for take in expected.takes]
    if got != wanted:
        raise CacheError("the service sent other videos than the ones recorded")


def _reason(state: TaskState) -> str:
    return state.error.render() if state.error else f"task {state.status}"


def _error_json(error: ApiError | None) -> dict[str, object]:
    if error is None:
        return {"code": "unknown", "message": "no error given"}
    return {"code": error.code, "message": error.message, "parameter": error.parameter,
            "status": error.status}


def _result_json(result: VideoResult) -> dict[str, object]:
    return {"videoUUID": result.video_uuid, "videoURL": result.video_url, "seed": result.seed,
            "cost": result.cost}


def _result_from_json(data: Mapping[str, object]) -> VideoResult:
    seed, cost = data.get("seed"), data.get("cost")
    return VideoResult(str(data["videoUUID"]), str(data["videoURL"]),
                       seed if isinstance(seed, int) else None,
                       float(cost) if isinstance(cost, int | float) else None)
