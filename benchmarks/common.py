"""Pieces the benchmark scripts share: a no-op expert and a timed loop of submits."""

from __future__ import annotations

import time

from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task


class NoOpExpert(BaseExpert):
    """Does nothing, so a benchmark measures orchestration alone."""

    id = "noop"
    name = "No-op"
    capabilities = ("noop",)

    async def execute(self, task: Task) -> ExpertOutput:
        return ExpertOutput("ok", confidence=1.0)


async def submit_all(system: VyNexus, tasks: list[Task]) -> float:
    """Seconds to submit ``tasks`` one after another; every one must succeed."""
    started = time.perf_counter()
    for task in tasks:
        result = await system.submit(task)
        assert result.ok, result.results
    return time.perf_counter() - started
