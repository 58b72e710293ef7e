"""Per-key rate limit: a moving window of ``limit`` requests per minute (the ``limits`` library, in memory: one
server process holds every count). Past it, ``429`` with ``Retry-After`` in whole seconds."""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.exceptions import HTTPException


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._item = RateLimitItemPerMinute(per_minute)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def retry_after(self, key_id: str) -> int | None:
        """Count one request for ``key_id``: ``None`` when it may proceed, else the seconds to wait."""
        if self._limiter.hit(self._item, key_id):
            return None
        reset = self._limiter.get_window_stats(self._item, key_id).reset_time
        return max(1, math.ceil(reset - time.time()))

    def check(self, key_id: str) -> None:
        wait = self.retry_after(key_id)
        if wait is not None:
            raise HTTPException(
                429,
                f"rate limit of {self.per_minute} requests per minute exceeded; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
