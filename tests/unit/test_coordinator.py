from __future__ import annotations

import asyncio
import math
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from spine_experts import CrashingExpert, FlakyExpert, PickyExpert, SlowExpert, make_expert
from vy_nexus.errors import TaskError
from vy_nexus.events import Event, EventBus
from vy_nexus.execution.coordinator import Coordinator
from vy_nexus.execution.local import LocalExecutor, is_retryable
from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.tasks import RoutingDecision, Task


def decision(task: Task, *expert_ids: str) -> RoutingDecision:
    return RoutingDecision(
        task_id=task.id,
        expert_ids=list(expert_ids),
        confidences=dict.fromkeys(expert_ids, 0.8),
        strategy="test",
        reason="test",
    )


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


COORDINATOR_OPTIONS = {"expert_timeout", "task_timeout", "aggregation", "events"}


def coordinator_for(registry: ExpertRegistry, **options: Any) -> Coordinator:
    """A coordinator over a local executor; options go to whichever of the two takes them."""
    ours = {k: v for k, v in options.items() if k in COORDINATOR_OPTIONS}
    theirs = {k: v for k, v in options.items() if k not in COORDINATOR_OPTIONS}
    return Coordinator(LocalExecutor(registry, **theirs), **ours)


def test_parallel_experts_and_crash_isolation() -> None:
    registry = ExpertRegistry()
    registry.register(make_expert("a", ("x",), output="same", confidence=0.9))
    registry.register(make_expert("b", ("x",), output="same", confidence=0.7))
    registry.register(CrashingExpert())
    coordinator = coordinator_for(registry, aggregation="majority_vote")
    task = Task(description="x")
    result = asyncio.run(coordinator.run(task, decision(task, "a", "crash", "b")))
    assert result.output == "same"
    assert result.experts == ["a", "b"]
    crashed = next(r for r in result.results if r.expert_id == "crash")
    assert crashed.error == "RuntimeError: boom"
    assert crashed.attempts == 1  # not retryable


def test_timeout_really_cancels_the_expert() -> None:
    registry = ExpertRegistry()
    registry.register(SlowExpert())
    registry.register(make_expert("fast", ("x",)))
    coordinator = coordinator_for(registry, expert_timeout=0.1)
    task = Task(description="x")
    result = asyncio.run(coordinator.run(task, decision(task, "slow", "fast")))
    slow = next(r for r in result.results if r.expert_id == "slow")
    assert slow.error is not None and "timed out" in slow.error
    assert task.id in SlowExpert.cancelled
    assert result.output == "fast"
    assert result.duration_ms < 5000


def test_the_executor_keeps_budgets_for_live_event_loops_only() -> None:
    registry = ExpertRegistry()
    registry.register(make_expert("fast", ("x",)))
    coordinator = coordinator_for(registry)
    for _ in range(3):  # the CLI runs each task in a loop of its own
        task = Task(description="x")
        assert asyncio.run(coordinator.run(task, decision(task, "fast"))).ok
    assert isinstance(coordinator.executor, LocalExecutor)
    assert len(coordinator.executor._budgets) == 1  # the closed loops' were forgotten when a new loop came


def test_retryable_errors_retry_with_exponential_backoff() -> None:
    registry = ExpertRegistry()
    flaky = FlakyExpert(failures=2)
    registry.register(flaky)
    sleep = RecordingSleep()
    coordinator = coordinator_for(registry, max_retries=3, backoff_base=0.1, backoff_max=10, sleep=sleep)
    task = Task(description="x")
    result = asyncio.run(coordinator.run(task, decision(task, "flaky")))
    assert result.output == "finally"
    assert result.results[0].attempts == 3
    assert sleep.delays == [pytest.approx(0.1), pytest.approx(0.2)]


def test_retries_are_bounded() -> None:
    registry = ExpertRegistry()
    registry.register(FlakyExpert(failures=10))
    coordinator = coordinator_for(registry, max_retries=2, sleep=RecordingSleep())
    task = Task(description="x")
    result = asyncio.run(coordinator.run(task, decision(task, "flaky")))
    assert not result.ok
    assert result.results[0].attempts == 3
    assert result.confidence == 0.0 and result.output is None


def test_non_retryable_errors_are_not_retried() -> None:
    registry = ExpertRegistry()
    flaky = FlakyExpert(failures=1, retryable=False)
    registry.register(flaky)
    coordinator = coordinator_for(registry, max_retries=3, sleep=RecordingSleep())
    task = Task(description="x")
    asyncio.run(coordinator.run(task, decision(task, "flaky")))
    assert flaky.calls == 1
    assert is_retryable(ConnectionError()) and not is_retryable(ValueError())


def test_validation_failure_is_an_error_result() -> None:
    registry = ExpertRegistry()
    registry.register(PickyExpert())
    coordinator = coordinator_for(registry)
    task = Task(description="x", input=[1])
    result = asyncio.run(coordinator.run(task, decision(task, "picky")))
    assert result.results[0].error is not None and "dict" in result.results[0].error
    ok_task = Task(description="x", input={"b": 1, "a": 2})
    assert asyncio.run(coordinator.run(ok_task, decision(ok_task, "picky"))).output == ["a", "b"]


def test_unknown_expert_and_unknown_aggregation() -> None:
    registry = ExpertRegistry()
    coordinator = coordinator_for(registry)
    task = Task(description="x")
    result = asyncio.run(coordinator.run(task, decision(task, "ghost")))
    assert "no expert with id 'ghost'" in (result.results[0].error or "")
    with pytest.raises(TaskError, match="unknown aggregation"):
        asyncio.run(coordinator.run(task, decision(task, "ghost"), aggregation="median"))
    with pytest.raises(TaskError):
        coordinator_for(registry, aggregation="nope")


def test_expired_deadline_times_out_immediately() -> None:
    registry = ExpertRegistry()
    registry.register(make_expert("a", ("x",)))
    task = Task(description="x", deadline=datetime.now(UTC) - timedelta(seconds=1))
    result = asyncio.run(coordinator_for(registry).run(task, decision(task, "a")))
    assert "timed out" in (result.results[0].error or "")


def test_events_and_lifecycle() -> None:
    registry = ExpertRegistry()
    expert = make_expert("a", ("x",))
    registry.register(expert)
    bus = EventBus()
    kinds: list[str] = []

    def listen(event: Event) -> None:
        kinds.append(event.kind)

    bus.subscribe(listen)
    coordinator = coordinator_for(registry, events=bus)
    task = Task(description="x")
    asyncio.run(coordinator.run(task, decision(task, "a")))
    assert expert.initialized
    assert kinds == ["expert.started", "expert.finished", "task.aggregated"]
    executor = coordinator.executor
    assert isinstance(executor, LocalExecutor)
    assert asyncio.run(executor.shutdown_experts(list(registry))) == []
    assert not expert.initialized


class _ReturnsADict(BaseExpert):
    id = "dict"
    name = "Returns a dict"
    capabilities = ("x",)

    async def execute(self, task: Task) -> ExpertOutput:
        return {"summary": "not wrapped"}  # type: ignore[return-value]


class _NanConfidence(_ReturnsADict):
    id = "nan"

    async def execute(self, task: Task) -> ExpertOutput:
        return ExpertOutput("x", confidence=math.nan)


class _Exits(_ReturnsADict):
    id = "exits"

    async def execute(self, task: Task) -> ExpertOutput:
        raise SystemExit(3)


class _ExitsInAThread(_ReturnsADict):
    id = "exits-threaded"

    def execute(self, task: Task) -> ExpertOutput:  # type: ignore[override]
        sys.exit("usage: tool [-h]")


def test_an_expert_breaking_its_contract_fails_alone_and_says_how() -> None:
    registry = ExpertRegistry()
    for expert in (_ReturnsADict(), _NanConfidence(), _Exits(), _ExitsInAThread()):
        registry.register(expert)
    registry.register(make_expert("fine", ("x",), output="fine", confidence=0.9))
    coordinator = coordinator_for(registry)
    task = Task(description="x")
    experts = ("dict", "nan", "exits", "exits-threaded", "fine")
    result = asyncio.run(coordinator.run(task, decision(task, *experts)))  # before: AttributeError, SystemExit
    assert result.output == "fine" and result.experts == ["fine"]
    errors = {r.expert_id: r.error for r in result.results}
    assert errors["dict"] == "TypeError: dict returned dict, not an ExpertOutput(output, confidence)"
    assert errors["nan"] == "TypeError: nan returned the confidence nan: it must be a number from 0 to 1"
    assert errors["exits"] == "called sys.exit(3)"
    assert errors["exits-threaded"] == "called sys.exit('usage: tool [-h]')"
