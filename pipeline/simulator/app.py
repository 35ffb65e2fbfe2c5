"""The Runware-compatible simulator: an ASGI app, and a transport to use it in process.

Input: HTTP requests in Runware's wire format (POST /v1 with a JSON array of
`authentication`, `imageUpload`, `videoInference` and `getResponse` tasks), and GETs of the
videos and images it serves.
Output: Runware's answers (the same envelopes, error codes and HTTP statuses), and real video
files rendered at the first fetch of a finished result's `videoURL`.

It validates `videoInference` through the model catalog, so it refuses exactly what the
planner refuses, and adds the checks only a server can make (taskUUID, conflictTaskUUID,
known model, usable frame images). Tasks finish after a latency drawn per result from the
taskUUID; faults (429, 500, 503, dropped connections, failing tasks, expiring URLs) are
drawn from the seed. Choices where Runware's behaviour is unsettled: an unknown taskUUID
polls as `{"data": []}`; a failed task polls as an `errors` item with `status: error`
(HTTP 200: the poll itself worked); a submission answers 200 when any task was accepted.
`/_simulator/...` paths are its own (the real API does not use them).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from ..language.catalog import ModelSpec, load_catalog
from ..media.formats import EXTENSIONS, FORMATS
from .asgi import (
    Message,
    Receive,
    Scope,
    Send,
    bearer_key,
    read_body,
    send_file,
    send_json,
)
from .faults import ConnectionDropped, Fault, request_fault
from .render import RenderSpec, render_clip
from .state import (
    PLACEHOLDER_PREFIX,
    Dice,
    ImageProblem,
    ResultPlan,
    SimulatorState,
    Stats,
    TaskError,
    TaskRecord,
    check_frame_size,
    check_request,
    derived_uuid,
    fit_long_side,
    frame_position,
    hash_text,
    parse_tasks,
    plan_task,
    problem,
    refuse,
    require_task_uuid,
)

log = logging.getLogger("pipeline.simulator")



@dataclass(frozen=True)
class SimulatorConfig:
    api_key: str | None = None  # None: any non-empty key is accepted
    latency: tuple[float, float] = (0.5, 1.5)  # seconds to each result, uniform per result
    rate_429: float = 0.0
    retry_after: float = 1.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_drop: float = 0.0
    rate_task_error: float = 0.0
    url_ttl: float | None = None  # seconds a videoURL lives after its result is ready
    seed: int = 0
    max_body: int = 30 * 1024 * 1024
    max_tasks: int = 100
    state_dir: Path | None = None


class SimulatorApp:
    """The ASGI application. `state` and `stats` are there to read in tests."""

    def __init__(self, config: SimulatorConfig, clock: Callable[[], float],
                 public_url: str) -> None:
        self.config = config
        self.clock = clock
        self.public_url = public_url.rstrip("/")
        self.state = SimulatorState(config.state_dir)
        self.stats = Stats()
        self.catalog = load_catalog()
        self.dice = Dice(config.seed, config.latency, config.rate_task_error)
        self._request_number = 0
        self._render_locks: dict[str, asyncio.Lock] = {}
        self._arriving: set[str] = set()
        self._own_prefix = f"{self.public_url}/_simulator/images/"

    def close(self) -> None:
        self.state.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._route(scope, receive, tracked)
        except ConnectionDropped:
            raise
        except Exception:
            log.exception("simulator failed on %s %s", scope["method"], scope["path"])
            if not started:
                body = {"errors": [problem("internalServerError", "simulator internal error")]}
                await send_json(tracked, 500, body)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        if path in ("/v1", "/v1/", "/"):
            if method != "POST":
                await send_json(send, 405, {"errors": [problem(
                    "methodNotAllowed", "send tasks with POST")]}, [(b"allow", b"POST")])
                return
            await self._api(scope, receive, send)
        elif path == "/_simulator/stats":
            await send_json(send, 200, self.stats_json())
        elif path == "/_simulator/tasks":
            await send_json(send, 200, self.tasks_json())
        elif path.startswith("/_simulator/videos/") and method in ("GET", "HEAD"):
            await self._video(path, method == "HEAD", send)
        elif path.startswith("/_simulator/images/") and method in ("GET", "HEAD"):
            await self._image(path, method == "HEAD", send)
        else:
            await send_json(send, 404, {"errors": [problem("notFound", f"no such path {path}")]})

    def stats_json(self) -> dict[str, Any]:
        return {"simulator": True, **self.stats.as_json(), "tasks_known": len(self.state.tasks)}

    def tasks_json(self) -> dict[str, Any]:
        """When each task was submitted and when it is (or was) ready: for benchmarks."""
        return {"tasks": [
            {"taskUUID": r.task_uuid, "submitted": r.submitted, "ready": r.ready_at,
             "fails": r.fails, "results": len(r.results)}
            for r in self.state.tasks.values()]}

    # -- the API -------------------------------------------------------------------------

    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(scope, receive, self.config.max_body)
        self.stats.http_requests += 1
        try:
            if body is None:
                raise refuse(413, "payloadTooLarge",
                             f"request body is larger than {self.config.max_body} bytes")
            tasks = parse_tasks(body, self.config.max_tasks)
        except TaskError as error:
            self.stats.requests["invalid"] += 1
            await send_json(send, error.status, {"errors": error.problems})
            return
        self._count(tasks)
        fault = self._next_fault()
        if fault in (Fault.RATE_LIMIT, Fault.SERVER_ERROR, Fault.UNAVAILABLE):
            await self._send_fault(fault, send)
            return
        status, payload = await self._answer(scope, tasks)
        if fault is Fault.DROP:
            raise ConnectionDropped("simulated dropped connection (request was processed)")
        await send_json(send, status, payload)

    def _count(self, tasks: list[dict[str, Any]]) -> None:
        kinds = [str(t.get("taskType")) for t in tasks]
        self.stats.tasks.update(kinds)
        self.stats.requests.update(dict.fromkeys(kinds, 1))

    def _next_fault(self) -> Fault:
        self._request_number += 1
        c = self.config
        rates = [(Fault.RATE_LIMIT, c.rate_429), (Fault.SERVER_ERROR, c.rate_500),
                 (Fault.UNAVAILABLE, c.rate_503), (Fault.DROP, c.rate_drop)]
        fault = request_fault(c.seed, self._request_number, rates)
        if fault is not Fault.NONE:
            self.stats.faults[str(fault)] += 1
        return fault

    async def _send_fault(self, fault: Fault, send: Send) -> None:
        if fault is Fault.RATE_LIMIT:
            body = {"errors": [problem("rateLimitExceeded", "too many requests (simulated)")]}
            after = f"{self.config.retry_after:g}".encode()
            await send_json(send, 429, body, [(b"retry-after", after)])
        elif fault is Fault.SERVER_ERROR:
            body = {"errors": [problem("internalServerError", "internal error (simulated)")]}
            await send_json(send, 500, body)
        else:
            body = {"errors": [problem("serviceUnavailable", "no capacity (simulated)")]}
            await send_json(send, 503, body, [(b"retry-after", b"1")])

    async def _answer(self, scope: Scope, tasks: list[dict[str, Any]]) -> tuple[int, Any]:
        try:
            self._authorize(scope, tasks)
        except TaskError as error:
            return error.status, {"errors": error.problems}
        data: list[dict[str, Any]] = []
        errors: list[TaskError] = []
        for task in tasks:
            try:
                data += await self._handle(task)
            except TaskError as error:
                errors.append(error)
        if not errors:
            return 200, {"data": data}
        problems = [p for e in errors for p in e.problems]
        if not data:
            return errors[0].status, {"errors": problems}
        return 200, {"data": data, "errors": problems}

    def _authorize(self, scope: Scope, tasks: list[dict[str, Any]]) -> None:
        key = bearer_key(scope) or next(
            (str(t.get("apiKey") or "") for t in tasks if t.get("taskType") == "authentication"),
            "")
        if not key:
            raise refuse(401, "missingApiKey", "missing API key: send the header "
                         "'Authorization: Bearer <key>' or an authentication task first")
        expected = self.config.api_key
        if expected is not None and not hmac.compare_digest(key.encode(), expected.encode()):
            raise refuse(401, "invalidApiKey", "invalid API key")

    async def _handle(self, task: dict[str, Any]) -> list[dict[str, Any]]:
        kind = task.get("taskType")
        if kind == "videoInference":
            return await self._video_inference(task)
        if kind == "getResponse":
            return self._get_response(task)
        if kind == "imageUpload":
            return await self._image_upload(task)
        if kind == "authentication":
            return [{"taskType": "authentication", "connectionSessionUUID": derived_uuid(
                "session", self._request_number)}]
        if kind == "ping":
            return [{"taskType": "ping", "pong": True}]
        raise refuse(400, "unsupportedTaskType",
                     f"taskType {kind!r} is not simulated (videoInference, getResponse, "
                     "imageUpload, authentication, ping)", task, parameter="taskType")

    # -- videoInference ------------------------------------------------------------------

    async def _video_inference(self, task: dict[str, Any]) -> list[dict[str, Any]]:
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
        frames, request = await self._frames(task)
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

    async def _frames(self, task: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
        """Each frame image as a stored image (or a placeholder), and the request to keep,
        with inline image data replaced by the imageUUID it was stored under."""
        items = (task.get("inputs") or {}).get("frameImages") or []
        frames: dict[str, str] = {}
        kept: list[Any] = []
        for index, item in enumerate(items):
            value = item if isinstance(item, str) else str(item["image"])
            position = frame_position(item, index, len(items))
            if position in frames:
                raise refuse(400, "invalidFrameImages", f"two frame images for the {position} "
                             "frame", task, parameter="inputs.frameImages")
            frames[position] = await self._frame_ref(value, task)
            kept.append(frames[position] if isinstance(item, str)
                        else {**item, "image": frames[position]})
        request = dict(task)
        if kept:
            request["inputs"] = {**task["inputs"], "frameImages": kept}
        return frames, request

    async def _frame_ref(self, value: str, task: Mapping[str, Any]) -> str:
        try:
            found = await self.state.image_input(value, self._own_prefix)
            if isinstance(found, Image.Image):
                check_frame_size(found.size)
                ref = derived_uuid("inline", hash_text(value))
                await asyncio.to_thread(self.state.put_image, ref, found)
                return ref
            if not found.startswith(PLACEHOLDER_PREFIX):
                check_frame_size(self.state.image_size(found))
            return found
        except ImageProblem as exc:
            raise refuse(400, "invalidFrameImages", f"frame image: {exc}", task,
                         parameter="inputs.frameImages") from None

    # -- getResponse, imageUpload --------------------------------------------------------

    def _get_response(self, task: Mapping[str, Any]) -> list[dict[str, Any]]:
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

    async def _image_upload(self, task: Mapping[str, Any]) -> list[dict[str, Any]]:
        task_uuid = require_task_uuid(task)
        value = task.get("image")
        if not isinstance(value, str) or not value:
            raise refuse(400, "missingImage", "imageUpload needs an image (data URI, base64 "
                         "or URL)", task, parameter="image")
        try:
            found = await self.state.image_input(value, self._own_prefix)
        except ImageProblem as exc:
            raise refuse(400, "invalidImage", str(exc), task, parameter="image") from None
        image_uuid = derived_uuid("upload", task_uuid)
        await asyncio.to_thread(self._store_upload, found, image_uuid)
        return [{"taskType": "imageUpload", "taskUUID": task_uuid, "imageUUID": image_uuid,
                 "imageURL": f"{self.public_url}/_simulator/images/{image_uuid}.png"}]

    def _store_upload(self, found: str | Image.Image, image_uuid: str) -> None:
        """Keep an upload as Runware does: at most 2048 px on the long side."""
        image = found if isinstance(found, Image.Image) else self.state.load_image(found)
        self.state.put_image(image_uuid, fit_long_side(image))

    # -- files ---------------------------------------------------------------------------

    async def _video(self, path: str, head: bool, send: Send) -> None:
        video_uuid, _, ext = path.rsplit("/", 1)[-1].partition(".")
        found = self.state.find_video(video_uuid)
        now = self.clock()
        if found is None or not is_served(found[0], found[1], ext, now):
            await send_json(send, 404, {"errors": [problem("notFound", "no such video")]})
            return
        record, result = found
        ttl = self.config.url_ttl if self.config.url_ttl is not None else record.ttl
        if ttl is not None and now > result.ready_at + ttl:
            await send_json(send, 410, {"errors": [problem("urlExpired", "video URL expired")]})
            return
        file = await self._rendered(record, result)
        self.stats.downloads += 0 if head else 1
        await send_file(send, file, FORMATS[record.output_format].content_type, head)

    async def _image(self, path: str, head: bool, send: Send) -> None:
        image_uuid = path.rsplit("/", 1)[-1].removesuffix(".png")
        if not self.state.has_image(image_uuid):
            await send_json(send, 404, {"errors": [problem("notFound", "no such image")]})
            return
        await send_file(send, self.state.image_path(image_uuid), "image/png", head)

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
        request = record.request
        pixverse = (request.get("providerSettings") or {}).get("pixverse") or {}
        frames = {pos: self.state.load_image(ref) for pos, ref in record.frames.items()}
        spec = RenderSpec(
            width=record.width, height=record.height, duration=record.duration,
            prompt=str(request.get("positivePrompt", "")), seed=result.seed,
            fps=self.catalog.get(str(request["model"])).fps,
            output_format=record.output_format, quality=int(request.get("outputQuality", 95)),
            camera_movement=pixverse.get("cameraMovement"), style=pixverse.get("style"),
            effect=pixverse.get("effect"), motion_mode=pixverse.get("motionMode", "normal"),
            first_frame=frames.get("first"), last_frame=frames.get("last"))
        render_clip(spec, out)


def create_app(config: SimulatorConfig, *, clock: Callable[[], float] = time.time,
               public_url: str = "http://127.0.0.1") -> SimulatorApp:
    """The simulator as an ASGI app; `clock` gives the (persisted) time in seconds."""
    return SimulatorApp(config, clock, public_url)


class SimulatorTransport(httpx.AsyncBaseTransport):
    """The simulator in process: every request (API calls and video downloads alike) goes
    to the app, with no socket. A simulated drop surfaces as httpx's own error for it."""

    def __init__(self, app: SimulatorApp) -> None:
        self.app = app
        self._asgi = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._asgi.handle_async_request(request)
        except ConnectionDropped as exc:
            raise httpx.RemoteProtocolError(
                "server disconnected without sending a complete response", request=request
            ) from exc

    async def aclose(self) -> None:
        await self._asgi.aclose()
        self.app.close()


def simulator_transport(config: SimulatorConfig, *, clock: Callable[[], float] = time.time,
                        public_url: str = "http://127.0.0.1") -> SimulatorTransport:
    """An httpx transport that answers from a fresh in-process simulator (`.app`)."""
    return SimulatorTransport(create_app(config, clock=clock, public_url=public_url))


def is_served(record: TaskRecord, result: ResultPlan, ext: str, now: float) -> bool:
    """Whether a video URL names a finished result (with the right file extension)."""
    right_ext = ext == EXTENSIONS[record.output_format]
    return right_ext and not record.fails and now >= result.ready_at
