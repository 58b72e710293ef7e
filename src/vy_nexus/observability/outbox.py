"""``ByteOutbox``: encoded records gathered in one growing buffer, handed to a sink from a background thread.

The writer process link's queue. Records are bytes already (``wire``), so the hot path copies them into a single
``bytearray`` under a lock (about 0.1 µs) instead of keeping one object per record alive until the next send: tens of
thousands of live objects per interval measurably slowed the whole process (allocator and cache pressure), a buffer
does not. The thread wakes every ``interval`` seconds and passes everything gathered to ``sink(data, count)``;
``flush`` does the same at once in the calling thread. Beyond ``max_bytes`` waiting, records are dropped and counted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

_log = logging.getLogger(__name__)


class ByteOutbox:
    def __init__(
        self,
        sink: Callable[[bytes, int], None],
        *,
        name: str,
        interval: float = 0.1,
        max_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self._sink = sink
        self.name = name
        self.interval = interval
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self._count = 0
        self._lock = threading.Lock()  # guards the buffer
        self._send_lock = threading.Lock()  # keeps sends in order
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.sent = 0

    @property
    def pending(self) -> int:
        """Records gathered and not yet handed to the sink."""
        return self._count

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def append(self, record: bytes) -> None:
        """Gather one record. Never blocks on the sink."""
        with self._lock:
            if len(self._buffer) < self.max_bytes:
                self._buffer += record
                self._count += 1
            else:
                self.dropped += 1

    def start(self) -> None:
        if self.running:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"vy-nexus-{self.name}", daemon=True)
        self._thread.start()

    def flush(self) -> None:
        """Hand everything gathered so far to the sink, in this thread."""
        with self._send_lock:
            with self._lock:
                data, count = bytes(self._buffer), self._count
                self._buffer.clear()
                self._count = 0
            if count:
                try:
                    self._sink(data, count)
                except Exception:  # the sink reports its own trouble; the thread must live on
                    _log.exception("%s: handing over %d records failed", self.name, count)
                else:
                    self.sent += count

    def stop(self, timeout: float = 10.0) -> None:
        """Hand over everything, then end the thread. Safe to call more than once."""
        thread = self._thread
        if thread is not None:
            self._stopping = True
            self._wake.set()
            thread.join(timeout)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()
