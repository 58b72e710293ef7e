"""A bounded thread pool for expert work that would block the event loop.

Python cannot stop a thread. When the caller of ``run`` is cancelled (a timeout, a cancel by id, a shutdown), the
await returns at once and the thread is *abandoned*: it finishes in the background and its result is dropped.
Abandoned threads are bounded by the pool size — once every worker is busy, new blocking calls wait for a free
worker inside their own time budget, so a hanging expert can never make the process start unbounded threads — and
``abandoned`` counts them for ``status``. Async work sent with ``run_coroutine`` runs on a private event loop in
the worker thread and *is* cancelled at its next ``await``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class BlockingPool:
    def __init__(self, max_workers: int) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers, thread_name_prefix="vy-nexus-expert")
        self._lock = threading.Lock()
        self._abandoned = 0

    @property
    def abandoned(self) -> int:
        """Threads still running work whose caller has gone (timed out or cancelled)."""
        with self._lock:
            return self._abandoned

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in a worker thread with the caller's context variables (task id, token sink)."""
        context = contextvars.copy_context()
        future = self._pool.submit(context.run, fn)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if not future.done():  # it started: the thread runs on, abandoned
                with self._lock:
                    self._abandoned += 1
                future.add_done_callback(self._forget)
            raise

    async def run_coroutine(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run an async function on a private event loop in a worker thread; cancelling the caller cancels it."""
        started = threading.Event()
        handle: list[tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = []
        abandoned = threading.Event()

        async def main() -> T:
            current = asyncio.current_task()
            assert current is not None
            handle.append((asyncio.get_running_loop(), current))
            started.set()
            if abandoned.is_set():
                raise asyncio.CancelledError
            return await factory()

        try:
            return await self.run(lambda: asyncio.run(main()))
        except asyncio.CancelledError:
            abandoned.set()
            if started.is_set():
                loop, task = handle[0]
                with contextlib.suppress(RuntimeError):  # its loop already closed: the work is over
                    loop.call_soon_threadsafe(task.cancel)
            raise

    def _forget(self, _future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._abandoned -= 1

    def shutdown(self) -> None:
        """Stop taking work; running threads finish on their own (they are never joined here)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


async def on_loop(loop: asyncio.AbstractEventLoop, work: Awaitable[T]) -> T:
    """Await ``work`` on ``loop`` (another thread's loop) from the current loop; cancellation crosses over."""

    async def wrapper() -> T:
        return await work

    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(wrapper(), loop))
