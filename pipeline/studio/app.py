"""App: HTTP requests in; the studio's pages, its JSON API, media and events, out (Starlette).

    GET  /              the page of the first variant; /?v=N the N-th
    GET  /api/board     the board as JSON (shots, takes, statuses, costs, seams, films)
    POST /api/pick      {"shot": key, "take": n}: write `pick: n` into the shot's YAML
    POST /api/reroll    {"shot": key}: write a new `seed` into the shot's YAML
    POST /api/run       {"confirm": usd}: run the storyboard (confirm what a paid run costs)
    POST /api/stop      {}: stop the run the studio started (its tasks in flight are kept)
    GET  /api/events    Server-Sent Events: job, note, run, board
    GET  /media/<sha256>.<ext>   a stored object or a film, by content hash, with Range
    GET  /poster/<take sha256>.jpg   the poster of a take on the board, made once

A POST needs the session token the page carries (header `X-Studio-Token`, or `token` in
the JSON body), else 403: another web page open in the same browser cannot write the
storyboard. Requests must name this machine as their Host (no DNS rebinding). Pages allow
scripts and media from this origin only.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import StoryreelError
from .api import board_json, pending_runs
from .edit import EditError
from .live import Events, watch
from .pages import LiveUrls, render_page
from .review import Review, ReviewConfig

_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; media-src 'self'; "
     b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
Handler = Callable[[Request], Awaitable[Response]]


def create_app(config: ReviewConfig, *, hosts: list[str] | None = None) -> Starlette:
    """The studio for one storyboard; `hosts` are the Host names it answers to."""
    holder: dict[str, Review] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        events = Events(asyncio.get_running_loop())
        review = holder["review"] = app.state.review = Review(config, events)
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch(review.stamp, lambda: events.publish("board", {}),
                                            stop))
        try:
            yield
        finally:
            stop.set()
            events.close()
            await watcher

    def review() -> Review:
        return holder["review"]

    routes = _routes(review)
    static = StaticFiles(directory=str(files("pipeline.studio") / "static"))
    middleware = [Middleware(TrustedHostMiddleware,
                             allowed_hosts=hosts or ["127.0.0.1", "localhost", "[::1]"]),
                  Middleware(_SecurityHeaders)]
    return Starlette(routes=[*routes, Mount("/static", static)], middleware=middleware,
                     lifespan=lifespan)


def _routes(review: Callable[[], Review]) -> list[Route]:
    async def page(request: Request) -> Response:
        board = await review().board()
        index = _variant_index(request, len(board.variants))
        if index is None:
            return HTMLResponse("no such variant", status_code=404)
        html = render_page(board, index, LiveUrls(), live=True, token=review().token,
                           backend=review().config.backend, running=review().run_active)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def api_board(request: Request) -> Response:
        board = await review().board()
        return JSONResponse(board_json(board, LiveUrls()), status_code=422 if board.problems
                            else 200, headers={"Cache-Control": "no-store"})

    async def events(request: Request) -> Response:
        hello = ("hello", {"running": review().run_active})
        return StreamingResponse(review().events.stream(hello), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    return [
        Route("/", page),
        Route("/api/board", api_board),
        Route("/api/pick", _guarded(review, _pick), methods=["POST"]),
        Route("/api/reroll", _guarded(review, _reroll), methods=["POST"]),
        Route("/api/run", _guarded(review, _run), methods=["POST"]),
        Route("/api/stop", _guarded(review, _stop), methods=["POST"]),
        Route("/api/events", events),
        *_media_routes(review),
    ]


def _media_routes(review: Callable[[], Review]) -> list[Route]:
    """Media by content hash: store objects and films, and the posters of the board's takes."""

    async def media(request: Request) -> Response:
        found = review().files.find(request.path_params["name"])
        if found is None:
            return Response("not found", status_code=404)
        return FileResponse(found.path, media_type=found.content_type, headers=_IMMUTABLE)

    async def poster(request: Request) -> Response:
        name = request.path_params["name"]
        if not name.endswith(".jpg"):
            return Response("not found", status_code=404)
        if not review().files.videos:
            await review().board()  # the takes a poster may be asked for are the board's
        try:
            found = await asyncio.to_thread(review().files.poster, name.removesuffix(".jpg"))
        except StoryreelError as exc:
            return Response(exc.render(), status_code=500)
        if found is None:
            return Response("not found", status_code=404)
        return FileResponse(found.path, media_type=found.content_type, headers=_IMMUTABLE)

    return [Route("/media/{name}", media, methods=["GET", "HEAD"]),
            Route("/poster/{name}", poster, methods=["GET", "HEAD"])]


def _variant_index(request: Request, count: int) -> int | None:
    raw = request.query_params.get("v", "0")
    if not raw.isdigit():
        return None
    index = int(raw)
    return index if index < max(count, 1) else None


Action = Callable[[Review, dict[str, Any]], Awaitable[Response]]


def _guarded(review: Callable[[], Review], action: Action) -> Handler:
    """The session token or 403; a JSON object body or 400; a refused edit is 409."""

    async def handler(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        token = request.headers.get("x-studio-token") or (
            body.get("token") if isinstance(body, dict) else None)
        if not isinstance(token, str) or not secrets.compare_digest(token, review().token):
            return _error(403, "this request needs the studio's session token: use the page "
                          "the studio serves")
        if not isinstance(body, dict):
            return _error(400, "expected a JSON object")
        try:
            return await action(review(), body)
        except EditError as exc:
            return _error(409, exc.render())

    return handler


async def _pick(review: Review, body: dict[str, Any]) -> Response:
    take = body.get("take")
    view = (await review.board()).shot(str(body.get("shot")))
    if view is None:
        return _error(404, f"no shot {body.get('shot')!r} on the board")
    if not isinstance(take, int) or isinstance(take, bool) or not 1 <= take <= view.shot.takes:
        return _error(400, f"{view.key} has takes 1 to {view.shot.takes}")
    edit = await asyncio.to_thread(review.set_value, view.shot.id, "pick", take)
    return await _edited(review, edit.file, edit.line)


async def _reroll(review: Review, body: dict[str, Any]) -> Response:
    view = (await review.board()).shot(str(body.get("shot")))
    if view is None:
        return _error(404, f"no shot {body.get('shot')!r} on the board")
    if not view.can_reroll:
        return _error(409, f"{view.shot.model} takes no seed: a new take of {view.key} needs "
                      "a change in its request")
    seed = review.new_seed(view.shot.seed)
    edit = await asyncio.to_thread(review.set_value, view.shot.id, "seed", seed)
    return await _edited(review, edit.file, edit.line, seed=seed)


async def _edited(review: Review, file: Path, line: int, **extra: Any) -> Response:
    """What the edit did, and what the next run would now render and cost."""
    board = await review.board()
    where = {"file": str(file), "line": line}
    return JSONResponse({"ok": True, "edited": where, **extra, **pending_runs(board)})


async def _run(review: Review, body: dict[str, Any]) -> Response:
    if review.run_active:
        return _error(409, "a run is going already; wait for it to finish")
    board = await review.board()
    if board.problems:
        return _error(409, "the storyboard does not compile; fix it first")
    pending = pending_runs(board)
    confirmed = body.get("confirm")
    paid = review.config.backend == "runware" and (board.estimate > 0 or bool(board.unpriced))
    if paid and (not isinstance(confirmed, int | float) or confirmed + 1e-9 < board.estimate):
        return JSONResponse({"error": "a run on Runware costs money: confirm the estimate",
                             "needs_confirmation": True, **pending}, status_code=409)
    # What was confirmed is the most the run may spend, unless some of it has no known price.
    capped = paid and isinstance(confirmed, int | float) and not board.unpriced
    max_cost = float(confirmed) if capped and isinstance(confirmed, int | float) else None
    if not review.start_run(max_cost):
        return _error(409, "a run is going already; wait for it to finish")
    return JSONResponse({"started": True, "backend": review.config.backend, **pending},
                        status_code=202)


async def _stop(review: Review, body: dict[str, Any]) -> Response:
    if not review.stop_run():
        return _error(409, "no run started from this studio is going")
    return JSONResponse({"stopping": True}, status_code=202)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _SecurityHeaders:
    """Adds the headers above to every response (a plain ASGI wrapper, so the event stream
    is not buffered)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)
