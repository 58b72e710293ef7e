"""The executor seam: how the coordinator gets one expert to run on one task.

The coordinator decides *which* experts run, bounds the whole task and aggregates; an executor decides *where and
how* one expert call runs (this process's event loop and thread pool, or a Celery worker). An executor never
raises for an expert's failure: a crash, a timeout or a refusal comes back as an ``ExpertResult`` with ``error``
set and ``error_kind`` saying which, so aggregation always runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from vy_nexus.tasks import ExpertResult, Task


# Not ``frozen``: built on every task's hot path, where a frozen dataclass costs 8x to build; treat as read-only.
@dataclass(slots=True)
class ExpertCall:
    """One expert on one task, with the seconds it may take (retries included)."""

    task: Task
    expert_id: str
    budget_seconds: float


@runtime_checkable
class Executor(Protocol):
    """Runs expert calls. ``aclose`` releases what the executor holds (threads, connections).

    An executor that always returns within a call's budget (plus a short grace) sets ``enforces_budget = True``;
    the coordinator then runs a lone expert call without an outer timeout of its own.
    """

    name: str

    async def run(self, call: ExpertCall) -> ExpertResult: ...

    async def aclose(self) -> None: ...
