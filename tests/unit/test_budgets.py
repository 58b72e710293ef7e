from __future__ import annotations

import asyncio
import time

import pytest

from vy_nexus.execution.budgets import LoopBudgets


def test_a_budget_that_runs_out_raises_timeout_error_at_its_limit() -> None:
    async def main() -> float:
        budgets = LoopBudgets(asyncio.get_running_loop())
        started = time.perf_counter()
        with pytest.raises(TimeoutError):
            async with budgets.after(0.05):
                await asyncio.sleep(5)
        return time.perf_counter() - started

    assert asyncio.run(main()) < 1.0


def test_quick_attempts_leave_nothing_behind_and_share_one_timer() -> None:
    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        budgets = LoopBudgets(loop)
        for _ in range(1000):
            async with budgets.after(60):
                pass
        return len(budgets), len(loop._scheduled)  # type: ignore[attr-defined]

    entries, scheduled = asyncio.run(main())
    assert entries == 0
    assert scheduled == 1  # asyncio.timeout would leave 1000 cancelled timers in the loop's heap


def test_budgets_expire_each_at_its_own_deadline_and_others_keep_running() -> None:
    async def attempt(budgets: LoopBudgets, seconds: float, sleep: float) -> str:
        try:
            async with budgets.after(seconds):
                await asyncio.sleep(sleep)
        except TimeoutError:
            return "timeout"
        return "done"

    async def main() -> list[str]:
        budgets = LoopBudgets(asyncio.get_running_loop())
        return await asyncio.gather(
            attempt(budgets, 0.2, 0.05), attempt(budgets, 0.03, 5), attempt(budgets, 5, 0.1), attempt(budgets, 0.1, 5)
        )

    assert asyncio.run(main()) == ["done", "timeout", "done", "timeout"]


def test_a_cancellation_from_elsewhere_passes_through_as_cancelled_error() -> None:
    async def main() -> None:
        budgets = LoopBudgets(asyncio.get_running_loop())

        async def body() -> None:
            async with budgets.after(60):
                await asyncio.sleep(5)

        job = asyncio.ensure_future(body())
        await asyncio.sleep(0.01)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        assert len(budgets) == 0

    asyncio.run(main())
