"""A queue drained in batches by one background thread: how observers keep disk off the hot path.

``offer`` is the only call the hot path makes: a bounded ``deque.append`` (atomic under the GIL, no lock, no
signalling). The writer thread wakes every ``interval`` seconds (or when ``flush``/``stop`` ask; never per item,
because every wake-up makes it compete with the hot path for the GIL) and hands everything waiting to ``sink`` in
batches of at most ``batch_size``. ``flush`` waits until everything offered before the call has reached the sink;
``stop`` ends the thread and drains the queue in the calling thread; ``start`` may follow. Without a running thread
(``start`` never called) ``flush`` and ``stop`` drain in the calling thread, so nothing offered is silently kept.

A sink that raises loses that batch only: the error is logged and counted, the thread keeps going.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_log = logging.getLogger(__name__)


class _FlushMarker:
    """Placed in the queue by ``flush``; set once every item before it has been written."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class BatchWriter(Generic[T]):
    def __init__(
        self,
        sink: Callable[[Sequence[T]], None],
        *,
        name: str,
        interval: float = 0.5,
        batch_size: int = 4096,
        max_pending: int = 200_000,
    ) -> None:
        self.name = name
        self.interval = interval
        self._sink = sink
        self.batch_size = batch_size
        self.max_pending = max_pending
        self._queue: deque[T | _FlushMarker] = deque()
        self._drain_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        writer = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork(writer))
        self.dropped = 0
        self.failed_batches = 0
        self.written = 0

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _forget_parent(self) -> None:
        """Right after a fork, in the child (a Celery prefork worker, say): the thread is gone and its lock may have
        been copied held. Start afresh; what the parent had queued is the parent's to write."""
        self._thread = None
        self._drain_lock = threading.Lock()
        self._wake = threading.Event()
        self._queue.clear()

    def offer(self, item: T) -> None:
        """Queue one item. Never blocks; drops (and counts) the item when ``max_pending`` items wait already."""
        queue = self._queue
        if len(queue) < self.max_pending:
            queue.append(item)
        else:
            self.dropped += 1

    def start(self) -> None:
        """Start the thread (again, after ``stop``). Idempotent while running."""
        if self.running:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"vy-nexus-{self.name}", daemon=True)
        self._thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every item offered before this call has been handed to the sink. True when it was."""
        if not self.running:
            self._drain()
            return True
        marker = _FlushMarker()
        self._queue.append(marker)
        self._wake.set()
        return marker.done.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """End the thread, then drain what is left in this thread. Safe to call more than once."""
        thread = self._thread
        if thread is not None:
            self._stopping = True
            self._wake.set()
            thread.join(timeout)
            self._thread = None
        self._drain()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.interval)
            self._wake.clear()
            self._drain()

    def _drain(self) -> None:
        """Write what is queued now, not what arrives meanwhile: a writer that kept taking the newcomers would
        write many small batches back to back, each paying the fixed costs (lock, fsync, transaction)."""
        with self._drain_lock:
            queue = self._queue
            remaining = len(queue)
            while remaining:
                batch: list[T] = []
                markers: list[_FlushMarker] = []
                while remaining and len(batch) < self.batch_size:
                    item = queue.popleft()
                    remaining -= 1
                    if isinstance(item, _FlushMarker):
                        markers.append(item)
                        break
                    batch.append(item)
                if batch:
                    self._write(batch)
                for marker in markers:
                    marker.done.set()

    def _write(self, batch: list[T]) -> None:
        try:
            self._sink(batch)
        except Exception:  # an observer's disk trouble must not kill its thread
            self.failed_batches += 1
            _log.exception("%s: writing a batch of %d failed", self.name, len(batch))
        else:
            self.written += len(batch)


def _after_fork(writer: weakref.ref[BatchWriter[Any]]) -> None:
    alive = writer()
    if alive is not None:
        alive._forget_parent()
