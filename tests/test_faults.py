"""Faults end to end: a 100-shot storyboard against a simulator that answers 10 % of requests
with 503, 5 % with 429, drops 3 % of connections after doing the work, and fails 3 % of
tasks. The run must complete, and no shot may be generated twice except the new tasks that
replace failed ones.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support_processes import Finished, run_to_end, simulator
from support_storyboards import BoardShape, chains_and_fans, write_storyboard

from pipeline.cli import main
from pipeline.media.probe import probe_video
from pipeline.run.execute import RunRequest, execute
from pipeline.run.films import FilmStatus
from pipeline.run.scheduler import Job, JobStatus
from pipeline.store import ObjectStore, read_tasks

pytestmark = pytest.mark.slow  # a hundred shots through a faulty server, end to end

SHOTS = chains_and_fans(100, seed=11, roots=4, sizes=((640, 360), (360, 360)))
# The film takes the 640x360 trees, so it is stitched by stream copy.
BOARD = BoardShape(SHOTS, film=tuple(s.id for s in SHOTS if s.size == (640, 360)))
FAULTS = {"503": 0.1, "429": 0.05, "drop": 0.03, "task": 0.03}


@dataclass(frozen=True)
class FaultyRun:
    finished: Finished
    stats: dict[str, Any]
    journal: list[tuple[str, str, int, str | None]]  # identity, state, attempt, error code


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory: pytest.TempPathFactory) -> FaultyRun:
    folder = tmp_path_factory.mktemp("faults")
    story = write_storyboard(folder / "film", BOARD)
    with simulator(folder / "simulator", latency=(0.2, 0.6), fail_rates=FAULTS,
                   seed=5) as sim:
        finished = run_to_end(story, sim.env(), ["--backend", "runware", "--yes"])
        stats = sim.stats()
    return FaultyRun(finished, stats, journal(story.parent))


def journal(folder: Path) -> list[tuple[str, str, int, str | None]]:
    tasks = read_tasks(ObjectStore(folder / ".storyreel").journal_path)
    return [(t.identity, str(t.state), t.attempt, t.error["code"] if t.error else None)
            for t in tasks]


def test_the_run_completes_and_makes_its_film(faulty_run: FaultyRun) -> None:
    finished = faulty_run.finished
    assert finished.code == 0, finished.stderr[-3000:]
    assert finished.summary["complete"] is True
    assert {s["status"] for s in finished.summary["shots"]} == {"done"}
    [film] = finished.summary["films"]
    assert film["method"] == "copy"
    assert probe_video(Path(film["path"])).frames == sum(
        probe_video(Path(s["path"])).frames for s in finished.summary["shots"]
        if s["id"] in BOARD.film)


def test_every_kind_of_request_fault_was_met(faulty_run: FaultyRun) -> None:
    """The run above is only evidence if the faults happened. (Whether a task fails is drawn
    from its random taskUUID: with 3 % of about 100 tasks, a run without one is possible.)"""
    faults = faulty_run.stats["faults"]
    print("faults met:", dict(faults), "resent tasks already there:",
          faulty_run.stats["conflicts"])
    assert {"503", "429", "drop"} <= {kind for kind, count in faults.items() if count > 0}


def test_no_shot_is_generated_twice_except_to_replace_a_failed_task(
        faulty_run: FaultyRun) -> None:
    stats, rows = faulty_run.stats, faulty_run.journal
    failed = [row for row in rows if row[1] == "failed"]
    assert len({row[0] for row in rows}) == len(SHOTS)
    # Each shot has one finished task, after one new task per failure of the one before.
    done = Counter(row[0] for row in rows if row[1] == "done")
    assert set(done.values()) == {1} and len(done) == len(SHOTS)
    for identity in done:
        attempts = [row[2] for row in rows if row[0] == identity]
        assert attempts == list(range(1, len(attempts) + 1))
    assert {row[3] for row in failed} <= {"timeoutProvider"}
    # The server's side of the same story: tasks accepted, videos rendered.
    assert stats["refused"] == 0
    assert stats["tasks_accepted"] == len(SHOTS) + len(failed)
    assert stats["faults"].get("task_error", 0) == len(failed)
    assert stats["generations"] == BOARD.results
    assert set(stats["generations_by_video"].values()) == {1}



def test_running_again_after_the_faults_sends_nothing_and_keeps_the_film(
        faulty_run: FaultyRun) -> None:
    """Also: the summary's repr stays short. `asyncio.run` formats its main task, result
    included, as it ends; a repr that walks 100 shots' plan took seconds."""
    film = Path(faulty_run.finished.summary["films"][0]["path"])
    before = film.read_bytes()
    story = film.parent / "story.yaml"
    summary = asyncio.run(execute(RunRequest(story, str(story)), Quiet()))
    assert summary.requests == {}
    assert {shot.status for shot in summary.shots} == {JobStatus.CACHED}
    assert [film.status for film in summary.films] == [FilmStatus.UNCHANGED]
    assert film.read_bytes() == before
    assert len(repr(summary)) < 200


class Quiet:
    def update(self, job: Job) -> None:
        pass

    def note(self, message: str) -> None:
        pass


EMBEDDED = BoardShape(chains_and_fans(16, seed=4, roots=3, takes_every=5),
                      film=tuple(f"s{i:03d}" for i in range(16)))


def test_the_embedded_simulator_takes_the_same_faults_and_the_run_completes(
        tmp_path: Path) -> None:
    """`run --sim-fault ...` on the embedded simulator, whose state folder sits in the cache:
    one task file per shot and per failed task, one video per take."""
    story = write_storyboard(tmp_path, EMBEDDED)
    faults = [f"--sim-fault={name}={rate}" for name, rate in (
        ("rate_503", 0.1), ("rate_429", 0.05), ("rate_drop", 0.03), ("rate_task_error", 0.03))]
    result = CliRunner().invoke(main, ["run", str(story), "--json", "--sim-latency", "0,0.2",
                                       *faults])
    assert result.exit_code == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["complete"] is True
    rows = journal(tmp_path)
    failed = [row for row in rows if row[1] == "failed"]
    state = ObjectStore(tmp_path / ".storyreel").simulator_dir
    assert len(list((state / "tasks").glob("*.json"))) == len(EMBEDDED.shots) + len(failed)
    assert len(list((state / "videos").glob("*.mp4"))) == EMBEDDED.results


@pytest.mark.parametrize("fault", ["rate_404=0.1", "latency=0.5", "rate_503=1.5"])
def test_a_fault_the_simulator_does_not_have_is_a_usage_error(tmp_path: Path,
                                                              fault: str) -> None:
    story = write_storyboard(tmp_path, EMBEDDED)
    result = CliRunner().invoke(main, ["run", str(story), "--sim-fault", fault])
    assert result.exit_code == 2
    assert "Invalid value for '--sim-fail-rate' / '--sim-fault'" in result.stderr
    assert f"'{fault}'" in result.stderr
    assert "Traceback" not in result.stderr
