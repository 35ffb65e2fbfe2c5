"""The run's parts alone, on fake time: the ready queue's slots and the task gateway (batched
submits, polls under the policy, deadlines, the outage budget)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from support_backend import FakeTime

from pipeline.api import (
    Download,
    SubmitOutcome,
    SubmitStatus,
    TaskState,
    TaskStatus,
    VideoResult,
)
from pipeline.api.polling import PollPolicy
from pipeline.errors import ApiError
from pipeline.run.gateway import ServiceGone, TaskGateway
from pipeline.run.slots import Slots

T = TypeVar("T")


def run(main: Callable[[], Awaitable[T]]) -> T:
    async def wrapped() -> T:
        return await main()

    return asyncio.run(wrapped())


# -- slots ---------------------------------------------------------------------------------


def test_a_freed_slot_goes_to_the_highest_priority_waiter() -> None:
    async def main() -> list[str]:
        slots, order = Slots(1), []
        await slots.acquire(0)

        async def want(name: str, priority: float) -> None:
            await slots.acquire(priority)
            order.append(name)
            slots.release()

        waiters = [asyncio.create_task(want(n, p)) for n, p in (("low", 1), ("high", 5),
                                                                 ("mid", 3), ("mid too", 3))]
        await asyncio.sleep(0)
        assert slots.waiting == 4
        slots.release()
        await asyncio.gather(*waiters)
        return order

    assert run(main) == ["high", "mid", "mid too", "low"]


def test_a_cancelled_waiter_does_not_keep_the_slot() -> None:
    async def main() -> int:
        slots = Slots(1)
        await slots.acquire(0)
        gone = asyncio.create_task(slots.acquire(9))
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        slots.release()
        await asyncio.wait_for(slots.acquire(1), 1)  # the slot came back
        return slots.free

    assert run(main) == 0


# -- the gateway ---------------------------------------------------------------------------


class NoJitter(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


class Service:
    """Tasks finish after `polls` polls each; every request fails transiently while `down`
    says so for the time. Records when (on the fake clock) each poll asked for which
    tasks."""

    def __init__(self, time: FakeTime, polls: int = 1) -> None:
        self.time, self.polls = time, polls
        self.left: dict[str, int] = {}
        self.submits: list[list[str]] = []
        self.poll_log: list[tuple[float, list[str]]] = []
        self.down: Callable[[float], bool] = lambda now: False
        self.request_counts: dict[str, int] = {}

    def _check(self) -> None:
        if self.down(self.time.now):
            raise ApiError("connection refused", code="connectionError", transient=True)

    async def submit(self, tasks: Sequence[Mapping[str, Any]]) -> list[SubmitOutcome]:
        self._check()
        self.submits.append([str(t["taskUUID"]) for t in tasks])
        for task in tasks:
            self.left[str(task["taskUUID"])] = self.polls
        return [SubmitOutcome(str(t["taskUUID"]), SubmitStatus.ACCEPTED) for t in tasks]

    async def poll(self, task_uuids: Sequence[str]) -> dict[str, TaskState]:
        self.poll_log.append((self.time.now, list(task_uuids)))
        self._check()
        states = {}
        for uuid in task_uuids:
            self.left[uuid] -= 1
            done = self.left[uuid] <= 0
            states[uuid] = (TaskState(uuid, TaskStatus.SUCCESS,
                                      (VideoResult(f"v-{uuid}", f"http://x/{uuid}.mp4"),),
                                      expected=1)
                            if done else TaskState(uuid, TaskStatus.PROCESSING))
        return states

    async def upload_image(self, data: bytes, mime: str = "image/png") -> str:
        raise NotImplementedError

    async def download(self, url: str, dest: Path, *, max_bytes: int, timeout: float) -> Download:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


def gateway(service: Service, time: FakeTime, policy: PollPolicy = PollPolicy(1, 1, 1, 600),
            patience: float = 300, notes: list[str] | None = None) -> TaskGateway:
    note = notes.append if notes is not None else (lambda text: None)
    return TaskGateway(service, policy=policy, patience=patience, note=note, clock=time,
                       sleep=time.sleep, rng=NoJitter())


async def polling(gate: TaskGateway, work: Awaitable[T]) -> T:
    poller = asyncio.create_task(gate.poll_forever())
    try:
        return await work
    finally:
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)


def test_tasks_ready_in_one_turn_share_one_submit_request() -> None:
    time = FakeTime()
    service = Service(time)
    gate = gateway(service, time)

    async def main() -> list[SubmitOutcome]:
        return list(await asyncio.gather(*(gate.submit({"taskUUID": f"t{i}"})
                                           for i in range(3))))

    outcomes = run(main)
    assert service.submits == [["t0", "t1", "t2"]]
    assert [o.task_uuid for o in outcomes] == ["t0", "t1", "t2"]


def test_polls_follow_the_policy_backing_off_to_its_cap() -> None:
    time = FakeTime()
    service = Service(time, polls=6)
    gate = gateway(service, time, PollPolicy(initial=1, factor=2, cap=4, deadline=600))

    async def main() -> TaskState:
        await gate.submit({"taskUUID": "t"})
        return await polling(gate, gate.wait("t"))

    state = run(main)
    assert state.status is TaskStatus.SUCCESS
    assert [when for when, _ in service.poll_log] == [1, 3, 7, 11, 15, 19]


def test_tasks_in_flight_together_are_polled_in_one_request() -> None:
    """The second task starts half a second later; one request asks for both at each tick,
    on the first task's schedule."""
    time = FakeTime()
    service = Service(time, polls=3)
    gate = gateway(service, time)

    async def main() -> None:
        async def one(uuid: str, delay: float) -> TaskState:
            await time.sleep(delay)
            await gate.submit({"taskUUID": uuid})
            return await gate.wait(uuid)

        await polling(gate, asyncio.gather(one("a", 0), one("b", 0.5)))

    run(main)
    assert [uuids for _, uuids in service.poll_log] == [["a", "b"]] * 3


def test_a_task_unfinished_past_the_deadline_fails_and_the_polls_stop() -> None:
    time = FakeTime()
    service = Service(time, polls=10**6)
    gate = gateway(service, time, PollPolicy(initial=1, factor=1.5, cap=10, deadline=120))

    async def main() -> None:
        await gate.submit({"taskUUID": "t"})
        await polling(gate, gate.wait("t"))

    with pytest.raises(ApiError, match="no result after 120 s") as caught:
        run(main)
    assert caught.value.code == "taskOverdue" and not caught.value.transient
    assert 120 <= time.now < 130
    assert len(service.poll_log) < 20


def test_polls_failing_past_the_patience_say_the_service_is_gone() -> None:
    time = FakeTime()
    service = Service(time, polls=10**6)
    notes: list[str] = []
    gate = gateway(service, time, patience=30, notes=notes)

    async def main() -> None:
        await gate.submit({"taskUUID": "t"})
        service.down = lambda now: True
        await polling(gate, gate.wait("t"))

    with pytest.raises(ServiceGone, match=r"failed every request for 3\d s \(patience 30 s\)"):
        run(main)
    assert 30 < time.now <= 32
    assert any("poll failed, will poll again" in note for note in notes)


def test_one_answer_in_an_outage_starts_the_patience_again() -> None:
    time = FakeTime()
    service = Service(time, polls=10**6)
    gate = gateway(service, time, patience=30)

    async def main() -> None:
        await gate.submit({"taskUUID": "t"})
        # Gone from the start, back for the polls at 25 and 26 s, then gone again: the
        # budget counts from 27 s, not from the start.
        service.down = lambda now: not 25 <= now < 26.5
        await polling(gate, gate.wait("t"))

    with pytest.raises(ServiceGone):
        run(main)
    assert time.now > 27 + 30


def test_patiently_rides_out_transient_failures_and_refuses_the_others() -> None:
    time = FakeTime()
    notes: list[str] = []
    gate = gateway(Service(time), time, patience=300, notes=notes)
    failures = iter([ApiError("busy", code="serverError", status=503, transient=True)] * 3)

    async def flaky() -> str:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return "answer"

    async def refused() -> str:
        raise ApiError("no", code="invalidApiKey", status=401)

    assert run(lambda: gate.patiently("asking", flaky)) == "answer"
    assert len(notes) == 3 and all(n.startswith("asking: API error serverError") for n in notes)
    with pytest.raises(ApiError, match="^no$"):
        run(lambda: gate.patiently("asking", refused))
    assert len(notes) == 3
