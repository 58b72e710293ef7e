"""The core as a long-lived service: blocking experts off the loop, hundreds of concurrent tasks under the
governance limits, cancel by id, the task store following every task, the async lifecycle."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from vy_nexus.config import Settings, load_settings
from vy_nexus.errors import GovernanceError, TaskCancelledError
from vy_nexus.experts.base import BaseExpert, ExpertContext, ExpertOutput
from vy_nexus.store import TaskState, open_task_store
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task


class SleepyExpert(BaseExpert):
    """Blocks its thread like careless synchronous code does."""

    id = "sleepy"
    name = "Sleepy"
    capabilities = ("sleepy",)

    def execute(self, task: Task) -> ExpertOutput:  # type: ignore[override]  # a plain def: runs in a thread
        time.sleep(float(task.context.get("seconds", 2.0)))
        return ExpertOutput("woke up")


class DeclaredBlockingExpert(BaseExpert):
    """Async, but declares that it blocks: gets a private loop in a worker thread, and is really cancelled."""

    id = "declared"
    name = "Declared"
    capabilities = ("declared",)
    blocking = True
    cancelled: ClassVar[list[str]] = []
    loops: ClassVar[list[int]] = []

    async def execute(self, task: Task) -> ExpertOutput:
        self.loops.append(id(asyncio.get_running_loop()))
        try:
            await asyncio.sleep(float(task.context.get("seconds", 0)))
        except asyncio.CancelledError:
            DeclaredBlockingExpert.cancelled.append(task.id)
            raise
        answer = await self.context.llm.generate("say something")  # the reasoning core lives on the main loop
        return ExpertOutput(answer.text)


class NapExpert(BaseExpert):
    """An async expert that naps and records how many of it run at once."""

    id = "nap"
    name = "Nap"
    capabilities = ("nap",)
    running = 0
    peak = 0

    async def execute(self, task: Task) -> ExpertOutput:
        NapExpert.running += 1
        NapExpert.peak = max(NapExpert.peak, NapExpert.running)
        try:
            await asyncio.sleep(float(task.context.get("seconds", 0.2)))
        finally:
            NapExpert.running -= 1
        return ExpertOutput("rested")


class QuickExpert(BaseExpert):
    id = "quick"
    name = "Quick"
    capabilities = ("quick",)

    async def execute(self, task: Task) -> ExpertOutput:
        return ExpertOutput("quick answer", confidence=0.9)


def make_settings(home: Path, **overrides: str) -> Settings:
    environ = {"VY_NEXUS_STORE__FLUSH_INTERVAL_SECONDS": "0.02", **overrides}
    return load_settings(home, environ=environ)


def build(home: Path, *experts: BaseExpert, **overrides: str) -> VyNexus:
    system = VyNexus(make_settings(home, **overrides), observe=False, load_plugins=False)
    for expert in experts:
        system.register(expert, source="test")
    return system


def pick(expert_id: str, text: str = "do it", **context: Any) -> Task:
    return Task(description=text, context={"experts": [expert_id], **context})


def test_a_blocking_expert_times_out_at_its_limit_and_does_not_stall_other_tasks(home: Path) -> None:
    system = build(home, SleepyExpert(), QuickExpert(), VY_NEXUS_EXECUTOR__EXPERT_TIMEOUT_SECONDS="0.5")

    async def scenario() -> tuple[Any, float, Any, float]:
        async with system:
            started = time.perf_counter()
            slow_job = asyncio.create_task(system.submit(pick("sleepy", seconds=2.0)))
            quick_job = asyncio.create_task(system.submit(pick("quick")))
            quick = await quick_job
            quick_at = time.perf_counter() - started
            slow = await slow_job
            return slow, time.perf_counter() - started, quick, quick_at

    slow, slow_at, quick, quick_at = asyncio.run(scenario())
    assert quick.ok and quick_at < 0.3
    assert not slow.ok and slow.results[0].error_kind == "timeout"
    assert 0.45 < slow_at < 1.5
    assert system.executor.pool.abandoned in (0, 1)  # the sleeping thread is abandoned, bounded by the pool


def test_a_declared_blocking_expert_runs_off_the_loop_and_is_really_cancelled(home: Path) -> None:
    DeclaredBlockingExpert.cancelled.clear()
    DeclaredBlockingExpert.loops.clear()
    system = build(home, DeclaredBlockingExpert(), VY_NEXUS_EXECUTOR__EXPERT_TIMEOUT_SECONDS="0.3")

    async def scenario() -> tuple[Any, Any, int]:
        async with system:
            ok = await system.submit(pick("declared", seconds=0))
            late = await system.submit(pick("declared", seconds=5))
            return ok, late, id(asyncio.get_running_loop())

    ok, late, main_loop = asyncio.run(scenario())
    assert ok.ok and ok.output == "A scripted answer from the test reasoning core."
    assert DeclaredBlockingExpert.loops[0] != main_loop
    assert late.results[0].error_kind == "timeout"
    deadline = time.monotonic() + 2
    while not DeclaredBlockingExpert.cancelled and time.monotonic() < deadline:
        time.sleep(0.01)
    assert DeclaredBlockingExpert.cancelled == [late.task_id]


def test_two_hundred_concurrent_tasks_respect_the_concurrency_limit(home: Path) -> None:
    NapExpert.peak = 0
    system = build(
        home,
        NapExpert(),
        VY_NEXUS_GOVERNANCE__MAX_CONCURRENT_TASKS="50",
        VY_NEXUS_GOVERNANCE__MAX_QUEUE_SIZE="200",
    )

    async def scenario() -> tuple[list[Any], float]:
        async with system:
            started = time.perf_counter()
            results = await asyncio.gather(*(system.submit(pick("nap", f"nap {i}")) for i in range(200)))
            return results, time.perf_counter() - started

    results, took = asyncio.run(scenario())
    assert all(r.ok for r in results)
    assert NapExpert.peak == 50  # the limit held, and was used
    assert took < 200 * 0.2 / 10  # 4 rounds of 0.2 s, far below one after another
    with open_task_store(system.settings) as store:
        assert store.list_tasks(states=[TaskState.SUCCEEDED], limit=1).total == 200


def test_a_full_queue_refuses_and_the_refusal_is_recorded(home: Path) -> None:
    system = build(
        home, NapExpert(), VY_NEXUS_GOVERNANCE__MAX_CONCURRENT_TASKS="1", VY_NEXUS_GOVERNANCE__MAX_QUEUE_SIZE="0"
    )

    async def scenario() -> list[Any]:
        async with system:
            return await asyncio.gather(
                system.submit(pick("nap", "first", seconds=0.3)),
                system.submit(pick("nap", "second", seconds=0.3)),
                return_exceptions=True,
            )

    first, second = asyncio.run(scenario())
    assert first.ok and isinstance(second, GovernanceError)
    with open_task_store(system.settings) as store:
        refused = store.list_tasks(states=[TaskState.FAILED]).items
    assert [r.description for r in refused] == ["second"] and "queue is full" in (refused[0].error or "")


def test_cancel_by_id_stops_the_running_work_and_records_it(home: Path) -> None:
    system = build(home, NapExpert())
    task = pick("nap", "long nap", seconds=30)

    async def scenario() -> BaseException | None:
        async with system:
            job = asyncio.create_task(system.submit(task))
            await asyncio.sleep(0)  # submit records the task before its first await
            while system.get_task(task.id).state is not TaskState.RUNNING:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(system.cancel, task.id)
            try:
                await job
            except TaskCancelledError as exc:
                return exc
            return None

    started = time.perf_counter()
    error = asyncio.run(scenario())
    assert isinstance(error, TaskCancelledError) and time.perf_counter() - started < 5
    record = VyNexus(make_settings(home), observe=False, load_plugins=False).get_task(task.id)
    assert record.state is TaskState.CANCELLED and "cancelled on request" in (record.error or "")


def test_cancel_from_another_process_reaches_the_owner(home: Path) -> None:
    system = build(home, NapExpert())
    task = pick("nap", "remote nap", seconds=30)

    def cancel_from_elsewhere() -> None:
        with open_task_store(make_settings(home)) as store:  # like `vy-nexus tasks cancel ID` in another shell
            while not store.list_tasks(states=[TaskState.RUNNING]).total:
                time.sleep(0.01)
            store.request_cancel(task.id)

    async def scenario() -> None:
        async with system:
            canceller = threading.Thread(target=cancel_from_elsewhere)
            canceller.start()
            with pytest.raises(TaskCancelledError, match="another process"):
                await system.submit(task)
            canceller.join()

    asyncio.run(scenario())
    with open_task_store(make_settings(home)) as store:
        assert store.get(task.id).state is TaskState.CANCELLED


def test_run_records_the_task_durably_and_the_expert_context_can_offload(home: Path) -> None:
    seen: list[str] = []

    class OffloadingExpert(BaseExpert):
        id = "offloader"
        name = "Offloader"
        capabilities = ("offload",)

        async def initialize(self, context: ExpertContext) -> None:
            await super().initialize(context)
            assert context.offload is not None

        async def execute(self, task: Task) -> ExpertOutput:
            name = await self.run_blocking(lambda: threading.current_thread().name)
            seen.append(name)
            return ExpertOutput(name)

    system = build(home, OffloadingExpert())
    with system:
        result = system.run(pick("offloader"))
        record = system.get_task(result.task_id)
    assert seen[0].startswith("vy-nexus-expert")
    assert record.state is TaskState.SUCCEEDED and record.output == seen[0]
    assert record.decision is not None and record.decision["strategy"] == "explicit"


def test_astop_shuts_experts_down_and_closes_the_store(home: Path) -> None:
    quick = QuickExpert()
    system = build(home, quick)

    async def scenario() -> None:
        async with system:
            await system.submit(pick("quick"))
            assert quick.initialized

    asyncio.run(scenario())
    assert not quick.initialized
    assert not system._store_open
