"""The scheduler against a stateful in-memory backend: what is sent, chained, retried, skipped."""

from __future__ import annotations

import asyncio
import hashlib
import io
import shutil
import textwrap
import uuid as uuidlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from pipeline.api import (
    Download,
    SubmitOutcome,
    SubmitStatus,
    TaskState,
    TaskStatus,
    VideoResult,
)
from pipeline.errors import ApiError
from pipeline.language.compile import compile_storyboard
from pipeline.media.frames import extract_frame
from pipeline.run.chain import Chain
from pipeline.run.scheduler import Job, JobStatus, RunOptions, Scheduler
from pipeline.store import Journal, ObjectStore, TaskPhase


def write_clip(path: Path, colour: tuple[int, int, int], frames: int = 12) -> None:
    """A small H.264 clip whose frames brighten over time, so first and last differ."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        stream.options = {"g": "12"}
        for i in range(frames):
            arr = np.zeros((180, 320, 3), np.uint8)
            arr[:] = colour
            arr[:, : 20 * (i + 1)] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


class FakeBackend:
    """Tasks finish after `polls` polls; chosen prompts fail with chosen codes."""

    def __init__(self, clip: Path, *, polls: int = 1, failures: Mapping[str, list[str]] = {}):
        self.clip, self.polls_needed = clip, polls
        self.failures = {k: list(v) for k, v in failures.items()}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.submitted: list[dict[str, Any]] = []
        self.poll_calls: list[list[str]] = []
        self.uploads: dict[str, bytes] = {}
        self.request_counts: dict[str, int] = {}

    async def submit(self, tasks: Sequence[Mapping[str, Any]]) -> list[SubmitOutcome]:
        out = []
        for task in tasks:
            uuid = str(task["taskUUID"])
            self.submitted.append(dict(task))
            if uuid in self.tasks:
                out.append(SubmitOutcome(uuid, SubmitStatus.CONFLICT))
                continue
            codes = self.failures.get(task["positivePrompt"], [])
            self.tasks[uuid] = {"task": dict(task), "left": self.polls_needed,
                                "error": codes.pop(0) if codes else None}
            out.append(SubmitOutcome(uuid, SubmitStatus.ACCEPTED))
        return out

    async def poll(self, task_uuids: Sequence[str]) -> dict[str, TaskState]:
        self.poll_calls.append(list(task_uuids))
        return {uuid: self._state(uuid) for uuid in task_uuids}

    def _state(self, uuid: str) -> TaskState:
        entry = self.tasks.get(uuid)
        if entry is None:
            return TaskState(uuid, TaskStatus.UNKNOWN)
        entry["left"] -= 1
        if entry["left"] > 0:
            return TaskState(uuid, TaskStatus.PROCESSING)
        if entry["error"]:
            error = ApiError("provider said no", code=entry["error"], task_uuid=uuid)
            return TaskState(uuid, TaskStatus.ERROR, error=error)
        n = int(entry["task"].get("numberResults", 1))
        results = tuple(VideoResult(f"{uuid[:8]}-v{i}", f"http://fake/{uuid}/{i}.mp4",
                                    int(entry["task"]["seed"]) + i, 0.15) for i in range(n))
        return TaskState(uuid, TaskStatus.SUCCESS, results, expected=n)

    async def upload_image(self, data: bytes, mime: str = "image/png") -> str:
        uuid = str(uuidlib.uuid4())
        self.uploads[uuid] = data
        return uuid

    async def download(self, url: str, dest: Path, *, max_bytes: int, timeout: float) -> Download:
        shutil.copyfile(self.clip, dest)
        data = dest.read_bytes()
        return Download(dest, len(data), hashlib.sha256(data).hexdigest())

    async def aclose(self) -> None:
        return None


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.notes: list[str] = []

    def update(self, job: Job) -> None:
        self.events.append((job.label, str(job.status)))

    def note(self, message: str) -> None:
        self.notes.append(message)


async def no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


STORY = """\
version: 1
model: pixverse:1@3
defaults: {width: 640, height: 360, duration: 5}
shots:
  extra:
    positivePrompt: an unrelated shot
    seed: 5
  a:
    positivePrompt: shot a
    seed: 1
  b:
    from: a
    positivePrompt: shot b
  c:
    from: b
    positivePrompt: shot c
"""


def run_story(tmp_path: Path, backend: FakeBackend, text: str = STORY,
              options: RunOptions = RunOptions(), journal: Journal | None = None
              ) -> tuple[dict[str, Job], Recorder]:
    story = tmp_path / "story.yaml"
    story.write_text(textwrap.dedent(text))
    compiled = compile_storyboard(story)
    store = ObjectStore(tmp_path / ".storyreel")
    journal = journal or Journal(store.journal_path)
    recorder = Recorder()
    chain = Chain(store, backend, "fake", tmp_path)
    scheduler = Scheduler(compiled.plan, compiled.graph.remaining, backend, store, journal,
                          chain, recorder, options=options, sleep=no_wait)
    jobs = asyncio.run(scheduler.run())
    by_key = {job.label: job for job in jobs.values()}
    return by_key, recorder


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


class WatchingBackend(FakeBackend):
    """Records what was in flight when the first download started and when an image was
    uploaded; `extra` stays in flight until an upload happens (or many polls pass)."""

    def __init__(self, clip: Path) -> None:
        super().__init__(clip)
        self.submitted_during_download: int | None = None
        self.in_flight_at_upload: list[str] | None = None

    async def download(self, url: str, dest: Path, *, max_bytes: int, timeout: float) -> Download:
        if self.submitted_during_download is None:
            for _ in range(500):  # give another task the chance to be submitted meanwhile
                if len(self.submitted) > 1:
                    break
                await asyncio.sleep(0)
            self.submitted_during_download = len(self.submitted)
        return await super().download(url, dest, max_bytes=max_bytes, timeout=timeout)

    async def upload_image(self, data: bytes, mime: str = "image/png") -> str:
        if self.in_flight_at_upload is None:
            self.in_flight_at_upload = [e["task"]["positivePrompt"] for e in self.tasks.values()
                                        if e["left"] > 0]
        return await super().upload_image(data, mime)

    def _state(self, uuid: str) -> TaskState:
        entry = self.tasks[uuid]
        if entry["task"]["positivePrompt"] == "an unrelated shot" and not self.uploads:
            entry["left"] = max(entry["left"], 2) if len(self.poll_calls) < 5000 else 1
        return super()._state(uuid)


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


def test_an_outage_longer_than_the_rounds_fails_the_job_with_the_reason(tmp_path: Path,
                                                                        clip: Path) -> None:
    backend = FlakyBackend(clip, outage=10)
    text = "version: 1\nmodel: pixverse:1@3\nshots:\n  s: {positivePrompt: one shot, seed: 1}\n"
    jobs, _ = run_story(tmp_path, backend, text, options=RunOptions(transient_rounds=2))
    assert jobs["s"].status is JobStatus.FAILED
    assert "serviceUnavailable" in (jobs["s"].error or "")
