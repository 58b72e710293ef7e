"""The local executor: experts run in this process.

* An async expert (the default) runs on the event loop. Its lifecycle — ``initialize`` once, then ``validate`` →
  ``pre_process`` → ``execute`` → ``post_process`` — is cancelled at its next ``await`` when the budget runs out.
* An expert whose ``execute`` is a plain ``def``, or that declares ``blocking = True``, runs in the bounded worker
  pool (execution/blocking.py), so a ``time.sleep`` or a long CSV parse never stalls other tasks and a timeout
  returns at its limit. A blocking async expert gets a private loop in its worker thread; its reasoning core calls
  are sent back to the system's loop, where the pooled clients live.
* Retryable failures (``ExpertExecutionError(retryable=True)``, ``ConnectionError``) are retried up to
  ``max_retries`` times with exponential backoff (base × 2^attempt, capped) while the budget allows; when they
  are exhausted the error result carries ``metadata["retryable"] = True``.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from types import CoroutineType
from typing import Any

from vy_nexus.errors import ExpertExecutionError, ReasoningError, TaskError, UnknownExpertError
from vy_nexus.events import EventBus
from vy_nexus.execution.blocking import BlockingPool, on_loop
from vy_nexus.execution.budgets import Budget, LoopBudgets
from vy_nexus.execution.executor import ExpertCall
from vy_nexus.experts.base import BaseExpert, ExpertContext, ExpertOutput
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.tasks import ExpertResult, Task

Sleep = Callable[[float], Awaitable[None]]


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, ExpertExecutionError):
        return exc.retryable
    return isinstance(exc, ConnectionError)


def caused_by_reasoning(exc: BaseException) -> bool:
    """Whether an LLM backend's failure (server down, model missing, prompt too long) made the expert fail."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ReasoningError):
            return True
        seen = seen.__cause__
    return False


def runs_in_thread(expert: BaseExpert) -> bool:
    """True for experts that would block the event loop: declared ``blocking`` or a synchronous ``execute``."""
    return bool(getattr(expert, "blocking", False)) or not inspect.iscoroutinefunction(expert.execute)


class ReasoningBridge:
    """The reasoning core as seen from a worker thread's private loop: each call runs on the system's loop."""

    def __init__(self, core: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._core = core
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, name)

    async def chat(self, *args: Any, **kwargs: Any) -> Any:
        return await on_loop(self._loop, self._core.chat(*args, **kwargs))

    async def generate(self, *args: Any, **kwargs: Any) -> Any:
        return await on_loop(self._loop, self._core.generate(*args, **kwargs))


class LocalExecutor:
    name = "local"
    enforces_budget = True

    def __init__(
        self,
        registry: ExpertRegistry,
        *,
        context_factory: Callable[[], ExpertContext] = ExpertContext,
        max_retries: int = 2,
        backoff_base: float = 0.2,
        backoff_max: float = 5.0,
        worker_threads: int = 8,
        events: EventBus | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.registry = registry
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.pool = BlockingPool(worker_threads)
        self._context_factory = context_factory
        self._events = events or EventBus()
        self._sleep = sleep
        self._init_locks: dict[str, asyncio.Lock] = {}
        # By id, with a weak reference to tell a reused id apart: a WeakKeyDictionary made a new reference per lookup.
        self._threaded: dict[int, tuple[weakref.ref[BaseExpert], bool]] = {}
        self._budgets: dict[asyncio.AbstractEventLoop, LoopBudgets] = {}

    async def run(self, call: ExpertCall) -> ExpertResult:
        task, expert_id, budget = call.task, call.expert_id, call.budget_seconds
        started = time.perf_counter()
        try:
            expert = self.registry.get(expert_id)
        except UnknownExpertError as exc:
            return _failure(task, expert_id, str(exc), "unknown", started, 0)
        attempt = 0
        while True:
            attempt += 1
            remaining = budget - (time.perf_counter() - started)
            try:
                if remaining <= 0:
                    raise TimeoutError
                async with self._budget(remaining):
                    output = await self._attempt(expert, task)
            except TimeoutError:
                return _failure(task, expert_id, f"timed out after {budget:.1f}s", "timeout", started, attempt)
            except TaskError as exc:
                return _failure(task, expert_id, f"rejected the task: {exc}", "invalid", started, attempt)
            except SystemExit as exc:  # an expert's (or its library's) sys.exit must not end the server
                return _failure(task, expert_id, f"called sys.exit({exc.code!r})", "error", started, attempt)
            except Exception as exc:
                delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
                elapsed = time.perf_counter() - started
                if is_retryable(exc) and attempt <= self.max_retries and elapsed + delay < budget:
                    self._events.publish(
                        "expert.retry",
                        "executor",
                        f"{expert_id} failed ({exc}); retry {attempt} in {delay:.2f}s",
                        level="warn",
                        task_id=task.id,
                        expert_id=expert_id,
                        metadata={"attempt": attempt},
                    )
                    await self._sleep(delay)
                    continue
                kind = "reasoning" if caused_by_reasoning(exc) else "error"
                failure = _failure(task, expert_id, f"{type(exc).__name__}: {exc}", kind, started, attempt)
                if is_retryable(exc):  # a caller with retries of its own (the Celery worker) may try again
                    failure.metadata["retryable"] = True
                return failure
            return ExpertResult(
                task_id=task.id,
                expert_id=expert_id,
                output=output.output,
                confidence=min(1.0, max(0.0, output.confidence)),
                metadata=output.metadata,
                duration_ms=(time.perf_counter() - started) * 1e3,
                attempts=attempt,
            )

    def _budget(self, seconds: float) -> Budget:
        """``asyncio.timeout(seconds)`` for one attempt, watched with the others on its loop (execution/budgets.py)."""
        loop = asyncio.get_running_loop()
        budgets = self._budgets.get(loop)
        if budgets is None:  # a new loop (the CLI runs one per task): forget the closed ones
            # list() copies at once: loops in other threads may add or forget entries meanwhile.
            for closed in [known for known in list(self._budgets) if known.is_closed()]:
                self._budgets.pop(closed, None)
            budgets = self._budgets[loop] = LoopBudgets(loop)
        return budgets.after(seconds)

    async def _attempt(self, expert: BaseExpert, task: Task) -> ExpertOutput:
        known = self._threaded.get(id(expert))
        if known is not None and known[0]() is expert:
            threaded = known[1]
        else:
            threaded = runs_in_thread(expert)
            self._threaded[id(expert)] = (weakref.ref(expert), threaded)
        if not expert.initialized:
            await self._ensure_initialized(expert, threaded)
        if not threaded:
            return await _lifecycle(expert, task)
        return await self.pool.run_coroutine(lambda: _lifecycle(expert, task))

    async def _ensure_initialized(self, expert: BaseExpert, threaded: bool) -> None:
        if expert.initialized:
            return
        lock = self._init_locks.setdefault(expert.id, asyncio.Lock())
        async with lock:
            if expert.initialized:
                return
            context = self._context_factory()
            if threaded and context.llm is not None:
                context = replace(context, llm=ReasoningBridge(context.llm, asyncio.get_running_loop()))
            await expert.initialize(context)

    async def shutdown_experts(self, experts: Sequence[BaseExpert]) -> list[tuple[str, Exception]]:
        """Call every initialized expert's ``shutdown``; return the failures instead of raising."""
        failures: list[tuple[str, Exception]] = []
        for expert in experts:
            if expert.initialized:
                try:
                    await expert.shutdown()
                except Exception as exc:
                    failures.append((expert.id, exc))
        return failures

    def status(self) -> dict[str, Any]:
        return {"worker_threads": self.pool.max_workers, "abandoned_threads": self.pool.abandoned}

    async def aclose(self) -> None:
        self.pool.shutdown()
        budgets = self._budgets.pop(asyncio.get_running_loop(), None)
        if budgets is not None:
            budgets.close()


async def _lifecycle(expert: BaseExpert, task: Task) -> ExpertOutput:
    # Each step may be ``def`` or ``async def``; awaited in place (a helper coroutine per step cost more than a
    # no-op expert's whole call).
    expert.validate(task)
    prepared: Any = expert.pre_process(task)
    if _awaitable(prepared):
        prepared = await prepared
    output: Any = expert.execute(prepared)
    if _awaitable(output):
        output = await output
    result: Any = expert.post_process(prepared, output)
    if _awaitable(result):
        result = await result
    if type(result) is not ExpertOutput and not isinstance(result, ExpertOutput):
        raise TypeError(f"{expert.id} returned {type(result).__name__}, not an ExpertOutput(output, confidence)")
    confidence = result.confidence
    if not isinstance(confidence, int | float) or confidence != confidence:  # NaN is the one value unequal to itself
        raise TypeError(f"{expert.id} returned the confidence {confidence!r}: it must be a number from 0 to 1")
    return result


def _awaitable(value: Any) -> bool:
    return type(value) is CoroutineType or inspect.isawaitable(value)


def _failure(task: Task, expert_id: str, error: str, kind: str, started: float, attempts: int) -> ExpertResult:
    return ExpertResult(
        task_id=task.id,
        expert_id=expert_id,
        error=error,
        error_kind=kind,
        duration_ms=(time.perf_counter() - started) * 1e3,
        attempts=attempts,
    )
