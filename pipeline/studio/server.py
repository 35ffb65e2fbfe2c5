"""Server: a review's configuration, a host and a port in; the studio answering over HTTP
(uvicorn) out, in the foreground (`serve`) or in a thread for tests and benchmarks
(`serving`).

The socket is bound (by `pipeline.serving`) before uvicorn starts, so a busy port is an
error the command can explain.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette

from ..errors import UsageError
from ..serving import ANY_ADDRESS, in_thread, listen, origin_of
from .app import create_app
from .review import Review, ReviewConfig

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Served:
    url: str
    app: Starlette

    @property
    def review(self) -> Review:
        review: Review = self.app.state.review
        return review


def bind(host: str, port: int) -> socket.socket:
    try:
        return listen(host, port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}",
                         hint="choose another --port, or --port 0 for any free one") from None


def url_of(host: str, sock: socket.socket) -> str:
    return origin_of(host, sock) + "/"


def allowed_hosts(host: str) -> list[str]:
    """Host names a request may carry: this machine's, or any when serving every address."""
    if host in ANY_ADDRESS:
        return ["*"]
    names = {host, "127.0.0.1", "localhost", "[::1]"}
    return sorted(f"[{n}]" if ":" in n and not n.startswith("[") else n for n in names)


def make_server(app: Starlette) -> Any:
    import uvicorn

    # The event streams stay open; give them a moment, then close them on shutdown.
    config = uvicorn.Config(app, ws="none", lifespan="on", log_config=None,
                            access_log=False, log_level="warning", timeout_graceful_shutdown=1)

    class StudioServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            review = getattr(app.state, "review", None)
            if review is not None:
                review.events.close()
            super().handle_exit(sig, frame)

    return StudioServer(config)


def serve(config: ReviewConfig, host: str, port: int, *,
          ready: Callable[[str], None] = lambda url: None) -> None:
    """Serve the studio until interrupted; `ready(url)` once it listens."""
    sock = bind(host, port)
    url = url_of(host, sock)
    server = make_server(create_app(config, hosts=allowed_hosts(host)))
    try:
        thread = threading.Thread(target=_when_started, args=(server, url, ready), daemon=True)
        thread.start()
        server.run(sockets=[sock])
    finally:
        sock.close()


def _when_started(server: Any, url: str, ready: Callable[[str], None]) -> None:
    while not server.started and not server.should_exit:
        time.sleep(0.02)
    if server.started:
        ready(url)


@contextmanager
def serving(config: ReviewConfig, host: str = "127.0.0.1") -> Iterator[Served]:
    """The studio on a free port in a thread, stopped on leaving."""
    sock = bind(host, 0)
    app = create_app(config, hosts=allowed_hosts(host))
    with in_thread(make_server(app), sock, "the studio"):
        try:
            yield Served(url_of(host, sock), app)
        finally:
            review = getattr(app.state, "review", None)
            if review is not None:  # its event streams end, and a run it started finishes
                review.events.close()
                review.runs.join(60)
