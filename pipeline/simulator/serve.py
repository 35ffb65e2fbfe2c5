"""Serving the simulator over HTTP: the uvicorn runner and the `simulate` command.

Input: a `SimulatorConfig` and a host and port (or command-line options).
Output: a server that answers at `http://HOST:PORT/v1` like Runware (`serve`, blocking; or
`serving`, in a background thread for tests and benchmarks), and `simulate_command()`, the
`storyreel simulate` click command.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..serving import in_thread, listen, origin_of
from .asgi import ASGIApp, Receive, Scope, Send
from .faults import ConnectionDropped
from .options import FAULTS_HELP, SimOptions, latency_option, rates_option

if TYPE_CHECKING:  # the app (video, sound) is loaded when a server starts, not for --help
    from .app import SimulatorApp, SimulatorConfig

# -- uvicorn -----------------------------------------------------------------------------


def _dropping_protocol() -> type[Any]:
    """uvicorn's HTTP/1.1 protocol, taught to drop a connection when the app says so: the
    socket is aborted with nothing written, as a crashed server or a proxy would."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class DroppingH11Protocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            app = self.app

            async def app_or_drop(scope: Scope, receive: Receive, send: Send) -> None:
                try:
                    await app(scope, receive, send)
                except ConnectionDropped:
                    self.cycle.disconnected = True  # no 500, no "incomplete response" log
                    self.transport.abort()

            self.app = app_or_drop

    return DroppingH11Protocol


def _server(app: ASGIApp, *, quiet: bool, access_log: bool = True) -> Any:
    import uvicorn

    options: dict[str, Any] = {"ws": "none", "lifespan": "on", "timeout_graceful_shutdown": 2,
                               "access_log": access_log, "http": _dropping_protocol()}
    if quiet:
        options.update(log_config=None, access_log=False, log_level="warning")
    return uvicorn.Server(uvicorn.Config(app, **options))


def serve(config: SimulatorConfig, host: str = "127.0.0.1", port: int = 8188, *,
          echo: Callable[[str], None] = click.echo, access_log: bool = True) -> None:
    """Answer like Runware at http://HOST:PORT/v1 until interrupted."""

    try:
        sock = listen(host, port, backlog=2048)
    except OSError as exc:
        raise CannotListen(_bind_error(host, port, exc)) from None
    origin = origin_of(host, sock)
    from .app import create_app

    app = create_app(config, public_url=origin)
    for line in banner(origin, config):
        echo(line)
    try:
        _server(app, quiet=False, access_log=access_log).run(sockets=[sock])
    except KeyboardInterrupt:
        echo("simulator stopped")  # Ctrl-C is how a server is meant to end
    finally:
        sock.close()


class CannotListen(click.ClickException):
    """The address is taken or not ours to use: an error in the arguments (exit 2)."""

    exit_code = 2


def _bind_error(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (f"port {port} on {host} is in use (another simulator?): choose another with "
                "--port, or --port 0 for any free port")
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def banner(origin: str, config: SimulatorConfig) -> list[str]:
    keys = "only the key given with --api-key" if config.api_key else "any non-empty API key"
    low, high = config.latency
    return [
        f"storyreel simulate: a local Runware SIMULATOR (not the real service) at {origin}/v1",
        f"  accepts {keys}; results ready after {low:g}-{high:g} s; videos are rendered "
        "placeholders",
        f"  point storyreel at it:  export RUNWARE_BASE_URL={origin}/v1",
        f"  counters:               {origin}/_simulator/stats",
        f"  state folder:           {config.state_dir or '(temporary, gone on exit)'}",
    ] + ([f"  drift:                  each clip's colour drifts {config.drift:g} of the way "
          "to a warm cast, its end smeared"] if config.drift else [])


@dataclass(frozen=True)
class Served:
    """A server running in a background thread: its address, and the app when it is ours."""

    origin: str
    app: Any

    @property
    def url(self) -> str:
        return f"{self.origin}/v1"


@contextmanager
def running(make_app: Callable[[str], ASGIApp], host: str = "127.0.0.1") -> Iterator[Served]:
    """Serve `make_app(origin)` on a free port in a thread; stop it on leaving."""
    sock = listen(host, 0, backlog=2048)
    origin = origin_of(host, sock)
    app = make_app(origin)
    with in_thread(_server(app, quiet=True), sock, "the simulator server"):
        yield Served(origin, app)


@contextmanager
def serving(config: SimulatorConfig, *, host: str = "127.0.0.1",
            clock: Callable[[], float] = time.time) -> Iterator[Served]:
    """The simulator on a real socket, in a thread: `with serving(cfg) as s: s.url`."""

    from .app import create_app

    def make(origin: str) -> SimulatorApp:
        return create_app(config, clock=clock, public_url=origin)

    with running(make, host) as served:
        yield served


# -- the command -------------------------------------------------------------------------


SIMULATE_HELP = """Run a local simulator of Runware's video API (not the real service).

It speaks Runware's REST protocol at http://HOST:PORT/v1: videoInference, getResponse,
imageUpload and authentication, with the same validation for PixVerse V4.5
(pixverse:1@3), the same error envelope and the same HTTP statuses. Tasks finish after
--latency seconds and their videoURL serves a real clip, rendered locally (a placeholder
picture, labelled as simulated, that honours size, duration, format, frame images and
camera movement). No money is spent and nothing leaves this machine.

\b
Point storyreel (or any Runware client) at it:
  storyreel simulate --port 8188 &
  export RUNWARE_BASE_URL=http://127.0.0.1:8188/v1 RUNWARE_API_KEY=anything
  storyreel run film.yaml --backend runware

\b
Faults, for testing clients (rates between 0 and 1, repeat the option):
  --fail-rate 429=0.1     answer HTTP 429 with Retry-After to 10 % of requests
  --fail-rate 500=0.05    HTTP 500;  --fail-rate 503=0.05: HTTP 503
  --fail-rate drop=0.02   process the request, then close the connection unanswered
  --fail-rate task=0.1    fail 10 % of tasks with timeoutProvider when they are due

Counters (requests by task type, tasks accepted, conflicts, videos generated, faults) are
at http://HOST:PORT/_simulator/stats. With --state-dir, tasks, uploads and videos survive a
restart of the simulator.
"""


def simulate_command() -> click.Command:
    """`storyreel simulate`, for the CLI to add."""

    @click.command("simulate", help=SIMULATE_HELP)
    @click.option("--host", default="127.0.0.1", show_default=True,
                  help="Address to listen on (keep 127.0.0.1 unless you mean to share it).")
    @click.option("--port", default=8188, show_default=True, type=click.IntRange(0, 65535),
                  help="Port to listen on (0: any free port).")
    @click.option("--api-key", default=None, metavar="KEY",
                  help="Accept only this API key (401 invalidApiKey otherwise). "
                       "Default: any non-empty key.")
    @click.option("--latency", default="0.5,1.5", show_default=True, metavar="A[,B]",
                  callback=latency_option, help="Seconds from submission to each result, "
                                                "uniform between A and B (A alone: always A).")
    @click.option("--fail-rate", "fail_rates", multiple=True, metavar="KIND=RATE",
                  callback=rates_option, help=f"Inject faults (repeatable). {FAULTS_HELP}")
    @click.option("--retry-after", default=1.0, show_default=True, type=float,
                  help="Seconds sent in Retry-After with an injected 429.")
    @click.option("--url-ttl", default=None, type=float, metavar="SECONDS",
                  help="Video URLs expire this long after the result is ready (410 after).")
    @click.option("--seed", default=0, show_default=True, type=int,
                  help="Seed of every random choice (latencies, faults, seeds).")
    @click.option("--max-tasks", default=100, show_default=True, type=click.IntRange(1),
                  help="Most tasks accepted in one request.")
    @click.option("--access-log/--no-access-log", default=True, show_default=True,
                  help="Print a line per HTTP request.")
    @click.option("--state-dir", default=None, metavar="DIR",
                  type=click.Path(file_okay=False, path_type=Path),
                  help="Keep tasks, uploads and videos here, across restarts.")
    @click.option("--sim-drift", "--drift", "drift", default=0.0, show_default=True,
                  type=click.FloatRange(0, 1), metavar="RATE",
                  help="Drift like a real model: each clip's colour shifts RATE of the way "
                       "to a warm cast by its last frame, and its end smears as if the "
                       "camera moved (0.1 is a lot over a chain).")
    def simulate(host: str, port: int, api_key: str | None, latency: tuple[float, float] | None,
                 fail_rates: dict[str, float], retry_after: float, url_ttl: float | None,
                 seed: int, max_tasks: int, access_log: bool, state_dir: Path | None,
                 drift: float) -> None:
        from .app import SimulatorConfig

        config = SimOptions(latency, fail_rates, drift).apply(SimulatorConfig(
            api_key=api_key, retry_after=retry_after, url_ttl=url_ttl, seed=seed,
            max_tasks=max_tasks, state_dir=state_dir))
        serve(config, host, port, access_log=access_log)

    return simulate
