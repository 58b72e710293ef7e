"""The coordinator runs the chosen experts concurrently and aggregates their results.

* Each expert runs in its own asyncio task under a per-expert timeout; on timeout the task is cancelled (the
  expert's coroutine receives ``CancelledError`` at its next await) and becomes an error result.
* Retryable failures (``ExpertExecutionError(retryable=True)``, ``ConnectionError``) are retried up to
  ``max_retries`` times with exponential backoff (base × 2^attempt, capped). Other failures are not retried.
* A crashing or hanging expert never takes the task down: the other experts still finish.
* The whole task is bounded by ``task_timeout`` (governance: max task duration) and by the task's deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from vy_nexus.errors import ExpertExecutionError, TaskError, UnknownExpertError
from vy_nexus.events import EventBus
from vy_nexus.execution.aggregation import AGGREGATORS
from vy_nexus.experts.base import BaseExpert, ExpertContext
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.tasks import AggregatedResult, ExpertResult, RoutingDecision, Task

Sleep = Callable[[float], Awaitable[None]]


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, ExpertExecutionError):
        return exc.retryable
    return isinstance(exc, ConnectionError)


class Coordinator:
    def __init__(
        self,
        registry: ExpertRegistry,
        *,
        expert_timeout: float = 60.0,
        task_timeout: float = 300.0,
        max_retries: int = 2,
        backoff_base: float = 0.2,
        backoff_max: float = 5.0,
        aggregation: str = "confidence_weighted",
        context_factory: Callable[[], ExpertContext] = ExpertContext,
        events: EventBus | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if aggregation not in AGGREGATORS:
            raise TaskError(f"unknown aggregation '{aggregation}'; choose one of {', '.join(AGGREGATORS)}")
        self.registry = registry
        self.expert_timeout = expert_timeout
        self.task_timeout = task_timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.aggregation = aggregation
        self._context_factory = context_factory
        self._events = events or EventBus()
        self._sleep = sleep
        self._init_locks: dict[str, asyncio.Lock] = {}

    async def run(self, task: Task, decision: RoutingDecision, aggregation: str | None = None) -> AggregatedResult:
        method = aggregation or (self.aggregation if len(decision.expert_ids) > 1 else "single")
        aggregator = AGGREGATORS.get(method)
        if aggregator is None:
            raise TaskError(f"unknown aggregation '{method}'; choose one of {', '.join(AGGREGATORS)}", task_id=task.id)
        started = time.perf_counter()
        budget = self._budget(task)
        jobs = [asyncio.ensure_future(self._run_expert(task, expert_id, budget)) for expert_id in decision.expert_ids]
        try:
            done, pending = await asyncio.wait(jobs, timeout=budget + 1.0)
        except asyncio.CancelledError:  # the task itself was cancelled (e.g. a shutdown's grace period ran out)
            for job in jobs:
                job.cancel()
            raise
        for job in pending:  # belt and braces: each job enforces its own timeout first
            job.cancel()
        results = [
            job.result() if job in done else self._timed_out(task, eid, budget)
            for job, eid in zip(jobs, decision.expert_ids, strict=True)
        ]
        successes = [r for r in results if r.ok]
        if successes:
            output, confidence = aggregator(successes, decision.confidences)
        else:
            output, confidence = None, 0.0
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

    def _budget(self, task: Task) -> float:
        budget = min(self.expert_timeout, self.task_timeout)
        if task.deadline is not None:
            deadline = task.deadline if task.deadline.tzinfo else task.deadline.replace(tzinfo=UTC)
            budget = min(budget, max(0.0, (deadline - datetime.now(UTC)).total_seconds()))
        return budget

    def _timed_out(self, task: Task, expert_id: str, budget: float) -> ExpertResult:
        return ExpertResult(task_id=task.id, expert_id=expert_id, error=f"timed out after {budget:.1f}s")

    async def _ensure_initialized(self, expert: BaseExpert) -> None:
        if expert.initialized:
            return
        lock = self._init_locks.setdefault(expert.id, asyncio.Lock())
        async with lock:
            if not expert.initialized:
                await expert.initialize(self._context_factory())

    async def _attempt(self, expert: BaseExpert, task: Task) -> ExpertResult:
        await self._ensure_initialized(expert)
        expert.validate(task)
        prepared = await expert.pre_process(task)
        output = await expert.execute(prepared)
        output = await expert.post_process(prepared, output)
        return ExpertResult(
            task_id=task.id,
            expert_id=expert.id,
            output=output.output,
            confidence=min(1.0, max(0.0, output.confidence)),
            metadata=output.metadata,
        )

    async def _run_expert(self, task: Task, expert_id: str, budget: float) -> ExpertResult:
        started = time.perf_counter()
        try:
            expert = self.registry.get(expert_id)
        except UnknownExpertError as exc:
            return ExpertResult(task_id=task.id, expert_id=expert_id, error=str(exc))
        self._events.publish(
            "expert.started",
            "coordinator",
            f"{expert_id} started",
            task_id=task.id,
            expert_id=expert_id,
            category="thought",
        )
        attempt = 0
        while True:
            attempt += 1
            remaining = budget - (time.perf_counter() - started)
            try:
                if remaining <= 0:
                    raise TimeoutError
                result = await asyncio.wait_for(self._attempt(expert, task), timeout=remaining)
            except TimeoutError:
                error = f"timed out after {budget:.1f}s"
                return self._failed(task, expert_id, error, started, attempt, "timeout")
            except TaskError as exc:
                return self._failed(task, expert_id, f"rejected the task: {exc}", started, attempt, "invalid")
            except Exception as exc:
                delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
                elapsed = time.perf_counter() - started
                if is_retryable(exc) and attempt <= self.max_retries and elapsed + delay < budget:
                    self._events.publish(
                        "expert.retry",
                        "coordinator",
                        f"{expert_id} failed ({exc}); retry {attempt} in {delay:.2f}s",
                        level="warn",
                        task_id=task.id,
                        expert_id=expert_id,
                        metadata={"attempt": attempt},
                    )
                    await self._sleep(delay)
                    continue
                message = f"{type(exc).__name__}: {exc}"
                return self._failed(task, expert_id, message, started, attempt, "error")
            duration = (time.perf_counter() - started) * 1e3
            finished = result.model_copy(update={"duration_ms": duration, "attempts": attempt})
            self._events.publish(
                "expert.finished",
                "coordinator",
                f"{expert_id} finished in {duration:.1f} ms",
                task_id=task.id,
                expert_id=expert_id,
                metadata={
                    "duration_ms": duration,
                    "success": True,
                    "confidence": finished.confidence,
                    "attempts": attempt,
                    "task_type": task.type,
                },
            )
            return finished

    def _failed(self, task: Task, expert_id: str, error: str, started: float, attempts: int, kind: str) -> ExpertResult:
        duration = (time.perf_counter() - started) * 1e3
        self._events.publish(
            "expert.failed",
            "coordinator",
            f"{expert_id} failed: {error}",
            level="error",
            category="error",
            task_id=task.id,
            expert_id=expert_id,
            metadata={
                "duration_ms": duration,
                "success": False,
                "error": error,
                "kind": kind,
                "attempts": attempts,
                "task_type": task.type,
            },
        )
        return ExpertResult(task_id=task.id, expert_id=expert_id, error=error, duration_ms=duration, attempts=attempts)

    async def shutdown(self) -> None:
        for expert in self.registry:
            if expert.initialized:
                try:
                    await expert.shutdown()
                except Exception as exc:
                    self._events.publish(
                        "expert.shutdown_failed",
                        "coordinator",
                        f"{expert.id}: {exc}",
                        level="warn",
                        expert_id=expert.id,
                    )
