"""In-flight tasks: what is running right now, so a shutdown can let it finish or cancel it after a grace period.

Tasks may run on different event loops (each ``VyNexus.run`` has its own); cancellation is scheduled on each
task's own loop, thread-safely. A task cancelled by the shutdown ends with ``SafetyError`` instead of a bare
``CancelledError``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from vy_nexus.errors import SafetyError

T = TypeVar("T")


def _cancel_later(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any], delay: float) -> None:
    loop.call_later(delay, task.cancel)


class InFlightTasks:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[asyncio.Task[Any], asyncio.AbstractEventLoop] = {}
        self._cancel_reason: str | None = None
        self._grace: float | None = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._tasks)

    async def run(self, work: Coroutine[Any, Any, T], *, task_id: str | None = None) -> T:
        """Run ``work`` as a tracked task; ``SafetyError`` when a shutdown cancels it."""
        loop = asyncio.get_running_loop()
        inner = loop.create_task(work)
        with self._lock:
            self._tasks[inner] = loop
            grace = self._grace
        if grace is not None:  # a shutdown began while this task was being admitted
            loop.call_later(grace, inner.cancel)
        try:
            return await inner
        except asyncio.CancelledError:
            outer = asyncio.current_task()
            if inner.cancelled() and self._cancel_reason is not None and (outer is None or not outer.cancelling()):
                raise SafetyError(
                    f"task cancelled: vy-nexus is shutting down ({self._cancel_reason})", task_id=task_id
                ) from None
            raise
        finally:
            with self._lock:
                self._tasks.pop(inner, None)

    def cancel_after(self, grace_seconds: float, reason: str) -> int:
        """Give every in-flight task ``grace_seconds`` to finish, then cancel it. Returns how many were running."""
        with self._lock:
            self._cancel_reason = reason
            self._grace = grace_seconds
            running = list(self._tasks.items())
        for task, loop in running:
            try:
                loop.call_soon_threadsafe(_cancel_later, loop, task, grace_seconds)
            except RuntimeError:  # the loop is closed; its task is gone with it
                continue
        return len(running)
