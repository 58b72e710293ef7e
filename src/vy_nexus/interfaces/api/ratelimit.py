"""Per-key rate limit: ``limit`` requests per minute, counted in a sliding window, in this server's memory.

A sliding-window counter (two counts per key: this minute's and the previous minute's, the previous one weighted by
how much of it still lies inside the last 60 seconds) answers in constant time and memory and starts no threads.
The ``limits`` library's in-memory storage it replaces kept every request's time stamp and started a timer thread
every 10 ms under load, which cost the server a thread start, and the event loop a wait for the GIL, per few
requests (benchmarks/api_load.py). Past the limit: ``429`` with ``Retry-After`` in whole seconds.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.exceptions import HTTPException

WINDOW_SECONDS = 60.0


@dataclass(slots=True)
class _Counts:
    window: int
    current: int = 0
    previous: int = 0


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self._clock = clock
        self._counts: dict[str, _Counts] = {}
        self._lock = threading.Lock()

    def retry_after(self, key_id: str) -> int | None:
        """Count one request for ``key_id``: ``None`` when it may proceed, else the seconds to wait."""
        now = self._clock()
        window, into = divmod(now, WINDOW_SECONDS)
        fraction = into / WINDOW_SECONDS
        with self._lock:
            counts = self._counts.get(key_id)
            if counts is None:
                counts = self._counts[key_id] = _Counts(int(window))
            elif counts.window != int(window):
                counts.previous = counts.current if counts.window == int(window) - 1 else 0
                counts.current = 0
                counts.window = int(window)
            if counts.previous * (1.0 - fraction) + counts.current < self.per_minute:
                counts.current += 1
                return None
            return self._wait(counts, fraction)

    def _wait(self, counts: _Counts, fraction: float) -> int:
        """Seconds until the weighted count falls below the limit (refused requests are not counted)."""
        room = self.per_minute - counts.current
        if room <= 0 or counts.previous == 0:  # this minute's own count is at the limit: the next minute
            wait = (1.0 - fraction) * WINDOW_SECONDS
        else:  # the previous minute's weight has to shrink first
            wait = (1.0 - room / counts.previous - fraction) * WINDOW_SECONDS
        return max(1, math.ceil(wait))

    def check(self, key_id: str) -> None:
        wait = self.retry_after(key_id)
        if wait is not None:
            raise HTTPException(
                429,
                f"rate limit of {self.per_minute} requests per minute exceeded; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
