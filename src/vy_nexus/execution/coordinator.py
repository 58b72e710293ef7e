"""The coordinator runs the chosen experts concurrently and aggregates their results.

* Each expert call goes to the executor (execution/executor.py), which applies the per-expert timeout and the
  retries and returns failures as error results: a crashing or hanging expert never takes the task down.
* The whole task is bounded by ``task_timeout`` (governance: max task duration) and by the task's deadline.
* The coordinator announces each expert's start and end, and the aggregated result, as events.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from vy_nexus.errors import TaskError
from vy_nexus.events import EventBus
from vy_nexus.execution.aggregation import AGGREGATORS
from vy_nexus.execution.executor import Executor, ExpertCall
from vy_nexus.tasks import AggregatedResult, ExpertResult, RoutingDecision, Task


class Coordinator:
    def __init__(
        self,
        executor: Executor,
        *,
        expert_timeout: float = 60.0,
        task_timeout: float = 300.0,
        aggregation: str = "confidence_weighted",
        events: EventBus | None = None,
    ) -> None:
        if aggregation not in AGGREGATORS:
            raise TaskError(f"unknown aggregation '{aggregation}'; choose one of {', '.join(AGGREGATORS)}")
        self.executor = executor
        self.expert_timeout = expert_timeout
        self.task_timeout = task_timeout
        self.aggregation = aggregation
        self._events = events or EventBus()

    async def run(self, task: Task, decision: RoutingDecision, aggregation: str | None = None) -> AggregatedResult:
        method = aggregation or (self.aggregation if len(decision.expert_ids) > 1 else "single")
        aggregator = AGGREGATORS.get(method)
        if aggregator is None:
            raise TaskError(f"unknown aggregation '{method}'; choose one of {', '.join(AGGREGATORS)}", task_id=task.id)
        started = time.perf_counter()
        budget = self._budget(task)
        results = await self._run_experts(task, decision.expert_ids, budget)
        successes = [r for r in results if r.ok]
        if successes:
            output, confidence = aggregator(successes, decision.confidences)
        else:
            output, confidence = None, 0.0
        if len(successes) == 1 and method != "single":  # nothing was combined: say so, do not claim the method
            method = "single"
        aggregated = AggregatedResult(
            task_id=task.id,
            output=output,
            experts=[r.expert_id for r in successes],
            method=method,
            confidence=round(confidence, 4),
            results=results,
            decision=decision,
            duration_ms=(time.perf_counter() - started) * 1e3,
        )
        self._events.publish(
            "task.aggregated",
            "coordinator",
            f"{len(successes)}/{len(results)} experts succeeded; {method} confidence {aggregated.confidence:.2f}",
            level="info" if successes else "error",
            category="milestone" if successes else "error",
            task_id=task.id,
            metadata={
                "method": method,
                "experts": aggregated.experts,
                "duration_ms": aggregated.duration_ms,
                "confidence": aggregated.confidence,
                "success": bool(successes),
                "task_type": task.type,
            },
        )
        return aggregated

    async def _run_experts(self, task: Task, expert_ids: list[str], budget: float) -> list[ExpertResult]:
        # Each call enforces its own budget first; the outer bound is belt and braces, needed only for an executor
        # that does not declare ``enforces_budget``.
        if len(expert_ids) == 1:  # the common case, without a task of its own
            if getattr(self.executor, "enforces_budget", False):
                return [await self._run_expert(task, expert_ids[0], budget)]
            try:
                async with asyncio.timeout(budget + 1.0):
                    return [await self._run_expert(task, expert_ids[0], budget)]
            except TimeoutError:
                return [self._timed_out(task, expert_ids[0], budget)]
        jobs = [asyncio.ensure_future(self._run_expert(task, expert_id, budget)) for expert_id in expert_ids]
        try:
            done, pending = await asyncio.wait(jobs, timeout=budget + 1.0)
        except asyncio.CancelledError:  # the task itself was cancelled (by id, or a shutdown's grace period ran out)
            for job in jobs:
                job.cancel()
            raise
        for job in pending:
            job.cancel()
        return [
            job.result() if job in done else self._timed_out(task, eid, budget)
            for job, eid in zip(jobs, expert_ids, strict=True)
        ]

    def _budget(self, task: Task) -> float:
        budget = min(self.expert_timeout, self.task_timeout)
        if task.deadline is not None:
            deadline = task.deadline if task.deadline.tzinfo else task.deadline.replace(tzinfo=UTC)
            budget = min(budget, max(0.0, (deadline - datetime.now(UTC)).total_seconds()))
        return budget

    def _timed_out(self, task: Task, expert_id: str, budget: float) -> ExpertResult:
        return ExpertResult(
            task_id=task.id, expert_id=expert_id, error=f"timed out after {budget:.1f}s", error_kind="timeout"
        )

    async def _run_expert(self, task: Task, expert_id: str, budget: float) -> ExpertResult:
        events = self._events
        # Debug: its end (finished/failed) is journaled at info with the duration.
        if events.wants("debug", "expert.started"):
            events.publish(
                "expert.started",
                "coordinator",
                f"{expert_id} started",
                level="debug",
                task_id=task.id,
                expert_id=expert_id,
                category="thought",
            )
        try:
            result = await self.executor.run(ExpertCall(task, expert_id, budget))
        except asyncio.CancelledError:
            self._announce(
                task, ExpertResult(task_id=task.id, expert_id=expert_id, error="cancelled", error_kind="cancelled")
            )
            raise
        self._announce(task, result)
        return result

    def _announce(self, task: Task, result: ExpertResult) -> None:
        events = self._events
        ok = result.ok
        if not events.wants("info" if ok else "error", "expert.finished" if ok else "expert.failed"):
            return
        expert_id = result.expert_id
        metadata = {
            "duration_ms": result.duration_ms,
            "success": ok,
            "attempts": result.attempts,
            "task_type": task.type,
        }
        worker = result.metadata.get("worker")
        if worker is not None:  # ran on a Celery worker: the metrics name the process
            metadata["worker"] = worker
        if ok:
            metadata["confidence"] = result.confidence
            events.publish(
                "expert.finished",
                "coordinator",
                f"{expert_id} finished in {result.duration_ms:.1f} ms",
                task_id=task.id,
                expert_id=expert_id,
                metadata=metadata,
            )
            return
        metadata["error"] = result.error
        metadata["kind"] = result.error_kind or "error"
        events.publish(
            "expert.failed",
            "coordinator",
            f"{expert_id} failed: {result.error}",
            level="error",
            category="error",
            task_id=task.id,
            expert_id=expert_id,
            metadata=metadata,
        )
