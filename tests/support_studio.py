"""Helpers for studio tests: a rendered storyboard, the page's session token, and a reader of
the studio's event stream that a test can wait on.

Input: a folder, a studio's address. Output: the storyboard path after a real run on the
embedded simulator; the token; the events as they arrive (kind, data), collected by a
background thread that is stopped on leaving its `with`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner

from pipeline.cli import main

Event = tuple[str, dict[str, Any]]


def render(story: Path, *args: str) -> dict[str, Any]:
    """`storyreel run STORY --json` on the simulator, quickly; the summary. In a thread of its
    own, as a browser driver may be running an event loop in this one."""
    command = ["run", str(story), "--sim-latency", "0,0.05", "--json", *args]
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(CliRunner().invoke, main, command).result()
    assert result.exit_code == 0, (result.stderr, result.exception)
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def token_of(html: str) -> str:
    found = re.search(r'<meta name="studio-token" content="([^"]+)">', html)
    assert found, "the page carries no session token"
    return found.group(1)


class Events:
    """The events one connection to `/api/events` has received so far."""

    def __init__(self) -> None:
        self.items: list[Event] = []
        self.text: list[str] = []
        self._changed = threading.Condition()

    def add(self, kind: str, data: dict[str, Any], raw: str) -> None:
        with self._changed:
            self.items.append((kind, data))
            self.text.append(raw)
            self._changed.notify_all()

    def wait_for(self, test: Callable[[list[Event]], bool], timeout: float = 300.0) -> list[Event]:
        """Until `test(events so far)` holds; the events. Fails on timeout."""
        with self._changed:
            ok = self._changed.wait_for(lambda: test(self.items), timeout)
            assert ok, f"waited {timeout} s for events; got {[k for k, _ in self.items]}"
            return list(self.items)

    def kinds(self) -> list[str]:
        with self._changed:
            return [k for k, _ in self.items]


@contextmanager
def listening(url: str) -> Iterator[Events]:
    """Read `url`'s event stream in a thread; the connection is closed on leaving."""
    events = Events()
    client = httpx.Client(timeout=httpx.Timeout(10.0, read=None))
    opened = threading.Event()
    stream: list[httpx.Response] = []

    def read() -> None:
        with client.stream("GET", url) as answer:
            stream.append(answer)
            opened.set()
            kind, data = "message", ""
            try:
                for line in answer.iter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        data = line[6:]
                    elif not line and data:
                        events.add(kind, json.loads(data), data)
                        kind, data = "message", ""
            except httpx.HTTPError:
                pass  # closed by the test

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    try:
        assert opened.wait(120), "the event stream did not open"
        events.wait_for(lambda items: any(k == "hello" for k, _ in items), 120)
        yield events
    finally:
        if stream:
            stream[0].close()
        client.close()
        thread.join(10)
