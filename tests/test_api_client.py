"""The client against the simulator in process: the same code that talks to Runware.

A fake clock drives the simulator and a recording sleep stands in for waiting, so tasks go
from processing to success and retries back off without the test waiting for either.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import traceback
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pipeline.api import RunwareClient, SubmitStatus, TaskStatus
from pipeline.api.polling import RetryPolicy
from pipeline.errors import ApiError, ExitCode, UsageError
from pipeline.simulator.app import SimulatorApp, SimulatorConfig, simulator_transport
from pipeline.simulator.faults import Fault, request_fault, result_latencies

KEY = "sk-storyreel-LEAKCHECK-9c1f0e7d"


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def request(**extra: Any) -> dict[str, Any]:
    return {"taskUUID": str(uuid.uuid4()), "model": "pixverse:1@3",
            "positivePrompt": "a lighthouse at dusk, waves below", "width": 640,
            "height": 360, "duration": 5, **extra}


def run(config: SimulatorConfig,
        test: Callable[[RunwareClient, SimulatorApp, Clock, Sleeps],
                       Coroutine[Any, Any, None]],
        *, api_key: str = KEY, attempts: int = 6) -> SimulatorApp:
    """Run `test` with a client wired to a fresh in-process simulator."""
    clock, sleeps = Clock(), Sleeps()
    transport = simulator_transport(config, clock=clock)

    async def main() -> None:
        client = RunwareClient(api_key, base_url="http://127.0.0.1/v1", transport=transport,
                               sleep=sleeps, retry=RetryPolicy(attempts=attempts))
        async with client:
            await test(client, transport.app, clock, sleeps)

    asyncio.run(main())
    return transport.app


def seed_where(rates: list[tuple[Fault, float]], *pattern: Fault) -> int:
    """A simulator seed whose first requests meet exactly these faults, in order."""
    return next(s for s in range(10_000)
                if all(request_fault(s, n + 1, rates) is f for n, f in enumerate(pattern)))


def png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_task_goes_from_processing_to_success_with_distinct_seeds_and_costs() -> None:
    async def test(client: RunwareClient, app: SimulatorApp, clock: Clock, _: Sleeps) -> None:
        task = request(numberResults=3, seed=1234)
        [outcome] = await client.submit([task])
        assert outcome.status is SubmitStatus.ACCEPTED
        state = (await client.poll([task["taskUUID"]]))[task["taskUUID"]]
        assert (state.status, state.expected) == (TaskStatus.PROCESSING, 3)
        clock.advance(2.0)
        state = (await client.poll([task["taskUUID"]]))[task["taskUUID"]]
        assert state.status is TaskStatus.SUCCESS
        assert [r.seed for r in state.results] == [1234, 1235, 1236]
        assert [r.cost for r in state.results] == [0.15] * 3
        assert len({r.video_uuid for r in state.results}) == 3

    run(SimulatorConfig(latency=(0.5, 1.5)), test)


def spread_task_uuid(seed: int, bounds: tuple[float, float], step: float, polls: int) -> str:
    """A taskUUID whose 4 results the simulator finishes in 4 different poll intervals, each
    well inside one (the latencies are drawn from the seed and the taskUUID)."""
    for number in range(1, 10_000):
        candidate = str(uuid.UUID(int=number << 64 | number, version=4))
        ticks = [latency / step for latency in result_latencies(seed, candidate, 4, bounds)]
        windows = {int(t) for t in ticks}
        clear = all(0.1 < t % 1 < 0.9 for t in ticks)
        if len(windows) == 4 and clear and max(ticks) < polls:
            return candidate
    raise AssertionError("no such taskUUID")


def test_results_arrive_one_by_one_and_accumulate() -> None:
    seed, bounds, step, polls = 5, (0.1, 3.0), 0.25, 12
    task_uuid = spread_task_uuid(seed, bounds, step, polls)
    latencies = result_latencies(seed, task_uuid, 4, bounds)

    async def test(client: RunwareClient, app: SimulatorApp, clock: Clock, _: Sleeps) -> None:
        task = request(numberResults=4, taskUUID=task_uuid)
        await client.submit([task])
        counts = []
        for _step in range(polls):
            clock.advance(step)
            state = (await client.poll([task_uuid]))[task_uuid]
            counts.append(len(state.results))
        # Each poll sees exactly the results due by then: none, then one more at a time.
        assert counts == [sum(t <= step * (n + 1) for t in latencies) for n in range(polls)]
        assert len(set(counts)) >= 4 and counts[-1] == 4  # three polls saw part of them
        assert state.status is TaskStatus.SUCCESS

    run(SimulatorConfig(latency=bounds, seed=seed), test)


def test_resubmission_is_a_conflict_and_nothing_runs_twice() -> None:
    async def test(client: RunwareClient, app: SimulatorApp, clock: Clock, _: Sleeps) -> None:
        task = request()
        first = await client.submit([task])
        again = await client.submit([task, request()])
        assert first[0].status is SubmitStatus.ACCEPTED
        assert [o.status for o in again] == [SubmitStatus.CONFLICT, SubmitStatus.ACCEPTED]
        assert all(o.ok for o in again)
        assert (app.stats.tasks_accepted, app.stats.conflicts) == (2, 1)

    run(SimulatorConfig(latency=(0, 0)), test)


def test_unknown_tasks_poll_as_unknown_next_to_known_ones() -> None:
    async def test(client: RunwareClient, app: SimulatorApp, clock: Clock, _: Sleeps) -> None:
        task = request()
        await client.submit([task])
        stranger = str(uuid.uuid4())
        states = await client.poll([task["taskUUID"], stranger])
        assert states[stranger].status is TaskStatus.UNKNOWN
        assert states[task["taskUUID"]].status is TaskStatus.SUCCESS
        assert app.stats.requests["getResponse"] == 1  # both tasks in one request

    run(SimulatorConfig(latency=(0, 0)), test)


def test_refused_tasks_carry_code_parameter_and_status() -> None:
    async def test(client: RunwareClient, app: SimulatorApp, clock: Clock, _: Sleeps) -> None:
        good, bad = request(), request(duration=7)
        outcomes = await client.submit([good, bad])
        assert [o.status for o in outcomes] == [SubmitStatus.ACCEPTED, SubmitStatus.REFUSED]
        error = outcomes[1].error
        assert error is not None
        assert (error.code, error.parameter, error.task_uuid) == (
            "unsupportedDuration", "duration", bad["taskUUID"])

    run(SimulatorConfig(latency=(0, 0)), test)


def test_upload_an_image_and_use_it_as_the_first_frame() -> None:
    async def test(client: RunwareClient, app: SimulatorApp, clock: Clock, _: Sleeps) -> None:
        image_uuid = await client.upload_image(png(640, 360, (200, 40, 40)))
        task = request(inputs={"frameImages": [image_uuid]})
        [outcome] = await client.submit([task])
        assert outcome.status is SubmitStatus.ACCEPTED, outcome.error
        assert app.state.tasks[task["taskUUID"]].frames == {"first": image_uuid}

    run(SimulatorConfig(latency=(0, 0)), test)


def test_download_streams_to_disk_with_sha256_and_renders_once(tmp_path: Path) -> None:
    async def test(client: RunwareClient, app: SimulatorApp, clock: Clock, _: Sleeps) -> None:
        task = request(seed=7)
        await client.submit([task])
        [result] = (await client.poll([task["taskUUID"]]))[task["taskUUID"]].results
        first = await client.download(result.video_url, tmp_path / "a.mp4",
                                      max_bytes=50_000_000, timeout=30)
        second = await client.download(result.video_url, tmp_path / "b.mp4",
                                       max_bytes=50_000_000, timeout=30)
        data = (tmp_path / "a.mp4").read_bytes()
        assert first.sha256 == hashlib.sha256(data).hexdigest() == second.sha256
        assert first.size == len(data) and first.content_type == "video/mp4"
        assert app.stats.generations == 1
        assert app.stats.generations_by_video == {result.video_uuid: 1}
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4"]

    run(SimulatorConfig(latency=(0, 0)), test)


def test_expired_video_urls_are_gone_and_not_retried(tmp_path: Path) -> None:
    async def test(client: RunwareClient, app: SimulatorApp, clock: Clock, sleeps: Sleeps
                   ) -> None:
        task = request()
        await client.submit([task])
        [result] = (await client.poll([task["taskUUID"]]))[task["taskUUID"]].results
        clock.advance(61)
        with pytest.raises(ApiError) as caught:
            await client.download(result.video_url, tmp_path / "a.mp4", max_bytes=10**8,
                                  timeout=30)
        assert (caught.value.code, caught.value.status) == ("videoExpired", 410)
        assert sleeps.delays == [] and list(tmp_path.iterdir()) == []

    run(SimulatorConfig(latency=(0, 0), url_ttl=60), test)


def test_rate_limits_are_retried_after_retry_after() -> None:
    rates = [(Fault.RATE_LIMIT, 0.5)]
    seed = seed_where(rates, Fault.RATE_LIMIT, Fault.RATE_LIMIT, Fault.NONE)

    async def test(client: RunwareClient, app: SimulatorApp, clock: Clock, sleeps: Sleeps
                   ) -> None:
        [outcome] = await client.submit([request()])
        assert outcome.status is SubmitStatus.ACCEPTED
        assert len(sleeps.delays) == 2 and min(sleeps.delays) >= 3.0
        assert client.request_counts["videoInference"] == 3
        assert app.stats.faults == {"429": 2}

    run(SimulatorConfig(latency=(0, 0), rate_429=0.5, retry_after=3.0, seed=seed), test)


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.UNAVAILABLE])
def test_server_errors_are_retried(fault: Fault) -> None:
    rates = [(Fault.SERVER_ERROR, 0.3), (Fault.UNAVAILABLE, 0.3)]
    seed = seed_where(rates, fault, Fault.NONE)

    async def test(client: RunwareClient, app: SimulatorApp, clock: Clock, sleeps: Sleeps
                   ) -> None:
        states = await client.poll([str(uuid.uuid4())])
        assert [s.status for s in states.values()] == [TaskStatus.UNKNOWN]
        assert len(sleeps.delays) == 1 and app.stats.faults == {str(fault): 1}

    run(SimulatorConfig(rate_500=0.3, rate_503=0.3, seed=seed), test)


def test_a_dropped_answer_to_a_submission_ends_as_a_conflict() -> None:
    """The server took the task but the answer was lost: the retry learns it is there."""
    rates = [(Fault.DROP, 0.5)]
    seed = seed_where(rates, Fault.DROP, Fault.NONE)

    async def test(client: RunwareClient, app: SimulatorApp, clock: Clock, sleeps: Sleeps
                   ) -> None:
        [outcome] = await client.submit([request()])
        assert outcome.status is SubmitStatus.CONFLICT and outcome.ok
        assert (app.stats.tasks_accepted, app.stats.conflicts) == (1, 1)
        assert len(sleeps.delays) == 1

    run(SimulatorConfig(latency=(0, 0), rate_drop=0.5, seed=seed), test)


def test_retries_stop_after_the_last_attempt() -> None:
    async def test(client: RunwareClient, app: SimulatorApp, clock: Clock, sleeps: Sleeps
                   ) -> None:
        with pytest.raises(ApiError) as caught:
            await client.poll([str(uuid.uuid4())])
        assert caught.value.code == "connectionError" and caught.value.transient
        assert client.request_counts["getResponse"] == 3 and len(sleeps.delays) == 2

    run(SimulatorConfig(rate_drop=1.0), test, attempts=3)


def test_failed_tasks_poll_as_errors() -> None:
    async def test(client: RunwareClient, app: SimulatorApp, clock: Clock, _: Sleeps) -> None:
        tasks = [request() for _ in range(6)]
        await client.submit(tasks)
        states = await client.poll([t["taskUUID"] for t in tasks])
        failed = [s for s in states.values() if s.status is TaskStatus.ERROR]
        assert len(failed) == app.stats.faults["task_error"] == 6
        assert failed[0].error is not None and failed[0].error.code == "timeoutProvider"
        assert failed[0].error.transient

    run(SimulatorConfig(latency=(0, 0), rate_task_error=1.0), test)


def test_on_request_counts_each_task_type_once_per_http_request() -> None:
    seen: list[str] = []
    transport = simulator_transport(SimulatorConfig(latency=(0, 0)))

    async def main() -> None:
        async with RunwareClient(KEY, base_url="http://127.0.0.1/v1", transport=transport,
                                 on_request=seen.append) as client:
            await client.submit([request(), request()])
            await client.poll([str(uuid.uuid4()) for _ in range(3)])
            assert dict(client.request_counts) == {"videoInference": 1, "getResponse": 1}

    asyncio.run(main())
    assert seen == ["videoInference", "getResponse"]
    assert transport.app.stats.requests == {"videoInference": 1, "getResponse": 1}


def test_the_api_key_is_in_no_log_exception_repr_or_file(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[ApiError] = []

    async def refused(client: RunwareClient, app: SimulatorApp, clock: Clock, _: Sleeps
                      ) -> None:
        with pytest.raises(ApiError) as caught:
            await client.submit([request()])
        errors.append(caught.value)
        assert caught.value.status == 401 and caught.value.code == "invalidApiKey"

    async def dropped(client: RunwareClient, app: SimulatorApp, clock: Clock, _: Sleeps
                      ) -> None:
        with pytest.raises(ApiError) as caught:
            await client.poll([str(uuid.uuid4())])
        errors.append(caught.value)
        assert repr(client).count("127.0.0.1") == 1

    async def accepted(client: RunwareClient, app: SimulatorApp, clock: Clock, _: Sleeps
                       ) -> None:
        await client.submit([request()])
        assert KEY not in repr(client) and KEY not in str(vars(client).get("base_url"))

    run(SimulatorConfig(api_key="another-key"), refused)
    run(SimulatorConfig(rate_drop=1.0), dropped, attempts=2)
    app = run(SimulatorConfig(api_key=KEY, latency=(0, 0), state_dir=tmp_path), accepted)
    app.close()
    texts = [caplog.text, *(m.getMessage() for m in caplog.records)]
    for error in errors:
        texts += [str(error), repr(error), error.render(),
                  "".join(traceback.format_exception(error))]
    assert all(KEY not in text for text in texts)
    assert any("retrying" in m.getMessage() for m in caplog.records)
    assert all(KEY.encode() not in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


def test_from_env_reads_key_and_base_url() -> None:
    with pytest.raises(UsageError) as caught:
        RunwareClient.from_env({})
    assert caught.value.exit_code == ExitCode.USAGE
    assert "RUNWARE_API_KEY" in caught.value.render()

    async def main() -> None:
        client = RunwareClient.from_env(
            {"RUNWARE_API_KEY": KEY, "RUNWARE_BASE_URL": "http://127.0.0.1:9/v1"})
        async with client:
            assert client.base_url == "http://127.0.0.1:9/v1"
        async with RunwareClient.from_env({"RUNWARE_API_KEY": KEY}) as default:
            assert default.base_url == "https://api.runware.ai/v1"

    asyncio.run(main())


def test_a_key_that_cannot_be_a_header_is_refused_without_echoing_it() -> None:
    with pytest.raises(UsageError) as caught:
        RunwareClient("abc def\n")
    assert "abc def" not in caught.value.render()
