"""Benchmark of `storyreel run` end to end: the scheduler against its lower bound, requests
per shot, a no-op re-run, and the media stage against the ffmpeg command line.

Input: nothing (the storyboards are generated here). Output: tables on stdout.

1. A 200-shot storyboard of chains and fans (5 s shots at 360x360, some with two takes) on
   the embedded simulator with latency uniform in 1-3 s (PixVerse takes tens of seconds; the
   simulator's poll tick is scaled with it), concurrency 8. The simulator keeps every task's
   submission and ready times in `.storyreel/simulator/tasks/`, so each shot's latency is
   known; from them and the shot graph: the critical path, the total work over the
   concurrency, and their max, the lower bound of any schedule. The makespan is the first
   task's journal entry to the last shot done. Target: within 1.1x the lower bound.
   HTTP requests per shot come from `run --json`.
2. A 100-shot storyboard made once, then run again: the wall time of the whole command (a
   new process: interpreter, imports, compile, cache checks, lock, film check) and of the
   run itself in process, with the requests it makes. Target: under 1 s, zero requests.
3. `bench/media.py`: last-frame extraction and stitching (stream copy, crossfade) next to
   the ffmpeg command line doing the same. Target: within 1.2x.

    python bench/run.py [--shots 200] [--noop-shots 100] [--skip-media]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support_storyboards import BoardShape, chains_and_fans, write_storyboard  # noqa: E402

from pipeline.language.compile import compile_storyboard  # noqa: E402
from pipeline.run.execute import RunRequest, execute  # noqa: E402
from pipeline.store import ObjectStore, TaskPhase, read_tasks  # noqa: E402

_SCRIPT = Path(sys.executable).with_name("storyreel")
STORYREEL = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "pipeline.cli"]
CONCURRENCY = 8
LATENCY = (1.0, 3.0)
SIZE = (360, 360)
REPEATS = 3


@dataclass(frozen=True)
class Schedule:
    shots: int
    tasks: int
    makespan: float
    critical_path: float
    work: float
    wall: float
    requests: dict[str, int]

    @property
    def lower_bound(self) -> float:
        return max(self.critical_path, self.work / CONCURRENCY)


@dataclass(frozen=True)
class NoOp:
    shots: int
    process_s: float
    in_process_s: float
    requests: int
    film: str


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=200)
    parser.add_argument("--noop-shots", type=int, default=100)
    parser.add_argument("--skip-media", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="storyreel-bench-run-") as folder:
        work = Path(folder)
        schedule = bench_schedule(work / "schedule", args.shots)
        print_schedule(schedule)
        noop = bench_noop(work / "noop", args.noop_shots)
        print_noop(noop)
    if not args.skip_media:
        sys.path.insert(0, str(ROOT / "bench"))
        from media import run_media_bench

        print_media(run_media_bench())


def board(shots: int, seed: int, roots: int) -> BoardShape:
    """Chains and fans in `roots` trees; the film is every shot, stream-copied."""
    shapes = chains_and_fans(shots, seed=seed, roots=roots, sizes=(SIZE,))
    return BoardShape(shapes, film=tuple(s.id for s in shapes))


def run_command(story: Path, *args: str) -> tuple[dict[str, Any], float]:
    """`storyreel run STORY --json ARGS` as a new process: its summary and wall time."""
    command = [*STORYREEL, "run", str(story), "--json", *args]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=story.parent, capture_output=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"storyreel run failed ({done.returncode}):\n"
                         f"{done.stderr.decode()[-3000:]}")
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary, wall


# -- 1. the schedule --------------------------------------------------------------------


def bench_schedule(folder: Path, shots: int) -> Schedule:
    story = write_storyboard(folder, board(shots, seed=3, roots=shots // 20))
    summary, wall = run_command(story, "--concurrency", str(CONCURRENCY),
                                "--sim-latency", f"{LATENCY[0]},{LATENCY[1]}")
    latency, first, last = task_times(folder)
    plan = compile_storyboard(story).plan
    needs = {s.identity: {p.identity for p in plan.shots if p.key in s.needs}
             for s in plan.shots}
    return Schedule(shots=len(needs), tasks=len(latency), makespan=last - first,
                    critical_path=longest_path(needs, latency),
                    work=sum(latency.values()), wall=wall, requests=summary["requests"])


def task_times(folder: Path) -> tuple[dict[str, float], float, float]:
    """Each identity's latency (submission to its last result, as the simulator planned
    it), the first task's journal entry and the last task's completion, in seconds."""
    planned = {}
    for path in (ObjectStore(folder / ".storyreel").simulator_dir / "tasks").glob("*.json"):
        record = json.loads(path.read_text())
        ready = max(r["ready_at"] for r in record["results"])
        planned[record["task_uuid"]] = ready - record["submitted"]
    done = read_tasks(ObjectStore(folder / ".storyreel").journal_path, TaskPhase.DONE)
    latency = {task.identity: planned[task.task_uuid] for task in done}
    first = min(task.created.timestamp() for task in done)
    last = max(task.updated.timestamp() for task in done)
    return latency, first, last


def longest_path(needs: Mapping[str, set[str]], weight: Mapping[str, float]) -> float:
    """The heaviest chain of the graph, a node's weight counted once on it."""
    finish: dict[str, float] = {}

    def end(node: str) -> float:
        if node not in finish:
            finish[node] = weight[node] + max((end(p) for p in needs[node]), default=0.0)
        return finish[node]

    return max(end(node) for node in needs)


def print_schedule(s: Schedule) -> None:
    requests = sum(s.requests.values())
    by_type = ", ".join(f"{k} {v / s.shots:.2f}" for k, v in sorted(s.requests.items()))
    print(f"\n1. scheduler: {s.shots} shots ({s.tasks} tasks), concurrency {CONCURRENCY}, "
          f"latency {LATENCY[0]:g}-{LATENCY[1]:g} s, {SIZE[0]}x{SIZE[1]} 5 s clips")
    rows = [
        ("critical path (sum of latencies)", f"{s.critical_path:.1f} s", ""),
        (f"total work / {CONCURRENCY}", f"{s.work / CONCURRENCY:.1f} s",
         f"work {s.work:.1f} s"),
        ("lower bound = max of the two", f"{s.lower_bound:.1f} s", ""),
        ("makespan (first task to last done)", f"{s.makespan:.1f} s",
         f"ratio {s.makespan / s.lower_bound:.2f}x (target <= 1.1x)"),
        ("whole command (with start-up and film)", f"{s.wall:.1f} s", ""),
        ("HTTP requests per shot", f"{requests / s.shots:.2f}",
         f"{requests} in all: {by_type}"),
    ]
    table(rows)


# -- 2. the no-op re-run ----------------------------------------------------------------


def bench_noop(folder: Path, shots: int) -> NoOp:
    story = write_storyboard(folder, board(shots, seed=5, roots=max(shots // 10, 1)))
    run_command(story, "--sim-latency", "0.05,0.2")  # make everything once
    walls, counts = [], []
    for _ in range(REPEATS):
        summary, wall = run_command(story)
        walls.append(wall)
        counts.append(sum(summary["requests"].values()))
        film = summary["films"][0]["method"]
    in_process = statistics.median(time_in_process(story) for _ in range(REPEATS))
    return NoOp(shots, statistics.median(walls), in_process, max(counts), film)


def time_in_process(story: Path) -> float:
    started = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        summary = asyncio.run(execute(RunRequest(story, str(story)), Silent()))
    elapsed = time.perf_counter() - started
    assert not summary.requests, summary.requests
    return elapsed


class Silent:
    def update(self, job: object) -> None:
        pass

    def note(self, message: str) -> None:
        pass


def print_noop(n: NoOp) -> None:
    print(f"\n2. no-op re-run of a cached {n.shots}-shot storyboard (median of {REPEATS})")
    table([
        ("`storyreel run --json`, a new process", f"{n.process_s:.2f} s",
         f"target < 1 s: {'met' if n.process_s < 1 else 'missed'}"),
        ("the run in process (execute)", f"{n.in_process_s:.2f} s",
         f"start-up and imports: {n.process_s - n.in_process_s:.2f} s"),
        ("HTTP requests", str(n.requests), f"target 0; film {n.film}"),
    ])


# -- 3. media ---------------------------------------------------------------------------


def print_media(rows: list[dict[str, object]]) -> None:
    print("\n3. media, median of 3, next to the ffmpeg command line (target <= 1.2x)")
    table([(str(r["job"]), f"{r['ours_s']:.3f} s",
            f"ffmpeg {r['ffmpeg_s']:.3f} s, ratio {r['ratio']:.2f}x") for r in rows])


def table(rows: Sequence[tuple[str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"  {name:<{width}}  {value:>9}  {note}")


if __name__ == "__main__":
    main()
