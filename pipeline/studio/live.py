"""Live: runs started from the page, and the files they and others change, in; events for
the pages (Server-Sent Events), out.

`Events` fans each event out to every open page. `RunThread` runs the storyboard with the
same code as `storyreel run` (`prepare_run`, `execute`) in a thread of its own, with its own
event loop, so stitching a film never stalls the pages, and stops it when asked as Ctrl-C
stops the command (its tasks in flight stay in the journal); its `Reporter` turns every
change of a shot's status into a `job` event. `watch` notices what changed on disk (an editor saved
the storyboard, a run in another process wrote the journal, the store or the lock) and
sends a `board` event, so a run from the command line shows up live too.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import StoryreelError
from ..run.execute import BackendName, RunRequest, execute, options_for, prepare_run
from ..run.scheduler import Job, RunOptions
from .board import LiveState

T = TypeVar("T")
Event = tuple[str, dict[str, Any]]
_CLOSE: Event = ("close", {})


class Events:
    """Every open page's queue of events; `publish` may be called from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queues: set[asyncio.Queue[Event]] = set()

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        self.loop.call_soon_threadsafe(self._put, (kind, data))

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        self.loop.call_soon_threadsafe(self._put, _CLOSE)

    def _put(self, event: Event) -> None:
        for queue in self.queues:
            queue.put_nowait(event)

    async def stream(self, first: Event, heartbeat: float = 15.0) -> AsyncIterator[str]:
        """Server-Sent Events text, starting with `first`; a comment line keeps idle
        connections open through proxies."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self.queues.add(queue)
        try:
            yield sse(*first)
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), heartbeat)
                except TimeoutError:
                    yield ": still here\n\n"
                    continue
                if event is _CLOSE:
                    return
                yield sse(*event)
        finally:
            self.queues.discard(queue)


def sse(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@dataclass
class StudioReporter:
    """The scheduler's reporter: the live state of each job, and an event per change."""

    publish: Callable[[str, dict[str, Any]], None]
    states: dict[str, LiveState] = field(default_factory=dict)

    def update(self, job: Job) -> None:
        status = str(job.status)
        self.states[job.identity] = LiveState(status, job.error)
        self.publish("job", {"identity": job.identity, "keys": [s.key for s in job.shots],
                             "status": status, "error": job.error, "cost": job.cost})

    def note(self, message: str) -> None:
        self.publish("note", {"message": message})


class RunThread:
    """At most one run at a time, each in its own thread and event loop."""

    def __init__(self, publish: Callable[[str, dict[str, Any]], None]) -> None:
        self.publish = publish
        self.reporter: StudioReporter | None = None
        self.thread: threading.Thread | None = None
        self._running = False
        self._lock = threading.Lock()
        self._stop = Stopper()

    @property
    def active(self) -> bool:
        """True from `start` until just before the run's last event is sent: a page that
        hears the run end and looks again sees it over."""
        return self._running

    @property
    def states(self) -> dict[str, LiveState]:
        return dict(self.reporter.states) if self.reporter and self.active else {}

    def start(self, req: RunRequest, max_cost: float | None = None) -> bool:
        """Start a run that spends at most `max_cost`; False when one is going already."""
        with self._lock:
            if self._running:
                return False
            self._running = True
            self._stop = Stopper()
            self.reporter = StudioReporter(self.publish)
            self.thread = threading.Thread(target=self._run,
                                           args=(req, self.reporter, max_cost),
                                           name="storyreel-run", daemon=True)
            self.thread.start()
            return True

    def stop(self) -> bool:
        """Stop the run going, as Ctrl-C stops `storyreel run`: its tasks in flight stay in
        the journal for the next run to resume. False when no run is going."""
        with self._lock:
            if not self._running:
                return False
            self._stop.stop()
            return True

    def join(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self, req: RunRequest, reporter: StudioReporter, max_cost: float | None) -> None:
        self.publish("run", {"state": "started", "backend": req.backend})
        bug: Exception | None = None
        try:
            outcome = _outcome(req, reporter, max_cost, self._stop)
        except Exception as exc:  # a bug: the page must still learn the run ended
            outcome = {"state": "failed", "message": f"{type(exc).__name__}: {exc}"}
            bug = exc
        finally:
            self._running = False
        self.publish("run", outcome)
        if bug is not None:
            raise bug


class Stopper:
    """Cancels a run's main task from another thread, whether it has started yet or not."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._asked = False
        self._cancel: Callable[[], None] | None = None

    def stop(self) -> None:
        with self._lock:
            self._asked = True
            cancel = self._cancel
        if cancel is not None:
            cancel()

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Await `work` until it ends or `stop` is called (CancelledError)."""
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        assert task is not None
        def cancel() -> None:
            loop.call_soon_threadsafe(task.cancel)

        with self._lock:
            self._cancel = cancel
            asked = self._asked
        if asked:  # stopped before it began
            work.close()
            raise asyncio.CancelledError
        return await work


def _outcome(req: RunRequest, reporter: StudioReporter, max_cost: float | None,
             stopper: Stopper) -> dict[str, Any]:
    """Run the storyboard as `storyreel run` does; the `run` event that says how it ended."""
    try:
        prepared = prepare_run(req)
        options = run_options(req.backend, prepared.compiled.board.concurrency, max_cost)
        req = RunRequest(req.path, req.display, req.backend, options,
                         simulator=req.simulator, environ=req.environ)
        summary = asyncio.run(stopper.run(execute(req, reporter, prepared)))
    except StoryreelError as exc:
        return {"state": "failed", "message": exc.render()}
    except asyncio.CancelledError:
        return {"state": "stopped", "message": "run stopped: its tasks in flight are kept; "
                "Run again resumes them without paying twice"}
    films = [{"file": f.path.name if f.path else None, "method": f.method, "error": f.error}
             for f in summary.films]
    return {"state": "finished", "complete": summary.complete, "cost": summary.cost,
            "films": films}


def run_options(backend: BackendName, concurrency: int | None, max_cost: float | None
                ) -> RunOptions:
    """As `storyreel run` chooses them."""
    return options_for(backend, concurrency, max_cost)


async def watch(stamp: Callable[[], Any], changed: Callable[[], None],
                stop: asyncio.Event, interval: float = 0.5) -> None:
    """Call `changed` whenever `stamp()` (file sizes and times) differs from the last look."""
    last = await asyncio.to_thread(stamp)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            pass
        now = await asyncio.to_thread(stamp)
        if now != last:
            last = now
            changed()
