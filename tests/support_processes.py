"""Processes for end-to-end runs: a `storyreel simulate` server and `storyreel run` commands.

Input: a state folder, latency and fault rates; a storyboard and the simulator's URL.
Output: a running simulator on a free 127.0.0.1 port (stopped on leaving the `with`), its
stats, and `storyreel run --json` processes, waited for or killed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

_SCRIPT = Path(sys.executable).with_name("storyreel")
STORYREEL = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "pipeline.cli"]
API_KEY = "test-key"
_ORIGIN = re.compile(r"at (http://127\.0\.0\.1:\d+)/v1")


@dataclass(frozen=True)
class Simulator:
    """A `storyreel simulate` process answering at `url`."""

    origin: str
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"{self.origin}/v1"

    @property
    def port(self) -> int:
        return int(self.origin.rsplit(":", 1)[1])

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.origin}/_simulator/stats", timeout=10) as answer:
            data: dict[str, Any] = json.load(answer)
        return data

    def tasks(self) -> list[dict[str, Any]]:
        """Every task the simulator accepted, with its submitted and ready times."""
        with urllib.request.urlopen(f"{self.origin}/_simulator/tasks", timeout=10) as answer:
            data: dict[str, Any] = json.load(answer)
        return list(data["tasks"])

    def env(self) -> dict[str, str]:
        """The environment a `storyreel run --backend runware` needs to talk to it."""
        return {**os.environ, "RUNWARE_API_KEY": API_KEY, "RUNWARE_BASE_URL": self.url}


@contextmanager
def simulator(state_dir: Path, *, latency: tuple[float, float] = (0.5, 1.5),
              fail_rates: Mapping[str, float] | None = None, seed: int = 0,
              port: int = 0, log: Path | None = None) -> Iterator[Simulator]:
    """`storyreel simulate` on 127.0.0.1 (port 0: a free port the OS picks), stopped on
    leaving."""
    args = [*STORYREEL, "simulate", "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
            "--latency", f"{latency[0]},{latency[1]}", "--seed", str(seed),
            "--state-dir", str(state_dir)]
    for kind, rate in (fail_rates or {}).items():
        args += ["--fail-rate", f"{kind}={rate}"]
    errors = (log or state_dir.with_name(state_dir.name + ".log")).open("ab")
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        yield Simulator(_read_origin(process), process)
    finally:
        stop(process)
        errors.close()


def _read_origin(process: subprocess.Popen[bytes]) -> str:
    """The server's address from the first line of its banner."""
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    found = _ORIGIN.search(line)
    if found is None:
        raise RuntimeError(f"the simulator did not start: {line!r}")
    origin = found.group(1)
    _wait_answering(origin, process)
    return origin


def _wait_answering(origin: str, process: subprocess.Popen[bytes], limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while True:
        try:
            with urllib.request.urlopen(f"{origin}/_simulator/stats", timeout=2):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the simulator does not answer") from None
            time.sleep(0.05)


def stop(process: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """End a process we started: SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


@dataclass(frozen=True)
class Finished:
    code: int
    summary: dict[str, Any]
    stderr: str


# A line saying a run moved on: a task's results ready, a shot done, the film begun.
PROGRESS = re.compile(r"^\[\s*[\d.]+s\] \S+: (downloading|done|failed)$|^\[.*\] stitching ")


def _answer_ctrl_c() -> None:
    """In the child: Ctrl-C (SIGINT) does what it does at a terminal. A shell starts its
    background commands with SIGINT ignored, and a suite run that way would hand that on."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class LiveRun:
    """`storyreel run STORY --json` in the storyboard's folder, not waited for. Its stderr is
    copied to `log` line by line, and counted: its first line (it has compiled the storyboard
    and starts working) and the lines that say it moved on (`PROGRESS`)."""

    def __init__(self, story: Path, env: Mapping[str, str], args: Sequence[str],
                 log: IO[bytes]) -> None:
        command = [*STORYREEL, "run", str(story), "--json", *args]
        self.process = subprocess.Popen(command, cwd=story.parent, env=dict(env),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        preexec_fn=_answer_ctrl_c)
        self.lines = 0
        self.progress = 0
        self.text: list[str] = []
        self._changed = threading.Condition()
        self._copier = threading.Thread(target=self._copy, args=(log,), daemon=True)
        self._copier.start()

    def _copy(self, log: IO[bytes]) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            log.write(line)
            text = line.decode(errors="replace").rstrip()
            with self._changed:
                self.lines += 1
                self.text.append(text)
                self.progress += bool(PROGRESS.match(text))
                self._changed.notify_all()
        with self._changed:
            self.lines = self.progress = 1 << 30  # nothing more will come
            self._changed.notify_all()

    def wait(self, *, lines: int = 1, progress: int = 0, timeout: float = 60.0) -> None:
        """Until the run has written `lines` lines and `progress` progress lines, or ended."""
        with self._changed:
            self._changed.wait_for(lambda: self.lines >= lines and self.progress >= progress,
                                   timeout)

    def wait_line(self, pattern: str, timeout: float = 120.0) -> bool:
        """Until a line matches `pattern` (a regular expression); whether one did."""
        found = re.compile(pattern)

        def seen() -> bool:
            return any(found.search(t) for t in self.text)

        with self._changed:
            self._changed.wait_for(lambda: seen() or self.lines >= 1 << 30, timeout)
            return seen()

    def interrupt(self, timeout: float = 60.0) -> int:
        """Ctrl-C (SIGINT), as a user would press it; the exit code and every line written."""
        try:
            self.process.send_signal(signal.SIGINT)
            code = self.process.wait(timeout)
            self._copier.join(10)
        finally:
            stop(self.process)
        return code

    def kill(self) -> bool:
        """SIGKILL; whether the process was still running."""
        try:
            running = self.process.poll() is None
            self.process.kill()
            self.process.wait()
            self._copier.join(10)
        finally:
            stop(self.process)
        return running


def run_to_end(story: Path, env: Mapping[str, str], args: Sequence[str] = (),
               timeout: float = 300.0) -> Finished:
    """`storyreel run STORY --json`, waited for; the summary parsed from stdout."""
    command = [*STORYREEL, "run", str(story), "--json", *args]
    process = subprocess.Popen(command, cwd=story.parent, env=dict(env),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        stop(process)
    summary = json.loads(out) if out.strip() else {}
    return Finished(process.returncode, summary, err.decode(errors="replace"))
