"""The per-key sliding-window rate limit, on an injected clock."""

from __future__ import annotations

import pytest

from vy_nexus.interfaces.api.ratelimit import RateLimiter


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_limit_holds_per_key_and_says_how_long_to_wait() -> None:
    clock = Clock(600.0)  # the start of a minute
    limiter = RateLimiter(5, clock)
    assert [limiter.retry_after("a") for _ in range(5)] == [None] * 5
    clock.now = 615.0
    assert limiter.retry_after("a") == 45  # this minute is full: until the next one
    assert limiter.retry_after("b") is None  # another key has its own count


def test_the_previous_minute_weighs_less_as_it_slides_out() -> None:
    clock = Clock(600.0)
    limiter = RateLimiter(10, clock)
    for _ in range(10):
        assert limiter.retry_after("k") is None
    clock.now = 660.0  # next minute, nothing of it used yet: the previous ten still weigh fully
    assert limiter.retry_after("k") == 1
    clock.now = 661.0  # the previous minute weighs 9.83: one more fits
    assert limiter.retry_after("k") is None
    assert limiter.retry_after("k") == 5  # 9.83 + 1 >= 10 until the previous minute weighs under 9, at 666 s
    clock.now = 666.5
    assert limiter.retry_after("k") is None
    clock.now = 690.0  # half of the previous minute slid out: 5 + 2 counted, three more fit
    assert [limiter.retry_after("k") is None for _ in range(4)] == [True, True, True, False]
    clock.now = 780.0  # two minutes later nothing counts
    assert limiter.retry_after("k") is None


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)
