"""Time budgets of expert attempts: one timer per event loop instead of one per attempt.

``asyncio.timeout`` schedules a timer for each attempt and cancels it when the attempt ends. A cancelled timer stays
in the loop's heap until the loop next runs its scheduler, which a run of quick experts that never suspend does not
let happen: thousands pile up, each with a copy of the context, and every push into the growing heap costs more.
Here the attempts running on one loop are entries in one heap ordered by deadline; one timer is armed at the
earliest deadline (re-armed only for an earlier one, or when it fires), and an attempt that ends marks its entry and
drops the finished entries from the top.

A budget that runs out cancels its task, and the attempt ends with ``TimeoutError``: ``asyncio.timeout``'s own
semantics (a cancellation that did not come from the budget passes through as ``CancelledError``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from typing import Any


class Budget:
    """``async with budgets.after(seconds):`` — the body is cancelled, and ``TimeoutError`` raised, at the deadline."""

    __slots__ = ("_budgets", "_cancelling", "_entry", "_expired", "_task", "when")

    def __init__(self, budgets: LoopBudgets, when: float) -> None:
        self._budgets = budgets
        self.when = when
        self._expired = False
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = 0
        self._entry: list[Any] | None = None

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a budget must be used inside an asyncio task")
        self._task = task
        self._cancelling = task.cancelling()
        self._budgets._watch(self)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: Any) -> None:
        self._budgets._forget(self)
        if self._expired:
            assert self._task is not None
            if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
                raise TimeoutError from exc

    def _expire(self) -> None:
        assert self._task is not None
        self._expired = True
        self._task.cancel()


class LoopBudgets:
    """The budgets running on one event loop (use it from that loop only)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._heap: list[list[Any]] = []  # [deadline, sequence, Budget, or None once it ended]
        self._sequence = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def after(self, seconds: float) -> Budget:
        return Budget(self, self.loop.time() + seconds)

    def __len__(self) -> int:
        """Entries not yet dropped (ended attempts below a live one wait for it)."""
        return len(self._heap)

    def _watch(self, budget: Budget) -> None:
        entry = [budget.when, next(self._sequence), budget]
        budget._entry = entry
        heapq.heappush(self._heap, entry)
        if budget.when < self._timer_at:
            self._arm(budget.when)

    def _forget(self, budget: Budget) -> None:
        entry = budget._entry
        if entry is not None:
            entry[2] = None
            budget._entry = None
        heap = self._heap
        while heap and heap[0][2] is None:
            heapq.heappop(heap)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(when, self._fire)
        self._timer_at = when

    def _fire(self) -> None:
        # The loop runs a timer once its time has come: every deadline up to the one it was armed for is due.
        due = self._timer_at
        self._timer = None
        self._timer_at = math.inf
        heap = self._heap
        while heap and (heap[0][2] is None or heap[0][0] <= due):
            budget = heapq.heappop(heap)[2]
            if budget is not None:
                budget._entry = None
                budget._expire()
        if heap:
            self._arm(heap[0][0])

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = math.inf
