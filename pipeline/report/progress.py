"""Run progress: the scheduler's job updates and notes in; lines or a live table, out."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..run.jobs import FINISHED, Job, JobStatus


class PlainReporter:
    """One line per change of a shot's status, for logs and pipes (stderr)."""

    def __init__(self, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream or sys.stderr
        self.clock = clock
        self.start = self.clock()

    def update(self, job: Job) -> None:
        detail = f": {job.error}" if job.error else ""
        self._line(f"{job.label}: {job.status}{detail}")

    def note(self, message: str) -> None:
        self._line(message)

    def _line(self, text: str) -> None:
        print(f"[{self.clock() - self.start:7.1f}s] {text}", file=self.stream, flush=True)


class LiveReporter:
    """A rich live view: a line per active shot and the totals (on a terminal)."""

    ACTIVE = (JobStatus.WAITING, JobStatus.EXTRACTING, JobStatus.UPLOADING,
              JobStatus.SUBMITTED, JobStatus.RENDERING, JobStatus.DOWNLOADING)
    UNFINISHED = (JobStatus.FAILED, JobStatus.SKIPPED, JobStatus.STOPPED)

    def __init__(self, console: Console, total: int) -> None:
        from rich.live import Live

        self.console = console
        self.total = total
        self.jobs: dict[str, Job] = {}
        self.start = time.monotonic()
        self._time = time.monotonic
        self.live = Live(console=console, refresh_per_second=4, transient=False,
                         get_renderable=self._render)

    def __enter__(self) -> LiveReporter:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.refresh()
        self.live.__exit__(None, None, None)

    def update(self, job: Job) -> None:
        self.jobs[job.identity] = job
        if job.status is JobStatus.FAILED:
            self.console.print(Text.assemble(("failed ", "red"), f"{job.label}: {job.error}"))

    def note(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)

    def _render(self) -> Table:
        table = Table(show_header=False, box=None, padding=(0, 1))
        now = self._time()
        for job in self.jobs.values():
            if job.status in self.ACTIVE:
                since = f"{now - job.started:5.1f}s" if job.started else ""
                table.add_row(job.label, str(job.status), since)
        finished = sum(j.status in FINISHED for j in self.jobs.values())
        failed = sum(j.status in self.UNFINISHED for j in self.jobs.values())
        cost = sum(j.cost or 0.0 for j in self.jobs.values())
        totals = Text.assemble((f"{finished}/{self.total} shots done", "bold"),
                               (f", {failed} failed or skipped", "red") if failed else "")
        table.add_row(totals, f"${cost:.3f}", f"{now - self.start:5.1f}s")
        return table
