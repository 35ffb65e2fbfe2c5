"""The scheduler against a stateful in-memory backend: what is sent, chained, retried, skipped."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from support_backend import (
    STORY,
    FakeBackend,
    run_scheduler,
    run_story,
    write_clip,
)

from pipeline.api import Download, SubmitOutcome, TaskState
from pipeline.errors import ApiError
from pipeline.language.compile import compile_storyboard
from pipeline.media.frames import extract_frame
from pipeline.run.scheduler import JobStatus, RunOptions, ServiceGone
from pipeline.store import Journal, TaskPhase


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    write_clip(path, (30, 60, 90))
    return path


def sent(backend: FakeBackend, prompt: str) -> list[dict[str, Any]]:
    return [t for t in backend.submitted if t["positivePrompt"] == prompt]


def test_child_is_sent_the_uploaded_last_frame_of_its_parent(tmp_path: Path, clip: Path) -> None:
    backend = FakeBackend(clip)
    jobs, _ = run_story(tmp_path, backend)
    assert all(j.status is JobStatus.DONE for j in jobs.values())
    (task,) = sent(backend, "shot b")
    image = task["inputs"]["frameImages"][0]
    assert image["frame"] == "first"
    uploaded = Image.open(io.BytesIO(backend.uploads[image["image"]])).convert("RGB")
    expected = extract_frame(clip, "last")
    assert np.array_equal(np.asarray(uploaded), np.asarray(expected))
    assert not np.array_equal(np.asarray(uploaded), np.asarray(extract_frame(clip, "first")))


def test_the_same_frame_is_uploaded_once(tmp_path: Path, clip: Path) -> None:
    backend = FakeBackend(clip)
    run_story(tmp_path, backend)
    # b and c chain from clips with the same content: one frame, one upload
    assert len(backend.uploads) == 1


def test_one_poll_request_covers_every_task_in_flight(tmp_path: Path, clip: Path) -> None:
    text = "version: 1\nmodel: pixverse:1@3\nshots:\n" + "".join(
        f"  s{i}: {{positivePrompt: independent shot {i}, seed: {i}}}\n" for i in range(5))
    backend = FakeBackend(clip, polls=3)
    run_story(tmp_path, backend, text)
    assert len(backend.poll_calls[0]) == 5
    assert len(backend.poll_calls) == 3


def test_the_critical_path_starts_first(tmp_path: Path, clip: Path) -> None:
    backend = FakeBackend(clip)
    run_story(tmp_path, backend, options=RunOptions(concurrency=1))
    order = [t["positivePrompt"] for t in backend.submitted]
    assert order[0] == "shot a"
    assert order.index("an unrelated shot") > 0


def test_a_refused_shot_skips_its_descendants_and_the_rest_finish(tmp_path: Path,
                                                                   clip: Path) -> None:
    backend = FakeBackend(clip, failures={"shot b": ["contentPolicyViolation"]})
    jobs, _ = run_story(tmp_path, backend)
    assert jobs["b"].status is JobStatus.FAILED
    assert "contentPolicyViolation" in (jobs["b"].error or "")
    assert "provider said no" in (jobs["b"].error or "")
    assert jobs["c"].status is JobStatus.SKIPPED and jobs["c"].error == "b failed"
    assert jobs["extra"].status is JobStatus.DONE and jobs["a"].status is JobStatus.DONE
    assert len(sent(backend, "shot b")) == 1  # a content refusal is never retried
    assert sent(backend, "shot c") == []


def test_a_transient_task_failure_is_retried_as_a_new_task(tmp_path: Path, clip: Path) -> None:
    backend = FakeBackend(clip, failures={"shot a": ["timeoutProvider"]})
    jobs, recorder = run_story(tmp_path, backend)
    first, second = sent(backend, "shot a")
    assert first["taskUUID"] != second["taskUUID"]
    assert jobs["a"].status is JobStatus.DONE and jobs["c"].status is JobStatus.DONE
    journal = Journal(tmp_path / ".storyreel" / "journal.sqlite")
    phases = [t.state for t in journal.tasks_for(jobs["a"].identity)]
    journal.close()
    assert phases == [TaskPhase.FAILED, TaskPhase.DONE]


def test_transient_failures_stop_after_the_attempt_limit(tmp_path: Path, clip: Path) -> None:
    backend = FakeBackend(clip, failures={"shot a": ["timeoutProvider"] * 5})
    jobs, _ = run_story(tmp_path, backend, options=RunOptions(task_attempts=3))
    assert len(sent(backend, "shot a")) == 3
    assert jobs["a"].status is JobStatus.FAILED
    assert jobs["b"].status is JobStatus.SKIPPED


def test_an_open_task_in_the_journal_is_polled_not_paid_again(tmp_path: Path,
                                                               clip: Path) -> None:
    backend = FakeBackend(clip)
    story = tmp_path / "story.yaml"
    story.write_text(STORY)
    plan = compile_storyboard(story).plan
    a = next(s for s in plan.shots if s.id == "a")
    journal = Journal(tmp_path / ".storyreel" / "journal.sqlite")
    task = {"taskUUID": "6f1c3c36-1111-4a4a-8b8b-123456789abc", **a.request}
    journal.prepare(task["taskUUID"], a.identity, a.key, task)
    asyncio.run(backend.submit([task]))  # it reached the server, then the process died
    journal.mark_submitted(task["taskUUID"])
    backend.submitted.clear()
    jobs, recorder = run_story(tmp_path, backend, journal=journal)
    journal.close()
    assert sent(backend, "shot a") == []
    assert jobs["a"].record is not None and jobs["a"].record.task_uuid == task["taskUUID"]
    assert any("resuming task" in n for n in recorder.notes)


def test_a_prepared_task_is_resent_with_the_same_uuid(tmp_path: Path, clip: Path) -> None:
    backend = FakeBackend(clip)
    story = tmp_path / "story.yaml"
    story.write_text(STORY)
    a = next(s for s in compile_storyboard(story).plan.shots if s.id == "a")
    journal = Journal(tmp_path / ".storyreel" / "journal.sqlite")
    uuid = "6f1c3c36-2222-4a4a-8b8b-123456789abc"
    journal.prepare(uuid, a.identity, a.key, {"taskUUID": uuid, **a.request})
    jobs, _ = run_story(tmp_path, backend, journal=journal)
    journal.close()
    assert [t["taskUUID"] for t in sent(backend, "shot a")] == [uuid]
    assert jobs["a"].status is JobStatus.DONE


def test_max_cost_stops_submitting_before_passing_it(tmp_path: Path, clip: Path) -> None:
    backend = FakeBackend(clip)
    jobs, _ = run_story(tmp_path, backend, options=RunOptions(concurrency=1, max_cost=0.31))
    done = [j for j in jobs.values() if j.status is JobStatus.DONE]
    assert len(done) == 2 and len(backend.submitted) == 2
    skipped = [j for j in jobs.values() if j.status is JobStatus.SKIPPED]
    assert any("--max-cost" in (j.error or "") for j in skipped)


def test_cached_shots_make_no_requests(tmp_path: Path, clip: Path) -> None:
    run_story(tmp_path, FakeBackend(clip))
    again = FakeBackend(clip)
    jobs, _ = run_story(tmp_path, again)
    assert all(j.status is JobStatus.CACHED for j in jobs.values())
    assert again.submitted == [] and again.poll_calls == [] and again.uploads == {}


class CountingBackend(FakeBackend):
    def __init__(self, clip: Path) -> None:
        super().__init__(clip)
        self.submit_calls: list[int] = []

    async def submit(self, tasks: Sequence[Mapping[str, Any]]) -> list[SubmitOutcome]:
        self.submit_calls.append(len(tasks))
        return await super().submit(tasks)


def test_tasks_ready_together_are_submitted_in_one_request(tmp_path: Path, clip: Path) -> None:
    text = "version: 1\nmodel: pixverse:1@3\nshots:\n" + "".join(
        f"  s{i}: {{positivePrompt: independent shot {i}, seed: {i}}}\n" for i in range(6))
    backend = CountingBackend(clip)
    run_story(tmp_path, backend, text, options=RunOptions(concurrency=4))
    assert backend.submit_calls[0] == 4
    assert sum(backend.submit_calls) == 6


GUARD = 60.0  # seconds: reached only when the scheduler is wrong, so the test fails, not hangs


async def guarded(waiting: Awaitable[object]) -> None:
    try:
        await asyncio.wait_for(waiting, GUARD)
    except TimeoutError:
        pass


class WatchingBackend(FakeBackend):
    """Records what was in flight when the first download started and when an image was
    uploaded. It waits on events, not on turns of the loop: the first download waits until
    a second task has been submitted, and `extra` is not answered until an image has been
    uploaded (or the guard runs out: only a wrong scheduler keeps them from happening)."""

    def __init__(self, clip: Path) -> None:
        super().__init__(clip)
        self.submitted_during_download: int | None = None
        self.in_flight_at_upload: list[str] | None = None
        self.second_submission = asyncio.Event()
        self.uploaded = asyncio.Event()

    async def submit(self, tasks: Sequence[Mapping[str, Any]]) -> list[SubmitOutcome]:
        outcomes = await super().submit(tasks)
        if len(self.submitted) > 1:
            self.second_submission.set()
        return outcomes

    async def download(self, url: str, dest: Path, *, max_bytes: int, timeout: float) -> Download:
        if self.submitted_during_download is None:
            await guarded(self.second_submission.wait())
            self.submitted_during_download = len(self.submitted)
        return await super().download(url, dest, max_bytes=max_bytes, timeout=timeout)

    async def upload_image(self, data: bytes, mime: str = "image/png") -> str:
        if self.in_flight_at_upload is None:
            self.in_flight_at_upload = [e["task"]["positivePrompt"] for e in self.tasks.values()
                                        if e["left"] > 0]
        self.uploaded.set()
        return await super().upload_image(data, mime)

    async def poll(self, task_uuids: Sequence[str]) -> dict[str, TaskState]:
        prompts = {self.tasks[u]["task"]["positivePrompt"] for u in task_uuids if u in self.tasks}
        if "an unrelated shot" in prompts:
            await guarded(self.uploaded.wait())
        return await super().poll(task_uuids)


def test_a_slot_is_free_while_a_finished_task_downloads(tmp_path: Path, clip: Path) -> None:
    backend = WatchingBackend(clip)
    jobs, _ = run_story(tmp_path, backend, options=RunOptions(concurrency=1))
    assert all(j.status is JobStatus.DONE for j in jobs.values())
    assert backend.submitted_during_download == 2


def test_frames_are_uploaded_before_a_slot_is_taken(tmp_path: Path, clip: Path) -> None:
    """With one slot held by an unrelated task, the next shot's frame is already extracted
    and uploaded, so it is sent the moment the slot is free."""
    backend = WatchingBackend(clip)
    jobs, _ = run_story(tmp_path, backend, options=RunOptions(concurrency=1))
    assert all(j.status is JobStatus.DONE for j in jobs.values())
    assert backend.in_flight_at_upload == ["an unrelated shot"]


class FlakyBackend(FakeBackend):
    """Every submit request fails transiently `outage` times before the service recovers."""

    def __init__(self, clip: Path, outage: int) -> None:
        super().__init__(clip)
        self.outage = outage

    async def submit(self, tasks: Sequence[Mapping[str, Any]]) -> list[SubmitOutcome]:
        if self.outage > 0:
            self.outage -= 1
            raise ApiError("service unavailable", code="serviceUnavailable", status=503,
                           transient=True)
        return await super().submit(tasks)


def test_a_job_waits_out_a_transient_outage_and_resends_the_same_task(tmp_path: Path,
                                                                      clip: Path) -> None:
    backend = FlakyBackend(clip, outage=2)
    text = "version: 1\nmodel: pixverse:1@3\nshots:\n  s: {positivePrompt: one shot, seed: 1}\n"
    jobs, recorder = run_story(tmp_path, backend, text)
    assert jobs["s"].status is JobStatus.DONE
    assert len(backend.submitted) == 1 and jobs["s"].record is not None
    assert jobs["s"].record.task_uuid == backend.submitted[0]["taskUUID"]
    assert sum("trying again" in note for note in recorder.notes) == 2


ONE_SHOT = "version: 1\nmodel: pixverse:1@3\nshots:\n  s: {positivePrompt: one shot, seed: 1}\n"


def test_a_service_gone_past_the_patience_stops_the_run_and_keeps_the_task_open(
        tmp_path: Path, clip: Path) -> None:
    """Today's scheduler would try forever; now the run stops once every request has failed
    for longer than the outage budget, and the task waits in the journal, unpaid."""
    backend = FlakyBackend(clip, outage=10**9)
    done = run_scheduler(tmp_path, backend, options=RunOptions(patience=120))
    assert isinstance(done.stopped, ServiceGone)
    assert "120 s" in done.stopped.message and "serviceUnavailable" in done.stopped.message
    assert "without paying twice" in (done.stopped.hint or "")
    assert {job.status for job in done.jobs.values()} == {JobStatus.STOPPED}
    assert 120 < done.time.now < 120 + 60  # it stopped soon after the budget ran out
    with Journal(tmp_path / ".storyreel" / "journal.sqlite") as journal:
        assert {t.state for t in journal.all_tasks()} == {TaskPhase.PREPARED}
    assert backend.submitted == []


class DownloadsFail(FakeBackend):
    """The videos of one prompt never download (a transient error), while the service
    answers everything else; `extra` takes 500 polls, so there is always something to ask."""

    async def submit(self, tasks: Sequence[Mapping[str, Any]]) -> list[SubmitOutcome]:
        outcomes = await super().submit(tasks)
        for entry in self.tasks.values():
            if entry["task"]["positivePrompt"] == "an unrelated shot" and entry["left"] == 1:
                entry["left"] = 500
        return outcomes

    async def download(self, url: str, dest: Path, *, max_bytes: int, timeout: float) -> Download:
        task = self.tasks[url.split("/")[3]]["task"]
        if task["positivePrompt"] == "shot a":
            raise ApiError("download timed out", code="downloadTimeout", transient=True)
        return await super().download(url, dest, max_bytes=max_bytes, timeout=timeout)


def test_a_request_that_keeps_failing_while_the_service_answers_fails_its_job(
        tmp_path: Path, clip: Path) -> None:
    """The service answers polls all along: a's download failing past the patience is that
    job's failure, not an outage."""
    backend = DownloadsFail(clip)
    done = run_scheduler(tmp_path, backend, options=RunOptions(patience=60))
    assert done.stopped is None
    assert done.jobs["a"].status is JobStatus.FAILED
    assert "downloadTimeout" in (done.jobs["a"].error or "")
    assert done.jobs["b"].status is JobStatus.SKIPPED
    assert done.jobs["extra"].status is JobStatus.DONE


class PollsFail(FakeBackend):
    """Accepts tasks, then is gone: every poll fails as a dead server's would."""

    async def poll(self, task_uuids: Sequence[str]) -> dict[str, TaskState]:
        self.poll_calls.append(list(task_uuids))
        raise ApiError("connection refused", code="connectionError", transient=True)


def test_a_server_gone_after_accepting_tasks_stops_the_run_once_the_patience_is_spent(
        tmp_path: Path, clip: Path) -> None:
    """The server killed after accepting tasks: polls fail forever. The run stops after the
    outage budget, with the accepted tasks open in the journal for the next run to poll."""
    backend = PollsFail(clip)
    done = run_scheduler(tmp_path, backend, ONE_SHOT, options=RunOptions(patience=90))
    assert isinstance(done.stopped, ServiceGone)
    assert done.jobs["s"].status is JobStatus.STOPPED
    assert 90 < done.time.now < 90 + 60
    with Journal(tmp_path / ".storyreel" / "journal.sqlite") as journal:
        assert [t.state for t in journal.all_tasks()] == [TaskPhase.SUBMITTED]
    assert len(backend.submitted) == 1
