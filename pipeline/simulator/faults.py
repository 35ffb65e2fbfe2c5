"""Deterministic chance for the simulator: latencies, injected faults, failing tasks.

Input: the simulator's seed and rates, a taskUUID or a request number.
Output: the latency of each result of a task, whether a task fails (`timeoutProvider`), and
which fault (if any) a request meets: HTTP 429 with Retry-After, 500, 503, or a dropped
connection. The same seed gives the same draws, so tests and benchmarks repeat exactly.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from enum import StrEnum


class Fault(StrEnum):
    NONE = "none"
    RATE_LIMIT = "429"
    SERVER_ERROR = "500"
    UNAVAILABLE = "503"
    DROP = "drop"


class ConnectionDropped(Exception):
    """Raised by the app to cut a connection without a complete answer (a simulated fault).

    Over a socket the server closes the connection mid-answer; in process the simulator's
    transport turns it into the `httpx.RemoteProtocolError` a real drop would give."""


def derived_rng(seed: int, *parts: object) -> random.Random:
    """A generator that depends only on the seed and the parts (stable across runs)."""
    text = ":".join(str(p) for p in (seed, *parts))
    return random.Random(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big"))


def request_fault(seed: int, number: int, rates: Sequence[tuple[Fault, float]]) -> Fault:
    """The fault request number `number` meets; rates are tried in order on one draw."""
    draw = derived_rng(seed, "request", number).random()
    edge = 0.0
    for fault, rate in rates:
        edge += max(rate, 0.0)
        if draw < edge:
            return fault
    return Fault.NONE


def result_latencies(seed: int, task_uuid: str, count: int,
                     bounds: tuple[float, float]) -> list[float]:
    """Seconds from submission to each result of a task, uniform within `bounds`."""
    rng = derived_rng(seed, "latency", task_uuid)
    low, high = min(bounds), max(bounds)
    return [rng.uniform(low, high) for _ in range(count)]


def task_fails(seed: int, task_uuid: str, rate: float) -> bool:
    """Whether the provider fails this task (reported as `timeoutProvider` when due)."""
    return rate > 0 and derived_rng(seed, "failure", task_uuid).random() < rate


def random_seed(seed: int, task_uuid: str) -> int:
    """The generation seed of a request that gave none: unsigned 32-bit, from the taskUUID."""
    return derived_rng(seed, "seed", task_uuid).randrange(0, 2**32)
