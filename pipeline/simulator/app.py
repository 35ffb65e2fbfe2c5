"""The Runware-compatible simulator: an ASGI app, and a transport to use it in process.

Input: HTTP requests in Runware's wire format (POST /v1 with a JSON array of
`authentication`, `imageUpload`, `videoInference` and `getResponse` tasks), and GETs of the
videos and images it serves.
Output: Runware's answers (the same envelopes, error codes and HTTP statuses), and real video
files rendered at the first fetch of a finished result's `videoURL`.

This module routes, authorizes, injects faults and stores uploads; `inference` handles
videoInference for every model in the catalog, so it refuses exactly what the planner
refuses, and adds the checks only a server can make (taskUUID, conflictTaskUUID, known
model, usable frame images). Tasks finish after a latency drawn per result from the
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

from ..language.catalog import load_catalog
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
from .checks import TaskError, parse_tasks, problem, refuse, require_task_uuid
from .faults import ConnectionDropped, Fault, request_fault
from .images import ImageProblem, fit_long_side
from .inference import VideoTasks
from .state import Dice, SimulatorState, Stats, derived_uuid

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
    drift: float = 0.0  # each clip's colour drift and smeared end, as a real model's (0..1)


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
        self.videos = VideoTasks(self.state, self.stats, self.catalog, self.dice, clock,
                                 self.public_url, config.url_ttl, config.drift)
        self._request_number = 0

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
            await self.videos.send_video(path, method == "HEAD", send)
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
            return await self.videos.submit(task)
        if kind == "getResponse":
            return self.videos.poll(task)
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

    # -- imageUpload --------------------------------------------------------

    async def _image_upload(self, task: Mapping[str, Any]) -> list[dict[str, Any]]:
        task_uuid = require_task_uuid(task)
        value = task.get("image")
        if not isinstance(value, str) or not value:
            raise refuse(400, "missingImage", "imageUpload needs an image (data URI, base64 "
                         "or URL)", task, parameter="image")
        try:
            found = await self.state.image_input(value, self.videos.own_prefix)
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

    async def _image(self, path: str, head: bool, send: Send) -> None:
        image_uuid = path.rsplit("/", 1)[-1].removesuffix(".png")
        if not self.state.has_image(image_uuid):
            await send_json(send, 404, {"errors": [problem("notFound", "no such image")]})
            return
        await send_file(send, self.state.image_path(image_uuid), "image/png", head)

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
