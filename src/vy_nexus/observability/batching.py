"""A queue drained in batches by one background thread: how observers keep disk off the hot path.

``offer`` is the only call the hot path makes: a bounded ``deque.append`` (atomic under the GIL, no lock, no
signalling). The writer thread wakes every ``interval`` seconds (or when ``flush``/``stop`` ask; never per item,
because every wake-up makes it compete with the hot path for the GIL) and hands everything waiting to ``sink`` in
batches of at most ``batch_size``. ``flush`` waits until everything offered before the call has reached the sink;
``stop`` drains the queue and joins the thread. Without a running thread (``start`` never called) ``flush`` and
``stop`` drain in the calling thread, so nothing offered is silently kept.

A sink that raises loses that batch only: the error is logged and counted, the thread keeps going.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from vy_nexus.observability.interval import IntervalThread

T = TypeVar("T")

_log = logging.getLogger(__name__)


class _FlushMarker:
    """Placed in the queue by ``flush``; set once every item before it has been written."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class BatchWriter(IntervalThread, Generic[T]):
    def __init__(
        self,
        sink: Callable[[Sequence[T]], None],
        *,
        name: str,
        batch_size: int = 256,
        interval: float = 0.5,
        max_pending: int = 200_000,
    ) -> None:
        super().__init__(name, interval)
        self._sink = sink
        self.batch_size = batch_size
        self.max_pending = max_pending
        self._queue: deque[T | _FlushMarker] = deque()
        self._drain_lock = threading.Lock()
        self.dropped = 0
        self.failed_batches = 0
        self.written = 0

    @property
    def pending(self) -> int:
        return len(self._queue)

    def offer(self, item: T) -> None:
        """Queue one item. Never blocks; drops (and counts) the item when ``max_pending`` items wait already."""
        queue = self._queue
        if len(queue) < self.max_pending:
            queue.append(item)
        else:
            self.dropped += 1

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every item offered before this call has been handed to the sink. True when it was."""
        if not self.running:
            self._drain()
            return True
        marker = _FlushMarker()
        self._queue.append(marker)
        self.wake()
        return marker.done.wait(timeout)

    def work(self) -> None:
        self._drain()

    def _drain(self) -> None:
        with self._drain_lock:
            queue = self._queue
            while queue:
                batch: list[T] = []
                markers: list[_FlushMarker] = []
                while queue and len(batch) < self.batch_size:
                    item = queue.popleft()
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


class BatchedObserver(Generic[T]):
    """Base for observers that queue items on the hot path and write them from a ``BatchWriter`` thread.

    Subclasses set ``self._writer`` in ``__init__`` and implement the subscriber ``__call__``.
    """

    _writer: BatchWriter[T]

    @property
    def pending(self) -> int:
        return self._writer.pending

    @property
    def dropped(self) -> int:
        return self._writer.dropped

    def start(self) -> None:
        self._writer.start()

    def flush(self, timeout: float = 10.0) -> bool:
        return self._writer.flush(timeout)

    def stop(self) -> None:
        self._writer.stop()
