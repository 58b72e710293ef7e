"""``ByteOutbox``: encoded records gathered in one buffer, handed to a sink from a background thread.

The writer process link's queue. Records are bytes already (``wire``), one JSON line each. The hot path copies each
into a single ``bytearray`` (one C call, atomic under the GIL, so no lock) and the record itself is freed at once.
Keeping one object per record alive until the next send instead (a deque of bytes) measurably slowed the whole
process: allocator and cache pressure, worse the more records wait. The thread wakes every ``interval`` seconds and
hands what gathered to ``sink(data)``; ``flush`` does the same at once in the calling thread. It copies the
buffer and then deletes that many bytes from its front (two C calls): a record appended in between stays for the next
hand-over. Beyond ``max_bytes`` waiting, records are dropped and counted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from vy_nexus.observability.interval import IntervalThread

_log = logging.getLogger(__name__)

RECORD_END = b"\n"


class ByteOutbox(IntervalThread):
    def __init__(
        self,
        sink: Callable[[bytes], None],
        *,
        name: str,
        interval: float = 0.1,
        max_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        super().__init__(name, interval)
        self._sink = sink
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self._send_lock = threading.Lock()  # one hand-over at a time, in order
        self.dropped = 0
        self.sent_bytes = 0

    @property
    def pending(self) -> int:
        """Records gathered and not yet handed to the sink (counts line ends: for status, not the hot path)."""
        return self._buffer.count(RECORD_END)

    def append(self, record: bytes) -> None:
        """Gather one record (newline-terminated). Never blocks."""
        buffer = self._buffer
        if len(buffer) < self.max_bytes:
            buffer += record
        else:
            self.dropped += 1

    def flush(self) -> None:
        """Hand everything gathered so far to the sink, in this thread."""
        with self._send_lock:
            buffer = self._buffer
            data = bytes(buffer)
            if not data:
                return
            del buffer[: len(data)]
            try:
                self._sink(data)
            except Exception:  # the sink reports its own trouble; the thread must live on
                _log.exception("%s: handing over %d bytes failed", self.name, len(data))
            else:
                self.sent_bytes += len(data)

    def work(self) -> None:
        self.flush()
