"""Crash safety end to end: `storyreel run` killed with SIGKILL at random moments, 20 times,
each followed by a resume, against a `storyreel simulate` server with latency.

The film that finally comes out must be byte-identical to the film of a run that was never
interrupted (its own folder, its own fresh simulator), and the simulator must have accepted
one task per shot identity and rendered every video exactly once: nothing paid for twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from click.testing import CliRunner
from support_processes import (
    API_KEY,
    Finished,
    LiveRun,
    Simulator,
    run_to_end,
    simulator,
)
from support_storyboards import BoardShape, ShotShape, write_storyboard

from pipeline.api import RunwareClient
from pipeline.cli import main
from pipeline.simulator.app import SimulatorConfig, simulator_transport
from pipeline.simulator.faults import result_latencies
from pipeline.store import ObjectStore, read_tasks

KILLS = 20
RUNWARE = ["--backend", "runware", "--yes"]  # the simulator over a socket, as Runware
LATENCY = (0.3, 1.0)

# A chain with `from` (a -> b -> c -> d -> e), fans (b -> c and b -> f; g -> h), two takes
# with pick 2 (b, so its children start from take 2), a shot outside the film (f) and a
# crossfade film.
BOARD = BoardShape(
    shots=(ShotShape("a", None), ShotShape("b", "a", takes=2, pick=2), ShotShape("c", "b"),
           ShotShape("d", "c"), ShotShape("e", "d"), ShotShape("f", "b"),
           ShotShape("g", None), ShotShape("h", "g")),
    film=("a", "b", "c", "d", "e", "g", "h"),
    crossfade=0.5,
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def journal_rows(folder: Path) -> list[tuple[str, str, str]]:
    """(identity, taskUUID, state) of every task the journal holds."""
    tasks = read_tasks(ObjectStore(folder / ".storyreel").journal_path)
    return [(t.identity, t.task_uuid, str(t.state)) for t in tasks]


def picked(summary: dict[str, Any]) -> dict[str, str]:
    """Shot id -> sha256 of its picked take."""
    return {s["id"]: sha256(Path(s["path"])) for s in summary["shots"]}


def assert_each_identity_made_once(sim: Simulator, summary: dict[str, Any],
                                   folder: Path) -> None:
    stats = sim.stats()
    tasks = {s["taskUUID"] for s in summary["shots"]}
    assert stats["tasks_accepted"] == len(tasks) == len(BOARD.shots)
    assert stats["generations"] == BOARD.results
    assert set(stats["generations_by_video"].values()) == {1}
    rows = journal_rows(folder)
    # One task per identity, and it is the task whose takes the run used.
    assert len({identity for identity, _, _ in rows}) == len(rows) == len(BOARD.shots)
    assert {task for _, task, _ in rows} == tasks
    assert {t["taskUUID"] for t in sim.tasks()} == tasks


@dataclass(frozen=True)
class Reference:
    """The uninterrupted run, and how long it took."""

    finished: Finished
    duration: float


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """The same storyboard run once, start to end, on a fresh simulator; then once more,
    which must find everything done."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    story = write_storyboard(folder / "film", BOARD)
    with simulator(folder / "simulator", latency=LATENCY) as sim:
        started = time.monotonic()
        finished = run_to_end(story, sim.env(), RUNWARE)
        duration = time.monotonic() - started
        assert finished.code == 0, finished.stderr
        assert_each_identity_made_once(sim, finished.summary, story.parent)
        again = run_to_end(story, sim.env(), RUNWARE)
        assert again.code == 0 and again.summary["requests"] == {}, again.stderr
    return Reference(finished, duration)


@dataclass(frozen=True)
class Kill:
    """When to kill a run: `delay` seconds after its `progress`-th progress line (0: its
    first line of all)."""

    progress: int
    delay: float


def kill_moments(seed: int = 20) -> list[Kill]:
    """Random moments, each a step or two into the run it interrupts (a task's results
    ready, a shot recorded, the film begun) and then a little further, so that twenty rounds
    walk through a whole run and the kills land in every phase of it: start-up, submission,
    polling, download, recording, stitching."""
    rng = random.Random(seed)
    return [Kill(rng.choice((0, 0, 1, 2)), rng.uniform(0, 0.8)) for _ in range(KILLS)]


@pytest.mark.slow
def test_a_run_killed_twenty_times_makes_the_same_film_and_pays_each_shot_once(
        tmp_path: Path, uninterrupted: Reference) -> None:
    story = write_storyboard(tmp_path / "film", BOARD)
    log = (tmp_path / "runs.log").open("wb")
    try:
        with simulator(tmp_path / "simulator", latency=LATENCY) as sim:
            running = [kill_at(story, sim, kill, log) for kill in kill_moments()]
            print(f"{sum(running)} of {KILLS} kills hit a running process; "
                  f"{sim.stats()['conflicts']} tasks resent were already there")
            final = run_to_end(story, sim.env(), RUNWARE)
            assert final.code == 0, final.stderr
            assert_each_identity_made_once(sim, final.summary, story.parent)
    finally:
        log.close()
    reference = uninterrupted.finished.summary
    assert picked(final.summary) == picked(reference)
    film = Path(final.summary["films"][0]["path"])
    assert sha256(film) == sha256(Path(reference["films"][0]["path"]))
    assert list(film.parent.glob(".*.part")) == []  # what killed stitches left is gone


def kill_at(story: Path, sim: Simulator, kill: Kill, log: IO[bytes]) -> bool:
    """Start a run and SIGKILL it at `kill`; whether it was still running then."""
    run = LiveRun(story, sim.env(), RUNWARE, log)
    try:
        run.wait(progress=kill.progress)
        time.sleep(kill.delay)
    finally:
        running = run.kill()
    return running


@pytest.mark.slow
def test_a_simulator_killed_and_restarted_mid_run_loses_nothing_and_makes_nothing_twice(
        tmp_path: Path, uninterrupted: Reference) -> None:
    """The server side of a crash: the run rides out three SIGKILLs of the simulator (each
    restarted on the same port and state folder) and every task and video exists once."""
    story = write_storyboard(tmp_path / "film", BOARD)
    state = tmp_path / "simulator"
    rng = random.Random(3)
    log = (tmp_path / "run.log").open("wb")
    try:
        with ExitStack() as servers:
            sim = servers.enter_context(simulator(state, latency=LATENCY))
            run = LiveRun(story, sim.env(), RUNWARE, log)
            try:
                run.wait()
                for _ in range(3):
                    time.sleep(rng.uniform(0.1, 0.3) * uninterrupted.duration)
                    sim.process.kill()
                    servers.close()
                    sim = servers.enter_context(simulator(state, latency=LATENCY, port=sim.port))
                code = run.process.wait(120)
            finally:
                run.kill()
    finally:
        log.close()
    assert code == 0, (tmp_path / "run.log").read_text()
    assert len(list((state / "tasks").glob("*.json"))) == len(BOARD.shots)
    assert len(list((state / "videos").glob("*.mp4"))) == BOARD.results
    assert len(journal_rows(story.parent)) == len(BOARD.shots)
    film = story.parent / "story.mp4"
    assert sha256(film) == sha256(Path(uninterrupted.finished.summary["films"][0]["path"]))


def test_a_film_a_killed_run_left_half_written_is_removed_by_the_next_run(
        tmp_path: Path) -> None:
    """A run killed while stitching leaves its temporary film next to the storyboard, where
    it would pile up (and be committed by a careless `git add`); the next run removes it,
    and nothing else."""
    story = write_storyboard(tmp_path, BoardShape((ShotShape("a", None),), film=("a",)))
    partial = tmp_path / ".story.mp4.0a1b2c3d.part"
    partial.write_bytes(b"half a film")
    other = tmp_path / ".story.mp4.notes.part"
    other.write_bytes(b"not ours")
    result = CliRunner().invoke(main, ["run", str(story), "--sim-latency", "0,0.05"])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "story.mp4").is_file()
    assert not partial.exists()
    assert other.read_bytes() == b"not ours"


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
