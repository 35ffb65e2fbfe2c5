"""Crash safety: what a resumed run relies on to make the same film as an uninterrupted one."""

from __future__ import annotations

import asyncio
import uuid

from pipeline.api import RunwareClient
from pipeline.simulator.app import SimulatorConfig, simulator_transport
from pipeline.simulator.faults import result_latencies

API_KEY = "test-key"
# -- take order: `pick` must name the same video whenever the polls happened to fall ------


def reversed_task_uuid(latency: tuple[float, float]) -> str:
    """A taskUUID whose second result the simulator finishes before its first."""
    for number in range(1, 1000):
        candidate = str(uuid.UUID(int=number << 64 | number, version=4))
        first, second = result_latencies(0, candidate, 2, latency)
        if second < first - 0.5:
            return candidate
    raise AssertionError("no such taskUUID")


def test_takes_keep_the_servers_order_however_the_polls_fall() -> None:
    """A poll that sees only the second result must not make it take 1: after a resume (or
    any other timing) the same `pick` has to name the same video."""
    latency = (1.0, 5.0)
    task_uuid = reversed_task_uuid(latency)
    first, second = result_latencies(0, task_uuid, 2, latency)
    clock = Clock()
    transport = simulator_transport(SimulatorConfig(latency=latency), clock=clock)
    task = {"taskUUID": task_uuid, "model": "pixverse:1@3", "positivePrompt": "a quiet beach",
            "width": 640, "height": 360, "duration": 5, "numberResults": 2, "seed": 5}

    async def main() -> tuple[list[str], list[str]]:
        early = RunwareClient(API_KEY, base_url="http://127.0.0.1/v1", transport=transport)
        late = RunwareClient(API_KEY, base_url="http://127.0.0.1/v1", transport=transport)
        await early.submit([task])
        clock.now += (first + second) / 2  # only the second result is ready
        seen = (await early.poll([task_uuid]))[task_uuid].results
        assert len(seen) == 1
        clock.now += 10
        polled_twice = (await early.poll([task_uuid]))[task_uuid].results
        polled_once = (await late.poll([task_uuid]))[task_uuid].results
        await early.aclose()
        await late.aclose()
        return [r.video_uuid for r in polled_twice], [r.video_uuid for r in polled_once]

    polled_twice, polled_once = asyncio.run(main())
    assert len(polled_once) == 2
    assert polled_twice == polled_once


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now
