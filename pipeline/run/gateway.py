"""Task gateway: the run's one door to the service. Tasks in; submit outcomes and finished
task states out, or the news that the service is gone.

Tasks that become ready in the same turn of the loop share one submit request. One poller
sends one getResponse request for every task in flight, when the earliest of them is due
under the pure `PollPolicy` (its delays grow from `initial` to `cap`, spread by a little
jitter); a task that starts waiting joins the next poll when that comes sooner than its
own first one. A task still unfinished past the policy's deadline fails its job and stays
open in the journal. Any request that fails transiently is tried again in rounds (`patiently`),
and the gateway keeps an `Outage`: when every request has failed for longer than
`patience` seconds, waiting is over and `ServiceGone` stops the run. Clock, sleep and
randomness are parameters.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ..api import Backend, SubmitOutcome, Task, TaskState, TaskStatus
from ..api.polling import (
    BATCH_POLL,
    PATIENCE,
    ROUNDS,
    Outage,
    PollPolicy,
    jittered,
    poll_delay,
    retry_delay,
)
from ..errors import ApiError, ExitCode, StoryreelError

T = TypeVar("T")


class ServiceGone(StoryreelError):
    """Every request has failed for longer than the outage budget: the run stops, and the
    tasks it has sent stay open in the journal for the next run to resume."""

    exit_code = ExitCode.FAILED


@dataclass
class _Waiter:
    """A task waiting for its results: when it is next due a poll, and until when."""

    future: asyncio.Future[TaskState]
    due: float
    deadline: float
    polls: int = 0


class TaskGateway:
    def __init__(self, backend: Backend, *, policy: PollPolicy = BATCH_POLL,
                 patience: float = PATIENCE, note: Callable[[str], None] = lambda text: None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rng: random.Random | None = None) -> None:
        self.backend, self.policy, self.patience, self.note = backend, policy, patience, note
        self.clock, self.sleep = clock, sleep
        self.rng = rng or random.Random()
        self.outage = Outage()
        self._waiters: dict[str, _Waiter] = {}
        self._wake = asyncio.Event()
        self._next_poll = float("inf")
        self._outbox: list[tuple[Task, asyncio.Future[SubmitOutcome]]] = []
        self._flushing: set[asyncio.Task[None]] = set()

    # -- patience ------------------------------------------------------------------------

    async def patiently(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run `attempt`; while it fails transiently, try again in rounds. The failure stands
        once it has gone on for `patience` seconds; if every other request failed meanwhile
        too, the service is gone and `ServiceGone` says so."""
        first_failure: float | None = None
        for round_ in range(ROUNDS.attempts):
            try:
                result = await attempt()
            except ApiError as exc:
                if not exc.transient:
                    raise
                now = self.clock()
                first_failure = now if first_failure is None else first_failure
                self._failed(exc)
                if now - first_failure > self.patience:
                    raise
                delay = min(retry_delay(ROUNDS, round_, self.rng, exc.retry_after),
                            max(first_failure + self.patience - now, 0.0) + 1.0)
                self.note(f"{what}: {exc.render()}; trying again in {delay:.1f} s")
                await self.sleep(delay)
            else:
                self.outage = self.outage.succeeded()
                return result
        raise AssertionError("unreachable: the rounds never run out")

    def _failed(self, exc: ApiError) -> None:
        """Count a transient failure towards the outage; past the budget, stop waiting."""
        now = self.clock()
        self.outage = self.outage.failed(now)
        if self.outage.beyond(self.patience, now):
            raise self.gone(exc)

    def gone(self, last: ApiError) -> ServiceGone:
        lasted = self.outage.lasted(self.clock())
        return ServiceGone(
            f"the service has failed every request for {lasted:.0f} s (patience "
            f"{self.patience:g} s); the last error: {last.render()}",
            hint="the tasks sent stay open in the journal: run the same command again to "
            "resume them without paying twice (--patience SECONDS waits longer)")

    # -- submitting ----------------------------------------------------------------------

    async def submit(self, task: Task) -> SubmitOutcome:
        """Send `task` with the others that become ready in this turn, patiently."""
        return await self.patiently(f"submitting {task['taskUUID']}",
                                    lambda: self._batched_submit(task))

    async def _batched_submit(self, task: Task) -> SubmitOutcome:
        future: asyncio.Future[SubmitOutcome] = asyncio.get_running_loop().create_future()
        self._outbox.append((task, future))
        if len(self._outbox) == 1:
            asyncio.get_running_loop().call_soon(self._flush_soon)
        return await future

    def _flush_soon(self) -> None:
        flush = asyncio.create_task(self._flush())
        self._flushing.add(flush)
        flush.add_done_callback(self._flushing.discard)

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

    # -- polling -------------------------------------------------------------------------

    async def wait(self, uuid: str) -> TaskState:
        """The task's state once it has settled (success with every result, error, or
        unknown to the server); `ApiError` once it is overdue."""
        future: asyncio.Future[TaskState] = asyncio.get_running_loop().create_future()
        now = self.clock()
        due = now + poll_delay(self.policy, 0)
        if self._next_poll <= due:
            due = self._next_poll  # a poll comes sooner anyway: one request asks for both
        else:
            self._wake.set()
        self._waiters[uuid] = _Waiter(future, due, now + self.policy.deadline)
        return await future

    async def poll_forever(self) -> None:
        """The poller: run it as a task beside the jobs, cancel it when they are done."""
        while True:
            if not self._waiters:
                self._next_poll = float("inf")
                self._wake.clear()
                await self._wake.wait()
                continue
            self._next_poll = min(w.due for w in self._waiters.values())
            delay = self._next_poll - self.clock()
            if delay > 0:
                await self._nap(delay)
            else:
                await self._poll_once()

    async def _nap(self, delay: float) -> None:
        """Sleep `delay`, or less if a task that is due sooner starts waiting."""
        self._wake.clear()
        nap = asyncio.ensure_future(self.sleep(delay))
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((nap, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            nap.cancel()
            woken.cancel()

    async def _poll_once(self) -> None:
        uuids = list(self._waiters)
        try:
            states = await self.backend.poll(uuids)
        except ApiError as exc:
            self._poll_failed(uuids, exc)
            return
        self.outage = self.outage.succeeded()
        for uuid, state in states.items():
            if uuid in self._waiters and _settled(state):
                self._answer(uuid, state)
        self._schedule(uuids)

    def _poll_failed(self, uuids: list[str], exc: ApiError) -> None:
        final: StoryreelError = exc
        if exc.transient:
            try:
                self._failed(exc)
            except ServiceGone as gone:
                final = gone
            else:
                self.note(f"poll failed, will poll again: {exc.render()}")
                self._schedule(uuids)
                return
        for uuid in uuids:
            self._answer(uuid, final)

    def _schedule(self, polled: list[str]) -> None:
        """Each task just polled is next due after its policy's next delay; one jitter draw
        for all, so tasks polled together stay together (one request for all of them)."""
        now = self.clock()
        spread = jittered(1.0, self.rng)
        for uuid in polled:
            waiter = self._waiters.get(uuid)
            if waiter is None:
                continue
            waiter.polls += 1
            if now >= waiter.deadline:
                self._answer(uuid, self._overdue(uuid))
            else:
                waiter.due = now + poll_delay(self.policy, waiter.polls) * spread
        # Tasks that started waiting while this poll was on its way joined it too late: they
        # go with the next one, instead of a poll of their own right now.
        upcoming = min((w.due for w in self._waiters.values() if w.due > now), default=None)
        for waiter in self._waiters.values():
            if waiter.due <= now:
                waiter.due = now + poll_delay(self.policy, 0) if upcoming is None else upcoming

    def _answer(self, uuid: str, answer: TaskState | BaseException) -> None:
        """Hand a waiting job its task's state (or error), unless it stopped waiting."""
        future = self._waiters.pop(uuid).future
        if future.done():
            return
        if isinstance(answer, BaseException):
            future.set_exception(answer)
        else:
            future.set_result(answer)

    def _overdue(self, uuid: str) -> ApiError:
        return ApiError(f"no result after {self.policy.deadline:g} s; the task stays open in "
                        "the journal, and running the same command again waits for it "
                        "without paying twice", code="taskOverdue", task_uuid=uuid)


def _settled(state: TaskState) -> bool:
    if state.status is TaskStatus.SUCCESS:
        return len(state.results) >= max(state.expected, 1)
    return state.status in (TaskStatus.ERROR, TaskStatus.UNKNOWN)
