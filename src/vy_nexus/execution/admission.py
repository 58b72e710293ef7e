"""Admission control: at most ``max_running`` tasks run at once, up to ``max_queued`` more wait for a slot (the
highest priority first, then in arrival order), and beyond that a task is refused (``GovernanceError``, verdict
``denied``).

A semaphore with a bounded queue that works across event loops and threads: the CLI runs each task in its own
``asyncio.run``, the API in one long-lived loop, the heartbeat in a thread, and they all share one limit.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vy_nexus.errors import GovernanceError

if TYPE_CHECKING:
    import asyncio  # imported where a task waits: governance alone (``vy-nexus route``) never loads it (issue 16)


# Not ``frozen``: built on every task's hot path, where a frozen dataclass costs 8x to build; treat as read-only.
@dataclass(slots=True)
class Load:
    running: int
    queued: int


class _Waiter:
    __slots__ = ("future", "granted", "order")

    def __init__(self, order: tuple[int, int]) -> None:
        """A waiter on the running event loop; ``order`` sorts the queue (lowest first)."""
        import asyncio

        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.granted = False
        self.order = order

    def __lt__(self, other: _Waiter) -> bool:
        return self.order < other.order


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class AdmissionControl:
    def __init__(self, max_running: int, max_queued: int) -> None:
        if max_running < 1:
            raise ValueError("max_running must be at least 1")
        self.max_running = max_running
        self.max_queued = max_queued
        self._lock = threading.Lock()
        self._running = 0
        self._waiters: list[_Waiter] = []  # a heap: the highest priority, then the earliest, on top
        self._arrivals = itertools.count()

    def load(self) -> Load:
        with self._lock:
            return Load(self._running, len(self._waiters))

    def slot(self, task_id: str | None = None, priority: int = 0) -> _Slot:
        """Hold a running slot for the body (``async with``); it yields ``True`` when the task had to wait in the
        queue. A higher ``priority`` waits behind fewer tasks (``Priority.rank``)."""
        return _Slot(self, task_id, priority)

    def _take(self, task_id: str | None, priority: int) -> _Waiter | None:
        """A running slot now (``None``), or a place in the queue to wait in; ``GovernanceError`` when it is full."""
        with self._lock:
            if self._running < self.max_running:
                self._running += 1
                return None
            if len(self._waiters) < self.max_queued:
                waiter = _Waiter((-priority, next(self._arrivals)))
                heapq.heappush(self._waiters, waiter)
                return waiter
            raise GovernanceError(
                f"the task queue is full ({self._running} running, {len(self._waiters)} waiting;"
                f" governance.max_queue_size = {self.max_queued})",
                verdict="denied",
                policy="concurrency",
                task_id=task_id,
            )

    async def _wait(self, waiter: _Waiter) -> None:
        import asyncio

        try:
            await waiter.future
        except asyncio.CancelledError:
            with self._lock:
                if not waiter.granted and waiter in self._waiters:
                    self._waiters.remove(waiter)
                    heapq.heapify(self._waiters)
            if waiter.granted:  # the slot was passed to us just as we were cancelled: pass it on
                self._release()
            raise

    def _release(self) -> None:
        with self._lock:
            while self._waiters:
                waiter = heapq.heappop(self._waiters)
                if waiter.future.done():  # cancelled while queued; nothing to hand over
                    continue
                # The slot passes straight to the next waiter: ``_running`` stays the same.
                try:
                    waiter.future.get_loop().call_soon_threadsafe(_wake, waiter.future)
                except RuntimeError:  # its event loop is closed: nobody is waiting any more
                    continue
                waiter.granted = True
                return
            self._running -= 1


class _Slot:
    """``AdmissionControl.slot``: a class rather than an ``asynccontextmanager``, whose generator costs more than
    the whole admission on the hot path."""

    __slots__ = ("_admission", "_priority", "_task_id")

    def __init__(self, admission: AdmissionControl, task_id: str | None, priority: int) -> None:
        self._admission = admission
        self._task_id = task_id
        self._priority = priority

    async def __aenter__(self) -> bool:
        waiter = self._admission._take(self._task_id, self._priority)
        if waiter is None:
            return False
        await self._admission._wait(waiter)
        return True

    async def __aexit__(self, *_exc: object) -> None:
        self._admission._release()
