"""In-flight tasks: what is running right now, so it can be cancelled by id or by a shutdown.

Cancellation requests come from other threads (the stop watcher, the task store's poller, an API worker thread), so
each is scheduled on the task's own event loop with ``call_soon_threadsafe``. A task cancelled this way ends with
``TaskCancelledError`` (by id) or ``SafetyError`` (shutdown) instead of a bare ``CancelledError``.
"""

from __future__ import annotations

import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from vy_nexus.errors import SafetyError, TaskCancelledError

if TYPE_CHECKING:
    import asyncio  # imported in ``run``: a system that only routes never loads it (issue 16, cold start)

T = TypeVar("T")


@dataclass(slots=True)
class _Running:
    task: asyncio.Task[Any]
    loop: asyncio.AbstractEventLoop
    active: bool = True
    cancel_reason: str | None = None
    cancelled_by_us: bool = False


def _cancel(entry: _Running) -> None:
    """On the task's loop: cancel it, unless it already left ``InFlightTasks.run``."""
    if entry.active and not entry.cancelled_by_us:
        entry.cancelled_by_us = True
        entry.task.cancel()


def _cancel_later(entry: _Running, delay: float) -> None:
    entry.loop.call_later(delay, _cancel, entry)


class InFlightTasks:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._shutdown_reason: str | None = None
        self._grace: float | None = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._running)

    async def run(self, work: Coroutine[Any, Any, T], *, task_id: str) -> T:
        """Await ``work`` in the caller's asyncio task, tracked under ``task_id``: a cancel by id or a shutdown
        cancels that task, and the caller gets ``TaskCancelledError`` or ``SafetyError`` instead of a bare
        ``CancelledError`` (a cancellation of the caller's own is passed on as it is)."""
        import asyncio

        current = asyncio.current_task()
        if current is None:
            raise RuntimeError("InFlightTasks.run must be awaited inside an asyncio task")
        loop = current.get_loop()
        entry = _Running(current, loop)
        with self._lock:
            self._running[task_id] = entry
            grace = self._grace
        if grace is not None:  # a shutdown began while this task was being admitted
            loop.call_later(grace, _cancel, entry)
        try:
            return await work
        except asyncio.CancelledError:
            if entry.cancelled_by_us and current.uncancel() == 0:
                if entry.cancel_reason is not None:
                    raise TaskCancelledError(f"task cancelled: {entry.cancel_reason}", task_id=task_id) from None
                raise SafetyError(
                    f"task cancelled: vy-nexus is shutting down ({self._shutdown_reason})", task_id=task_id
                ) from None
            raise
        finally:
            entry.active = False
            with self._lock:
                if self._running.get(task_id) is entry:
                    del self._running[task_id]

    def cancel(self, task_id: str, reason: str) -> bool:
        """Cancel one running task now; ``False`` when it is not running in this process."""
        with self._lock:
            entry = self._running.get(task_id)
            if entry is None:
                return False
            entry.cancel_reason = reason
        try:
            entry.loop.call_soon_threadsafe(_cancel, entry)
        except RuntimeError:  # its loop is closed: the task is gone with it
            return False
        return True

    def reopen(self) -> None:
        """Forget a finished shutdown (``cancel_after``): tasks that start from now on run to their end again."""
        with self._lock:
            self._shutdown_reason = None
            self._grace = None

    def cancel_after(self, grace_seconds: float, reason: str) -> int:
        """Give every in-flight task ``grace_seconds`` to finish, then cancel it. Returns how many were running."""
        with self._lock:
            self._shutdown_reason = reason
            self._grace = grace_seconds
            running = list(self._running.values())
        for entry in running:
            try:
                entry.loop.call_soon_threadsafe(_cancel_later, entry, grace_seconds)
            except RuntimeError:
                continue
        return len(running)
