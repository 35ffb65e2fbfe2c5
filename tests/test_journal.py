"""The task journal: state transitions, reopening, and surviving a killed writer."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.errors import StoryreelError
from pipeline.store import Journal, JournalError, TaskPhase

REPO = Path(__file__).resolve().parent.parent
REQUEST = {"taskType": "videoInference", "taskUUID": "t", "positivePrompt": "a lighthouse"}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / ".storyreel" / "journal.sqlite"


@pytest.fixture
def journal(path: Path) -> Iterator[Journal]:
    with Journal(path) as opened:
        yield opened


def test_task_goes_from_prepared_to_done(journal: Journal) -> None:
    journal.prepare("t1", "id-a", "trail", REQUEST, attempt=1)
    prepared = journal.get("t1")
    assert prepared is not None and prepared.state is TaskPhase.PREPARED
    assert prepared.request == REQUEST and prepared.shot_key == "trail" and prepared.is_open
    journal.mark_submitted("t1")
    journal.mark_done("t1", [{"videoUUID": "v1", "cost": 0.3}])
    done = journal.get("t1")
    assert done is not None and done.state is TaskPhase.DONE and not done.is_open
    assert done.results == ({"videoUUID": "v1", "cost": 0.3},)
    assert journal.open_tasks() == []


def test_failed_and_abandoned_tasks_keep_their_reason(journal: Journal) -> None:
    journal.prepare("t1", "id-a", "trail", REQUEST)
    journal.prepare("t2", "id-a", "trail", REQUEST, attempt=2)
    journal.mark_submitted("t1")
    journal.mark_failed("t1", {"code": "invalidPrompt", "message": "no"})
    journal.abandon("t2")
    failed, abandoned = journal.tasks_for("id-a")
    assert failed.state is TaskPhase.FAILED
    assert failed.error == {"code": "invalidPrompt", "message": "no"}
    assert abandoned.state is TaskPhase.ABANDONED and abandoned.attempt == 2


def test_resubmitting_the_same_task_is_allowed(journal: Journal) -> None:
    journal.prepare("t1", "id-a", "trail", REQUEST)
    journal.mark_submitted("t1")
    journal.mark_submitted("t1")
    assert [t.state for t in journal.open_tasks()] == [TaskPhase.SUBMITTED]


def test_a_finished_task_does_not_move(journal: Journal) -> None:
    journal.prepare("t1", "id-a", "trail", REQUEST)
    journal.mark_done("t1", [])
    with pytest.raises(ValueError, match="already done"):
        journal.mark_failed("t1", {"code": "late"})
    with pytest.raises(ValueError, match="not in the journal"):
        journal.mark_submitted("nope")
    with pytest.raises(ValueError, match="already in the journal"):
        journal.prepare("t1", "id-a", "trail", REQUEST)


def test_open_tasks_survive_reopening(path: Path) -> None:
    with Journal(path) as journal:
        for uuid in ("t1", "t2", "t3"):
            journal.prepare(uuid, f"id-{uuid}", "trail", REQUEST)
        journal.mark_submitted("t2")
        journal.mark_done("t3", [{"videoUUID": "v"}])
    with Journal(path) as journal:
        assert [(t.task_uuid, t.state) for t in journal.open_tasks()] == [
            ("t1", TaskPhase.PREPARED),
            ("t2", TaskPhase.SUBMITTED),
        ]


def test_tasks_for_lists_attempts_in_order(journal: Journal) -> None:
    for attempt, uuid in enumerate(("z", "a", "m"), start=1):
        journal.prepare(uuid, "id-a", "trail", REQUEST, attempt=attempt)
    journal.prepare("other", "id-b", "sea", REQUEST)
    assert [t.attempt for t in journal.tasks_for("id-a")] == [1, 2, 3]
    assert journal.tasks_for("id-c") == []


def test_times_come_from_the_clock(path: Path) -> None:
    ticks = iter(datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=n) for n in range(10))
    with Journal(path, clock=lambda: next(ticks)) as journal:
        journal.prepare("t1", "id-a", "trail", REQUEST)
        journal.mark_submitted("t1")
        task = journal.get("t1")
    assert task is not None and task.updated - task.created == timedelta(minutes=1)


def test_api_key_never_reaches_the_journal(journal: Journal) -> None:
    auth = [{"taskType": "authentication", "apiKey": "secret"}]
    with pytest.raises(ValueError, match="API key"):
        journal.prepare("t1", "id-a", "trail", {"taskType": "videoInference", "extra": auth})
    assert journal.get("t1") is None


def test_journal_is_in_wal_mode(journal: Journal, path: Path) -> None:
    journal.prepare("t1", "id-a", "trail", REQUEST)
    assert journal.mode == "wal"


def test_corrupt_journal_names_the_file(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database, just some bytes " * 200)
    with pytest.raises(StoryreelError, match=r"journal\.sqlite: cannot use the task journal"):
        Journal(path)


def test_journal_from_a_newer_storyreel_is_refused(path: Path) -> None:
    path.parent.mkdir(parents=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(JournalError, match="version 99"):
        Journal(path)


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pipeline.store import Journal
    journal = Journal(Path(sys.argv[1]))
    prefix = sys.argv[2]
    n = 0
    while True:
        task = f"{prefix}-{n}"
        request = {"taskType": "videoInference", "taskUUID": task, "prompt": "x" * 300}
        journal.prepare(task, f"id-{n % 7}", f"shot-{n}", request, attempt=1)
        print("prepared", task, flush=True)
        journal.mark_submitted(task)
        print("submitted", task, flush=True)
        if n % 4 == 0:
            journal.mark_failed(task, {"code": "timeout"})
            print("failed", task, flush=True)
        else:
            journal.mark_done(task, [{"videoUUID": f"v-{n}", "cost": 0.1}])
            print("done", task, flush=True)
        n += 1
    """
)

RANK = {"prepared": 0, "submitted": 1, "done": 2, "failed": 2}


def run_and_kill(path: Path, prefix: str, rng: random.Random) -> dict[str, str]:
    """Start a writer, SIGKILL it mid-stream; return the last state it reported per task."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), prefix],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert writer.stdout is not None
        lines = [writer.stdout.readline() for _ in range(rng.randint(3, 40))]
        time.sleep(rng.random() * 0.01)
        writer.send_signal(signal.SIGKILL)
        # Each line was printed after its commit, so every task reported must be in the
        # journal.
        lines += writer.stdout.read().splitlines()
    finally:
        writer.kill()
        writer.wait(timeout=10)
        if writer.stdout is not None:
            writer.stdout.close()
    reported = {}
    for line in lines:
        state, task = line.split()
        reported[task] = state
    return reported


def test_killed_writer_leaves_every_committed_task(path: Path) -> None:
    rng = random.Random(5)
    seen: dict[str, str] = {}
    for round_ in range(4):
        seen |= run_and_kill(path, f"r{round_}", rng)
        with Journal(path) as journal:
            for task_uuid, state in seen.items():
                task = journal.get(task_uuid)
                assert task is not None, task_uuid
                assert RANK[task.state] >= RANK[state], (task_uuid, task.state, state)
            assert all(task.is_open for task in journal.open_tasks())
    with Journal(path) as journal:
        assert journal.problems() == []
