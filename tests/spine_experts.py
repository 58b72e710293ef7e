"""Small experts used by the spine tests: each does one observable thing."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from vy_nexus.errors import ExpertExecutionError, TaskError
from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.tasks import Task


def make_expert(
    expert_id: str,
    capabilities: tuple[str, ...],
    *,
    output: Any = None,
    confidence: float = 0.8,
    priority: int = 0,
    task_types: tuple[str, ...] = (),
) -> BaseExpert:
    """An expert class built on the fly that answers ``output`` (default: its own id)."""

    class _Expert(BaseExpert):
        id = expert_id
        name = f"Expert {expert_id}"
        description = "test expert"

        async def execute(self, task: Task) -> ExpertOutput:
            return ExpertOutput(expert_id if output is None else output, confidence=confidence)

    _Expert.capabilities = capabilities
    _Expert.priority = priority
    _Expert.task_types = task_types
    return _Expert()


class SlowExpert(BaseExpert):
    id = "slow"
    name = "Slow"
    capabilities = ("slow",)
    cancelled: ClassVar[list[str]] = []

    async def execute(self, task: Task) -> ExpertOutput:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            SlowExpert.cancelled.append(task.id)
            raise
        return ExpertOutput("too late")


class CrashingExpert(BaseExpert):
    id = "crash"
    name = "Crash"
    capabilities = ("crash",)

    async def execute(self, task: Task) -> ExpertOutput:
        raise RuntimeError("boom")


class FlakyExpert(BaseExpert):
    """Fails with a retryable error ``failures`` times, then succeeds."""

    id = "flaky"
    name = "Flaky"
    capabilities = ("flaky",)

    def __init__(self, failures: int, retryable: bool = True) -> None:
        super().__init__()
        self.failures = failures
        self.retryable = retryable
        self.calls = 0

    async def execute(self, task: Task) -> ExpertOutput:
        self.calls += 1
        if self.calls <= self.failures:
            raise ExpertExecutionError("transient", expert_id=self.id, retryable=self.retryable)
        return ExpertOutput("finally", confidence=0.9)


class PickyExpert(BaseExpert):
    id = "picky"
    name = "Picky"
    capabilities = ("picky",)

    def validate(self, task: Task) -> None:
        self.require_input(task, dict)

    async def execute(self, task: Task) -> ExpertOutput:
        if not isinstance(task.input, dict):
            raise TaskError("unreachable")
        return ExpertOutput(sorted(task.input))


SLEEPY_SOURCE = """
import asyncio

from vy_nexus.experts.base import BaseExpert, ExpertOutput


class SleepyExpert(BaseExpert):
    id = "sleepy"
    name = "Sleepy"
    description = "sleeps context.seconds (two minutes when not told)"
    capabilities = ("sleepy",)

    async def execute(self, task):
        await asyncio.sleep(float(task.context.get("seconds", 120)))
        return ExpertOutput("awake")
"""
"""A plugin expert file that sleeps ``context.seconds`` (two minutes when not told): it holds a server process up
while a test stops or kills it."""
