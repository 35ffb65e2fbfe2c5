"""videoInference in the simulator: tasks in; acceptances, poll answers and video files out.

A task is checked by the model catalog (the planner's own checks), its frame images are
stored (or stand-ins made for URLs it may not fetch) and checked against the model's image
limits, and every result is planned at once (`state.plan_task`). A poll answers from the
plan and the clock; a result's video is rendered at the first fetch of its URL, exactly
once, at the model's frame rate and size, with a sound track when the request asked for one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from ..language.capabilities import frame_position
from ..language.catalog import Catalog, ModelSpec
from ..media.formats import EXTENSIONS, FORMATS
from .asgi import Send, send_file, send_json
from .checks import TaskError, check_request, problem, refuse, require_task_uuid
from .images import ImageLimits, ImageProblem
from .render import RenderSpec, render_clip
from .state import (
    PLACEHOLDER_PREFIX,
    Dice,
    ResultPlan,
    SimulatorState,
    Stats,
    TaskRecord,
    derived_uuid,
    hash_text,
    plan_task,
)


@dataclass
class VideoTasks:
    """Accepts, answers polls for and renders videoInference tasks."""

    state: SimulatorState
    stats: Stats
    catalog: Catalog
    dice: Dice
    clock: Callable[[], float]
    public_url: str
    url_ttl: float | None = None
    drift: float = 0.0  # each clip's colour drift and smeared end (`drift`)

    def __post_init__(self) -> None:
        self._render_locks: dict[str, asyncio.Lock] = {}
        self._arriving: set[str] = set()
        self.own_prefix = f"{self.public_url}/_simulator/images/"

    async def submit(self, task: dict[str, Any]) -> list[dict[str, Any]]:
        task_uuid = require_task_uuid(task)
        if task_uuid in self.state.tasks or task_uuid in self._arriving:
            self.stats.conflicts += 1
            raise refuse(400, "conflictTaskUUID", f"a task with taskUUID {task_uuid} already "
                         "exists: poll it with getResponse", task, parameter="taskUUID")
        self._arriving.add(task_uuid)  # a retry racing the original is a conflict too
        try:
            record = await self._accept(task_uuid, task)
        except TaskError:
            self.stats.refused += 1
            raise
        finally:
            self._arriving.discard(task_uuid)
        self.state.add_task(record)
        self.stats.tasks_accepted += 1
        if record.fails:
            self.stats.faults["task_error"] += 1
        return [{"taskType": "videoInference", "taskUUID": task_uuid}]

    async def _accept(self, task_uuid: str, task: dict[str, Any]) -> TaskRecord:
        spec = self._model(task)
        check_request(spec, task)
        frames, request = await self._frames(task, ImageLimits.of(spec.schema["x-storyreel"]))
        first = frames.get("first") or frames.get("last")
        return plan_task(
            task_uuid, request, frames, spec, submitted=self.clock(),
            image_size=self.state.image_size(first) if first else None, dice=self.dice)

    def _model(self, task: Mapping[str, Any]) -> ModelSpec:
        model = task.get("model")
        if not isinstance(model, str) or not model:
            raise refuse(400, "missingModel", "model is required", task, parameter="model")
        spec = self.catalog.find(model)
        if spec is None:
            raise refuse(400, "unknownModel", f"unknown model {model!r}: the simulator knows "
                         f"{', '.join(self.catalog.ids)}", task, parameter="model")
        return spec

    async def _frames(self, task: dict[str, Any], limits: ImageLimits
                      ) -> tuple[dict[str, str], dict[str, Any]]:
        """Each frame image as a stored image (or a placeholder), and the request to keep,
        with inline image data replaced by the imageUUID it was stored under."""
        items = (task.get("inputs") or {}).get("frameImages") or []
        frames: dict[str, str] = {}
        kept: list[Any] = []
        for index, item in enumerate(items):
            value = item if isinstance(item, str) else str(item["image"])
            position = frame_position(item, index, len(items))
            frames[position] = await self._frame_ref(value, task, limits)
            kept.append(frames[position] if isinstance(item, str)
                        else {**item, "image": frames[position]})
        request = dict(task)
        if kept:
            request["inputs"] = {**task["inputs"], "frameImages": kept}
        return frames, request

    async def _frame_ref(self, value: str, task: Mapping[str, Any], limits: ImageLimits) -> str:
        try:
            found = await self.state.image_input(value, self.own_prefix)
            if isinstance(found, Image.Image):
                limits.check(found.size)
                ref = derived_uuid("inline", hash_text(value))
                await asyncio.to_thread(self.state.put_image, ref, found)
                return ref
            if not found.startswith(PLACEHOLDER_PREFIX):
                limits.check(self.state.image_size(found))
            return found
        except ImageProblem as exc:
            raise refuse(400, "invalidFrameImages", f"frame image: {exc}", task,
                         parameter="inputs.frameImages") from None

    # -- getResponse -----------------------------------------------------------------------

    def poll(self, task: Mapping[str, Any]) -> list[dict[str, Any]]:
        task_uuid = task.get("taskUUID")
        if not isinstance(task_uuid, str) or not task_uuid:
            raise refuse(400, "missingTaskUUID", "getResponse needs the taskUUID to poll", task,
                         parameter="taskUUID")
        record = self.state.tasks.get(task_uuid)
        return [] if record is None else self._task_items(record, self.clock())

    def _task_items(self, record: TaskRecord, now: float) -> list[dict[str, Any]]:
        head = {"taskType": "videoInference", "taskUUID": record.task_uuid}
        if record.fails and now >= record.ready_at:
            raise TaskError(200, [problem(
                "timeoutProvider", "the provider did not deliver in time (simulated)", head,
                status="error")])
        done = [] if record.fails else [r for r in record.results if now >= r.ready_at]
        items = [self._success_item(record, r) for r in done]
        if len(done) < len(record.results):
            items.append({**head, "status": "processing"})
        return items

    def _success_item(self, record: TaskRecord, result: ResultPlan) -> dict[str, Any]:
        ext = EXTENSIONS[record.output_format]
        item: dict[str, Any] = {
            "taskType": "videoInference", "taskUUID": record.task_uuid, "status": "success",
            "videoUUID": result.video_uuid,
            "videoURL": f"{self.public_url}/_simulator/videos/{result.video_uuid}.{ext}",
            "seed": result.seed}
        if record.request.get("includeCost"):
            item["cost"] = result.cost
        return item

    # -- the videos ----------------------------------------------------------------------

    async def send_video(self, path: str, head: bool, send: Send) -> None:
        video_uuid, _, ext = path.rsplit("/", 1)[-1].partition(".")
        found = self.state.find_video(video_uuid)
        now = self.clock()
        if found is None or not is_served(found[0], found[1], ext, now):
            await send_json(send, 404, {"errors": [problem("notFound", "no such video")]})
            return
        record, result = found
        ttl = self.url_ttl if self.url_ttl is not None else record.ttl
        if ttl is not None and now > result.ready_at + ttl:
            await send_json(send, 410, {"errors": [problem("urlExpired", "video URL expired")]})
            return
        file = await self._rendered(record, result)
        self.stats.downloads += 0 if head else 1
        await send_file(send, file, FORMATS[record.output_format].content_type, head)

    async def _rendered(self, record: TaskRecord, result: ResultPlan) -> Path:
        """The video file of a result, rendered now if it never was (exactly once)."""
        out = self.state.video_path(result.video_uuid, EXTENSIONS[record.output_format])
        if out.is_file():
            return out
        lock = self._render_locks.setdefault(result.video_uuid, asyncio.Lock())
        async with lock:
            if not out.is_file():
                await asyncio.to_thread(self._render, record, result, out)
                self.stats.generations += 1
                self.stats.generations_by_task[record.task_uuid] += 1
                self.stats.generations_by_video[result.video_uuid] += 1
        self._render_locks.pop(result.video_uuid, None)
        return out

    def _render(self, record: TaskRecord, result: ResultPlan, out: Path) -> None:
        render_clip(render_spec(record, result, self.state, self.drift), out)


def render_spec(record: TaskRecord, result: ResultPlan, state: SimulatorState,
                drift: float = 0.0) -> RenderSpec:
    """The renderer's reading of a task: its size, length, frame rate, sound, prompt, frame
    images and PixVerse's looks (other providers' settings change nothing on screen)."""
    request = record.request
    pixverse = (request.get("providerSettings") or {}).get("pixverse") or {}
    frames = {pos: state.load_image(ref) for pos, ref in record.frames.items()}
    return RenderSpec(
        width=record.width, height=record.height, duration=record.duration,
        prompt=str(request.get("positivePrompt", "")), seed=result.seed, fps=record.fps,
        output_format=record.output_format, quality=int(request.get("outputQuality", 95)),
        camera_movement=pixverse.get("cameraMovement"), style=pixverse.get("style"),
        effect=pixverse.get("effect"), motion_mode=pixverse.get("motionMode", "normal"),
        first_frame=frames.get("first"), last_frame=frames.get("last"), sound=record.sound,
        drift=drift)


def is_served(record: TaskRecord, result: ResultPlan, ext: str, now: float) -> bool:
    """Whether a video URL names a finished result (with the right file extension)."""
    right_ext = ext == EXTENSIONS[record.output_format]
    return right_ext and not record.fails and now >= result.ready_at
