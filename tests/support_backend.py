"""A stateful in-memory backend and the pieces to run the scheduler against it.

Input: a clip file (every task "renders" it), failures by prompt, a storyboard text.
Output: `FakeBackend` (tasks finish after some polls; it records what was sent, polled,
uploaded and downloaded), `Recorder` (the scheduler's events and notes), `FakeTime` (a clock
that moves only when the scheduler sleeps) and `run_story`, which runs a storyboard's plan
through the real scheduler with them.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import textwrap
import uuid as uuidlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

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
from pipeline.run.chain import Chain
from pipeline.run.scheduler import Job, RunOptions, Scheduler, ServiceGone
from pipeline.store import Journal, ObjectStore, Take


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


class FakeTime:
    """A clock that only moves when the scheduler sleeps: no test waits for real."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
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


@dataclass
class StoryRun:
    jobs: dict[str, Job]  # by the key of the shot that leads each job
    recorder: Recorder
    stopped: ServiceGone | None
    time: FakeTime


def run_scheduler(tmp_path: Path, backend: FakeBackend, text: str = STORY,
                  options: RunOptions = RunOptions(), journal: Journal | None = None,
                  used: Callable[[Mapping[str, Job]], Iterable[Take]] | None = None
                  ) -> StoryRun:
    """The storyboard `text`'s plan through the real scheduler, on fake time."""
    story = tmp_path / "story.yaml"
    story.write_text(textwrap.dedent(text))
    compiled = compile_storyboard(story)
    store = ObjectStore(tmp_path / ".storyreel")
    own = journal or Journal(store.journal_path)
    recorder, time = Recorder(), FakeTime()
    chain = Chain(store, backend, "fake", tmp_path)
    scheduler = Scheduler(compiled.plan, compiled.graph.remaining, backend, store, own,
                          chain, recorder, options=options, sleep=time.sleep, clock=time,
                          used=used or (lambda jobs: ()))
    try:
        jobs = asyncio.run(scheduler.run())
    finally:
        if journal is None:
            own.close()
    return StoryRun({job.label: job for job in jobs.values()}, recorder, scheduler.stopped,
                    time)


def run_story(tmp_path: Path, backend: FakeBackend, text: str = STORY,
              options: RunOptions = RunOptions(), journal: Journal | None = None
              ) -> tuple[dict[str, Job], Recorder]:
    done = run_scheduler(tmp_path, backend, text, options, journal)
    return done.jobs, done.recorder
