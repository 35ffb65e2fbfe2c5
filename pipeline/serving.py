"""Local servers: a host and a port in; a listening socket, the URL it answers at, and a
uvicorn server run in a background thread out. The simulator and the studio both serve
through here.

The socket is bound before uvicorn starts, so port 0 gives a free port whose address is known
before the first request, and a busy port is an error the command can explain.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

ANY_ADDRESS = ("0.0.0.0", "::", "")


class Server(Protocol):
    """What of a uvicorn server is used here."""

    started: bool
    should_exit: bool

    def run(self, sockets: list[socket.socket] | None = None) -> None: ...


def listen(host: str, port: int, *, backlog: int = 128) -> socket.socket:
    """A socket listening on host:port (port 0: one the system picks); OSError if it cannot."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # asyncio turns Nagle off only on sockets made with proto=IPPROTO_TCP; connections
    # accepted here inherit this instead. Without it a response written in two parts (headers,
    # then body) waits out the client's delayed ACK: 40 ms per request on a kept-alive
    # connection, seconds for a page of posters.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)  # connections wait in the backlog until the server accepts them
    except OSError:
        sock.close()
        raise
    return sock


def origin_of(host: str, sock: socket.socket) -> str:
    """`http://HOST:PORT` for a listening socket; a server on every address is reached at
    127.0.0.1 from this machine."""
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ANY_ADDRESS else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


@contextmanager
def in_thread(server: Server, sock: socket.socket, what: str, *,
              limit: float = 30.0) -> Iterator[None]:
    """Run `server` on `sock` in a daemon thread until the block ends; it has started (or
    RuntimeError names `what` that did not) when the block begins."""
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + limit
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start")
            time.sleep(0.005)
        yield
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
