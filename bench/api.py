"""Benchmark: our client's batched polling against the official SDK's, on the simulator.

Input: nothing (the tasks are made here). Output: a table on stdout. The same 200 PixVerse
tasks (same taskUUIDs, so the simulator draws the same latency for each) are run twice, each
time against a fresh `storyreel simulate` process on 127.0.0.1:

- ours: `RunwareClient`, the tasks submitted in batches, then one `getResponse` request per
  tick for every task in flight, on a pure `PollPolicy`;
- the SDK: `runware-sdk` from PyPI (REST transport), one `run()` per task, all at once with
  `asyncio.gather`, each polling on the SDK's own schedule (1 s, 0.5 s, then x1.5 to 10 s).

For each: HTTP requests per finished task (from the simulator's counters), and the delay
from a task being ready in the simulator to the client knowing (mean and p95). Two latency
ranges: 2-6 s as generated (our policy polls every 1 s), and the same scaled down by 5
(0.4-1.2 s, our interval scaled with it to 0.2 s). Last, a 5 s 1280x720 clip rendered through
the simulator (submit, poll, download), median of 3; target under 1 s.

    python bench/api.py [--tasks 200] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.api import RunwareClient, TaskStatus
from pipeline.api.polling import BATCH_POLL, PollPolicy, poll_delays
from pipeline.simulator.app import SimulatorConfig, simulator_transport

PROMPTS = ["a lighthouse in a storm", "a fox crossing fresh snow", "lanterns on a canal",
           "a tram climbing a hill at dawn", "kites over a beach"]


@dataclass(frozen=True)
class Scenario:
    name: str
    latency: tuple[float, float]
    policy: PollPolicy


@dataclass(frozen=True)
class Outcome:
    client: str
    finished: int
    requests: int
    delays: list[float]

    @property
    def per_task(self) -> float:
        return self.requests / max(self.finished, 1)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.delays)

    @property
    def p95(self) -> float:
        return statistics.quantiles(self.delays, n=20)[18]


def make_tasks(count: int) -> list[dict[str, Any]]:
    return [{"taskType": "videoInference", "taskUUID": str(uuid.uuid4()),
             "model": "pixverse:1@3", "positivePrompt": PROMPTS[n % len(PROMPTS)],
             "resolution": "720p", "duration": 5, "seed": n, "includeCost": True}
            for n in range(count)]


# -- the simulator in its own process --------------------------------------------------


@contextmanager
def simulator(latency: tuple[float, float]) -> Iterator[str]:
    """`storyreel simulate` on a free port; yields its /v1 URL."""
    code = ("from pipeline.simulator.serve import simulate_command; simulate_command()("
            f"['--port', '0', '--latency', '{latency[0]},{latency[1]}', '--seed', '1', "
            "'--no-access-log'])")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    url = process.stdout.readline().rsplit(" at ", 1)[1].strip()
    drain = threading.Thread(target=process.stdout.read, daemon=True)
    drain.start()
    try:
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        process.stdout.close()


def fetch_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.load(answer)


def outcome(client: str, url: str, known: dict[str, float]) -> Outcome:
    origin = url.removesuffix("/v1")
    stats = fetch_json(f"{origin}/_simulator/stats")
    ready = {t["taskUUID"]: t["ready"] for t in fetch_json(f"{origin}/_simulator/tasks")["tasks"]}
    delays = [known[u] - ready[u] for u in known]
    return Outcome(client, len(known), stats["http_requests"], delays)


# -- the two clients -------------------------------------------------------------------


async def drive_ours(url: str, tasks: Sequence[dict[str, Any]], policy: PollPolicy
                     ) -> dict[str, float]:
    """Submit in batches, then one poll request per tick for every task in flight."""
    known: dict[str, float] = {}
    async with RunwareClient("bench-key", base_url=url) as client:
        await client.submit(tasks)
        pending = [t["taskUUID"] for t in tasks]
        for delay in poll_delays(policy):
            await asyncio.sleep(delay)
            states = await client.poll(pending)
            now = time.time()
            for task_uuid, state in states.items():
                if state.status in (TaskStatus.SUCCESS, TaskStatus.ERROR):
                    known[task_uuid] = now
            pending = [u for u in pending if u not in known]
            if not pending:
                break
    return known


async def drive_sdk(url: str, tasks: Sequence[dict[str, Any]]) -> dict[str, float]:
    """One SDK `run()` per task, all at once, each on the SDK's own polling."""
    from runware import Runware

    known: dict[str, float] = {}
    async with Runware(api_key="bench-key", transport="rest", http_base_url=url) as sdk:
        async def one(task: dict[str, Any]) -> None:
            await sdk.run(dict(task))
            known[task["taskUUID"]] = time.time()

        await asyncio.gather(*(one(t) for t in tasks))
    return known


def run_client(name: str, scenario: Scenario, tasks: list[dict[str, Any]],
               drive: Callable[[str], Coroutine[Any, Any, dict[str, float]]]) -> Outcome:
    with simulator(scenario.latency) as url:
        started = time.perf_counter()
        known = asyncio.run(drive(url))
        elapsed = time.perf_counter() - started
        result = outcome(name, url, known)
    print(f"  {name:<5} {result.finished} tasks in {elapsed:5.1f} s", file=sys.stderr)
    return result


def compare(scenario: Scenario, tasks: list[dict[str, Any]]) -> tuple[Outcome, Outcome]:
    print(f"{scenario.name}: latency {scenario.latency[0]:g}-{scenario.latency[1]:g} s",
          file=sys.stderr)
    ours = run_client("ours", scenario, tasks,
                      lambda url: drive_ours(url, tasks, scenario.policy))
    sdk = run_client("sdk", scenario, tasks, lambda url: drive_sdk(url, tasks))
    return ours, sdk


# -- rendering through the simulator -----------------------------------------------------


async def render_once(client: RunwareClient, folder: Path, seed: int) -> float:
    task_uuid = str(uuid.uuid4())
    await client.submit([{"taskUUID": task_uuid, "model": "pixverse:1@3",
                          "positivePrompt": "a harbour at dusk, boats rocking", "width": 1280,
                          "height": 720, "duration": 5, "seed": seed,
                          "providerSettings": {"pixverse": {"cameraMovement": "zoom_in"}}}])
    [result] = (await client.poll([task_uuid]))[task_uuid].results
    started = time.perf_counter()
    await client.download(result.video_url, folder / f"{seed}.mp4", max_bytes=10**9,
                          timeout=120)
    return time.perf_counter() - started


def time_render(repeats: int = 3) -> float:
    async def main() -> list[float]:
        with tempfile.TemporaryDirectory(prefix="storyreel-bench-") as folder:
            transport = simulator_transport(SimulatorConfig(latency=(0, 0)))
            async with RunwareClient("bench-key", base_url="http://127.0.0.1/v1",
                                     transport=transport) as client:
                return [await render_once(client, Path(folder), s) for s in range(repeats)]

    return statistics.median(asyncio.run(main()))


# -- report ------------------------------------------------------------------------------


def report(rows: list[tuple[Scenario, Outcome, Outcome]], render_s: float) -> None:
    print(f"{'latency':<10} {'client':<6} {'tasks':>5} {'requests':>8} {'req/task':>8} "
          f"{'delay mean':>10} {'delay p95':>9}")
    for scenario, ours, sdk in rows:
        for o in (ours, sdk):
            print(f"{scenario.name:<10} {o.client:<6} {o.finished:>5} {o.requests:>8} "
                  f"{o.per_task:>8.3f} {o.mean:>9.3f}s {o.p95:>8.3f}s")
        ratio = ours.per_task / sdk.per_task
        verdict = "ok" if ratio <= 0.2 and ours.mean <= sdk.mean and ours.p95 <= sdk.p95 \
            else "MISSED"
        print(f"{'':<10} ratio  requests/task ours/sdk = {ratio:.3f} (target <= 0.2); "
              f"delay mean {ours.mean / sdk.mean:.2f}x, p95 {ours.p95 / sdk.p95:.2f}x "
              f"of the SDK's -> {verdict}")
    print(f"render 5 s 1280x720 through the simulator (download of a fresh result, median "
          f"of 3): {render_s:.3f} s (target < 1 s)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="only the scaled-down latency")
    args = parser.parse_args(argv)
    tasks = make_tasks(args.tasks)
    scenarios = [Scenario("0.4-1.2 s", (0.4, 1.2), PollPolicy(0.2, 1.0, 0.2, 1200.0))]
    if not args.quick:
        scenarios.insert(0, Scenario("2-6 s", (2.0, 6.0), BATCH_POLL))
    rows = [(s, *compare(s, tasks)) for s in scenarios]
    report(rows, time_render())


if __name__ == "__main__":
    main()
