"""A service that dies after accepting tasks: the run stops once its --patience is spent (it
used to poll forever), says how to go on, and the same command resumes the open tasks
without paying twice."""

from __future__ import annotations

import json
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from support_processes import STORYREEL, run_to_end, simulator, stop
from support_storyboards import BoardShape, ShotShape, write_storyboard

from pipeline.store import ObjectStore, TaskPhase, read_tasks

BOARD = BoardShape((ShotShape("a", None), ShotShape("b", "a"), ShotShape("c", None)),
                   film=("a", "b", "c"))
LATENCY = (4.0, 5.0)


def wait_for_submitted(journal: Path, process: subprocess.Popen[bytes],
                       limit: float = 60.0) -> None:
    """Until the run's journal says a task reached the service (or the run ended)."""
    deadline = time.monotonic() + limit
    while not read_tasks(journal, TaskPhase.SUBMITTED):
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("the run never submitted a task")
        time.sleep(0.05)


@pytest.mark.slow
def test_a_run_whose_service_dies_stops_after_its_patience_and_resumes_without_paying_twice(
        tmp_path: Path) -> None:
    story = write_storyboard(tmp_path / "film", BOARD)
    journal = ObjectStore(story.parent / ".storyreel").journal_path
    state = tmp_path / "simulator"
    with ExitStack() as servers:
        sim = servers.enter_context(simulator(state, latency=LATENCY))
        run = subprocess.Popen([*STORYREEL, "run", str(story), "--json", "--backend", "runware",
                                "--yes", "--patience", "2"], cwd=story.parent, env=sim.env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for_submitted(journal, run)
            sim.process.kill()
            servers.close()
            out, err = (part.decode() for part in run.communicate(timeout=180))
        finally:
            stop(run)
        assert run.returncode == 1, err
        assert "the run stopped: the service has failed every request" in err
        assert "run the same command again to resume what was sent without paying twice" in err
        assert "Traceback" not in err
        summary = json.loads(out)
        left_open = [t for t in read_tasks(journal) if t.is_open]
        assert left_open and summary["stopped"]["open_tasks"] == len(left_open)
        assert summary["complete"] is False

        sim = servers.enter_context(simulator(state, latency=LATENCY, port=sim.port))
        final = run_to_end(story, sim.env(), ["--backend", "runware", "--yes"])
    assert final.code == 0, final.stderr
    for task in left_open:
        assert f"{task.shot_key}: resuming task {task.task_uuid}" in final.stderr
    assert len(list((state / "tasks").glob("*.json"))) == len(BOARD.shots)
    assert {t.state for t in read_tasks(journal)} == {TaskPhase.DONE}
