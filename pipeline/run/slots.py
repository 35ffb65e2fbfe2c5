"""The ready queue: jobs ready to send a task in; a slot each, highest priority first, out.

A slot is a task at the service. At most `size` are held at once; a job that asks while
none is free waits, and a freed slot goes to the waiting job with the highest priority (the
longest remaining path), ties in the order they asked.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class Slots:
    """At most `size` holders; waiters are served highest priority first."""

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiting: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def acquire(self, priority: float) -> None:
        if self.free > 0 and not self._waiting:
            self.free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (-priority, next(self._order), future))
        await future

    def release(self) -> None:
        """Hand the slot to the first waiter still waiting (a cancelled one is skipped)."""
        while self._waiting:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(None)
                return
        self.free += 1

    @property
    def waiting(self) -> int:
        return sum(not future.done() for _, _, future in self._waiting)
