"""The composition root: builds every component from settings and wires them together.

Nothing else in vy-nexus constructs long-lived components; interfaces (CLI, API, workers) create one ``VyNexus``
and call it. Flow of a task: ``submit`` → task store (``queued``) → gating → governance → admission → coordinator
→ executor → ``AggregatedResult``, with the store following every state; events go to the observers.

Lifecycle: ``async with VyNexus(settings) as system`` (or ``await astart()`` / ``await astop()``) in a long-lived
event loop; ``with system:`` + ``system.run(task)`` for scripts and the CLI, where each ``run`` is its own loop
and releases the loop-bound resources (pooled HTTP clients) before that loop ends.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vy_nexus.config import Settings, load_settings
from vy_nexus.errors import ExpertRegistrationError, SafetyError, TaskCancelledError, VyNexusError
from vy_nexus.events import EventBus, current_task_id
from vy_nexus.execution.governance import (
    SHUTDOWN,
    UNREGISTER_EXPERT,
    AdminAction,
    Governance,
    RoutingPreview,
    Ruling,
)
from vy_nexus.execution.inflight import InFlightTasks
from vy_nexus.experts.base import BaseExpert, ExpertContext
from vy_nexus.experts.builtin import BUILTIN_EXPERTS
from vy_nexus.experts.loader import ExpertLoader, LoadReport
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.foundation.kill_switch import StopRequest, StopWatcher
from vy_nexus.foundation.safe_fs import SafeFileSystem
from vy_nexus.foundation.safety import SafetyHandler, Severity
from vy_nexus.routing.cache import RoutingCache
from vy_nexus.routing.gating import GatingEngine
from vy_nexus.routing.selection import build_strategy
from vy_nexus.routing.strategy import RoutingStrategy
from vy_nexus.tasks import AggregatedResult, RoutingDecision, Task, TaskState

if TYPE_CHECKING:
    import asyncio  # imported where tasks run, not here: keeps asyncio off the route path (issue 16, cold start)

    from vy_nexus.config import ReasoningCoreSettings
    from vy_nexus.execution.coordinator import Coordinator
    from vy_nexus.execution.executor import Executor
    from vy_nexus.foundation.pulse import Heartbeat
    from vy_nexus.foundation.state import StateStore
    from vy_nexus.observability.stack import Observability
    from vy_nexus.reasoning.core import ReasoningCore
    from vy_nexus.reasoning.llm import LLMBackend
    from vy_nexus.store import TaskPage, TaskRecord, TaskStore


def build_reasoning_core(
    settings: ReasoningCoreSettings, *, events: EventBus | None = None, backend: LLMBackend | None = None
) -> ReasoningCore:
    """The reasoning core of ``settings`` (reasoning/factory.py), imported on first use: a system that only routes
    never loads the LLM backends."""
    from vy_nexus.reasoning.factory import build_reasoning_core as build

    return build(settings, events=events, backend=backend)


class VyNexus:
    """One running vy-nexus: registry, gating, coordinator and observers, built from ``settings``."""

    def __init__(
        self,
        settings: Settings,
        *,
        events: EventBus | None = None,
        register_builtins: bool = True,
        load_plugins: bool = True,
        strategy: RoutingStrategy | None = None,
        observe: bool = True,
        llm: LLMBackend | None = None,
        executor: Executor | None = None,
        store: TaskStore | None = None,
    ) -> None:
        """``observe=False`` builds the system without journal, metrics and Prometheus (tests, benchmarks).
        ``llm`` replaces the backend ``settings.reasoning_core`` names (tests, embedding applications);
        ``executor`` and ``store`` replace the local executor and the task store of ``settings.store``."""
        self.settings = settings
        self.events = events or EventBus()
        self._llm_backend = llm
        self._reasoning: ReasoningCore | None = None
        self.registry = ExpertRegistry()
        routing = settings.routing
        self.cache = (
            RoutingCache(max_size=routing.cache.max_size, ttl_seconds=routing.cache.ttl_seconds)
            if routing.cache.enabled
            else None
        )
        self.gating = GatingEngine(
            self.registry,
            strategy or build_strategy(settings, self.registry),
            cache=self.cache,
            threshold=routing.confidence_threshold,
            fallback_expert=routing.fallback_expert,
            default_top_k=routing.top_k,
            events=self.events,
        )
        self._executor = executor
        self._own_executor = executor is None  # built here, so rebuilt here after ``astop`` closed it
        self._coordinator: Coordinator | None = None
        self._execution_lock = threading.Lock()
        self._store: TaskStore | None = None
        if store is not None:
            self._adopt_store(store)
        self._store_open = False
        self.file_system = SafeFileSystem.from_settings(settings)
        self.safety = SafetyHandler.from_settings(settings, self.events)
        self.governance = Governance.from_settings(settings, self.events)
        self._state: StateStore | None = None
        self.inflight = InFlightTasks()
        self._stop_watcher = StopWatcher(
            StopRequest(settings.home), self.safety, interval=settings.safety.stop_poll_seconds, events=self.events
        )
        self.safety.on_shutdown(self._on_shutdown)
        self.registry.on_change(self._on_registry_change)
        if register_builtins:
            self.register_builtins()
        if load_plugins:
            self.load_experts()
        self.observability: Observability | None = None
        if observe:  # journal, metrics and Prometheus load only for a system that observes
            from vy_nexus.observability.stack import Observability

            self.observability = Observability(settings, self.events)
        self._started = False
        self._stopped = False  # by ``astop``, until the next ``astart``

    @property
    def state(self) -> StateStore:
        """The sovereign state file's store, built on first use (pulse, shutdown): routing never reads it."""
        if self._state is None:
            from vy_nexus.foundation.default_state import default_state
            from vy_nexus.foundation.state import StateStore

            self._state = StateStore(self.settings.state_file, default=default_state)
        return self._state

    @property
    def store(self) -> TaskStore:
        """The task store, built on first use: a system that only routes (``vy-nexus route``) never loads SQL."""
        store = self._store
        if store is None:
            from vy_nexus.store import store_from_settings

            store = store_from_settings(self.settings, on_warning=self._store_warning)
            self._adopt_store(store)
        return store

    def _adopt_store(self, store: TaskStore) -> None:
        store.on_cancel = self._cancel_requested_elsewhere
        self._store = store

    @property
    def executor(self) -> Executor:
        """The executor (``executor=`` or the one ``settings.executor`` names), built on first use: a system that
        only routes (``vy-nexus route``) never loads the execution machinery, nor asyncio."""
        executor = self._executor
        if executor is None:
            with self._execution_lock:
                if self._executor is None:
                    self._executor = self._build_executor()
                executor = self._executor
        return executor

    @property
    def coordinator(self) -> Coordinator:
        """The coordinator over ``executor``, built on first use (see ``executor``)."""
        coordinator = self._coordinator
        if coordinator is None:
            from vy_nexus.execution.coordinator import Coordinator

            executor = self.executor
            with self._execution_lock:
                if self._coordinator is None:
                    settings = self.settings
                    self._coordinator = Coordinator(
                        executor,
                        expert_timeout=settings.executor.expert_timeout_seconds,
                        task_timeout=settings.governance.max_task_duration_seconds,
                        aggregation=settings.executor.aggregation,
                        events=self.events,
                    )
                coordinator = self._coordinator
        return coordinator

    def _build_executor(self) -> Executor:
        settings = self.settings
        if settings.executor.kind == "celery":  # imported here: Celery loads only where it is used
            from vy_nexus.execution.celery_executor import CeleryExecutor

            return CeleryExecutor(settings, self.registry)
        from vy_nexus.execution.local import LocalExecutor

        return LocalExecutor(
            self.registry,
            context_factory=self.expert_context,
            max_retries=min(settings.executor.max_retries, settings.governance.max_retries),
            backoff_base=settings.executor.backoff_base_seconds,
            backoff_max=settings.executor.backoff_max_seconds,
            worker_threads=settings.executor.worker_threads,
            events=self.events,
        )

    @classmethod
    def from_home(cls, home: Path | str | None = None, **kwargs: Any) -> VyNexus:
        return cls(load_settings(home), **kwargs)

    @property
    def reasoning(self) -> ReasoningCore:
        """The reasoning core experts think with, built on first use (a backend connects/loads on its first call)."""
        if self._reasoning is None:
            self._reasoning = build_reasoning_core(
                self.settings.reasoning_core, events=self.events, backend=self._llm_backend
            )
        return self._reasoning

    def expert_context(self) -> ExpertContext:
        from vy_nexus.execution.local import LocalExecutor

        offload = self.executor.pool.run if isinstance(self.executor, LocalExecutor) else None
        return ExpertContext(settings=self.settings, llm=self.reasoning, file_system=self.file_system, offload=offload)

    def register_builtins(self) -> None:
        for expert_class in BUILTIN_EXPERTS:
            if expert_class.id not in self.settings.experts.disabled:
                self.registry.register(expert_class(), source="builtin")

    def load_experts(self, *, directory: bool = True, plugins: bool = True) -> LoadReport:
        """Register experts from the experts directory, then from installed plugins (``vy_nexus.experts`` entry
        points). Failures land in ``registry.problems``; see experts/loader.py."""
        loader = ExpertLoader.from_settings(self.settings, load_directory=directory, load_plugins=plugins)
        return loader.load_into(self.registry)

    def register(self, expert: BaseExpert, *, source: str = "api", replace: bool = False) -> None:
        if expert.id in self.settings.experts.disabled:
            raise ExpertRegistrationError(
                f"expert '{expert.id}' is disabled in config (experts.disabled)", expert_id=expert.id
            )
        self.registry.register(expert, source=source, replace=replace)

    # Lifecycle ---------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background parts (observers, stop watcher). Idempotent; blocking — from an event loop use
        ``astart``. The task store opens on first use (``submit``, ``run``, ``get_task``...), so commands that run
        no task never touch it."""
        if self._started:
            return
        self._started = True
        if self.observability is not None:
            self.observability.start()
        self._stop_watcher.start()
        self.events.publish(
            "system.started",
            "system",
            "vy-nexus started",
            category="milestone",
            phase="boot",
            metadata={"home": str(self.settings.home), "experts": len(self.registry)},
        )

    def stop(self, reason: str = "requested") -> None:
        """Stop the background parts: pending task records and observations are written first."""
        self._stop_watcher.stop()
        self._announce_stopped(reason)
        self._close_store()
        if self.observability is not None:
            self.observability.stop()

    async def astart(self) -> VyNexus:
        """``start`` for a long-lived event loop, with the task store opened (and crashed tasks recovered) at once;
        the disk work runs in a thread."""
        import asyncio

        if self._stopped:  # a second ``async with`` on the same system: its first one cancelled and closed
            self.inflight.reopen()
            self._stopped = False
        await asyncio.to_thread(self.start)
        await asyncio.to_thread(self._open_store)
        return self

    async def astop(self, reason: str = "requested") -> None:
        """Stop from inside the event loop that ran the tasks: cancel what still runs, shut the experts down, close
        the executor and the reasoning core's clients, then write and close the store and the observers."""
        import asyncio

        self._stopped = True
        self.inflight.cancel_after(0.0, reason)
        await self.release_loop_resources()
        failures = await self._shutdown_experts()
        for expert_id, exc in failures:
            self.events.publish(
                "expert.shutdown_failed", "system", f"{expert_id}: {exc}", level="warn", expert_id=expert_id
            )
        await self.executor.aclose()
        if self._own_executor:  # closed for good (its worker pool refuses work): ``astart`` builds a new one
            with self._execution_lock:
                self._executor = self._coordinator = None
        await asyncio.to_thread(self.stop, reason)

    async def release_loop_resources(self) -> None:
        """Close what belongs to the running event loop (pooled HTTP clients); they reopen on the next use."""
        if self._reasoning is not None:
            await self._reasoning.aclose()

    async def _shutdown_experts(self) -> list[tuple[str, Exception]]:
        from vy_nexus.execution.local import LocalExecutor

        if isinstance(self.executor, LocalExecutor):
            return await self.executor.shutdown_experts(list(self.registry))
        return []

    async def __aenter__(self) -> VyNexus:
        return await self.astart()

    async def __aexit__(self, *_exc: object) -> None:
        await self.astop()

    def __enter__(self) -> VyNexus:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _open_store(self) -> None:
        if self._store_open:
            return
        for record in self.store.open():
            self.events.publish(
                "task.interrupted",
                "store",
                record.error or "interrupted",
                level="warn",
                task_id=record.id,
                metadata={"state": record.state.value},
            )
        self._store_open = True

    def _close_store(self) -> None:
        if self._store_open:
            self._store_open = False
            self.store.close()

    def _store_warning(self, message: str) -> None:
        from vy_nexus.store.engine import log_warning

        log_warning(message)  # the person running the command sees it (stderr), not only the journal
        self.events.publish("store.warning", "store", message, level="warn")

    def _announce_stopped(self, reason: str) -> None:
        if not self._started:
            return
        self._started = False
        self.events.publish(
            "system.stopped",
            "system",
            f"vy-nexus stopped: {reason}",
            category="milestone",
            phase="shutdown",
            metadata={"reason": reason},
        )

    # Tasks -------------------------------------------------------------------------------------------------------

    def route(self, task: Task, top_k: int | None = None) -> RoutingDecision:
        return self.gating.route(task, top_k=top_k)

    def preview(self, task: Task, top_k: int | None = None) -> RoutingPreview:
        """The decision ``submit`` would execute for ``task`` now: gating, then governance's ruling (its
        low-confidence fallback included), without running or recording anything."""
        routed = self.route(task, top_k=top_k)
        return self._previewed(task, routed)

    async def apreview(self, task: Task, top_k: int | None = None) -> RoutingPreview:
        """``preview`` for an event loop (routing as ``submit`` does it, off the loop when it encodes text)."""
        routed = await self.gating.aroute(task, top_k=top_k)
        return self._previewed(task, routed)

    def _previewed(self, task: Task, routed: RoutingDecision) -> RoutingPreview:
        ruling = self.governance.preview_task(task, routed)
        self._check_rerouting(task, routed, ruling)
        return RoutingPreview(routed, ruling)

    def _check_rerouting(self, task: Task, routed: RoutingDecision, ruling: Ruling) -> None:
        """Governance sends a low-confidence task to the fallback expert: it must exist (a clear error, not "no
        expert with id" from the executor)."""
        if ruling.decision is not routed and ruling.decision is not None and ruling.decision.fallback:
            self.gating.require_fallback(task, "the routing confidence is below governance.min_routing_confidence")

    async def submit(
        self, task: Task, *, top_k: int | None = None, aggregation: str | None = None, durable: bool = False
    ) -> AggregatedResult:
        """Record, route, let governance decide, then run and aggregate one task.

        The task is in the store (``queued``) before any work starts; with ``durable=True`` it is committed to disk
        before routing begins (else within ``store.flush_interval_seconds``). Raises ``SafetyError`` once shutting
        down, ``GovernanceError`` when a policy refuses the task, ``TaskCancelledError`` when it is cancelled.
        """
        token = current_task_id.set(task.id)
        try:
            await self._accept(task, durable=durable)
            return await self._process(task, top_k, aggregation)
        finally:
            current_task_id.reset(token)

    async def enqueue(
        self, task: Task, *, top_k: int | None = None, aggregation: str | None = None
    ) -> asyncio.Task[AggregatedResult]:
        """``submit`` in the background: returns once the task is committed to the store (an API's 202), with the
        asyncio task that routes and runs it (it inherits the caller's context: a token sink set around the call)."""
        import asyncio

        token = current_task_id.set(task.id)
        try:
            await self._accept(task, durable=True)
            return asyncio.create_task(self._process(task, top_k, aggregation), name=f"vy-nexus-task-{task.id}")
        finally:
            current_task_id.reset(token)

    async def _accept(self, task: Task, *, durable: bool) -> None:
        self.safety.ensure_accepting(task.id)
        if self._stopped:
            raise SafetyError(
                "vy-nexus is stopped (astop): start it again with `await system.astart()` or `async with system:` "
                "before submitting tasks",
                task_id=task.id,
            )
        self.gating.explicit_choice(task)  # an expert named that does not exist is bad input: refused, not recorded
        if not self._store_open:  # a system used without start/astart: open on first use, once
            self._open_store()
        self.store.accept(task)
        if durable:
            import asyncio

            await asyncio.wrap_future(self.store.flush_soon())

    async def _process(self, task: Task, top_k: int | None, aggregation: str | None) -> AggregatedResult:
        import asyncio

        events = self.events
        # Debug: the routing decision that follows at once is journaled at info with the task id.
        if events.wants("debug", "task.received"):
            events.publish(
                "task.received",
                "system",
                f"task received: {task.description[:80]}",
                level="debug",
                task_id=task.id,
                metadata={"type": task.type, "priority": task.priority.value},
            )
        try:
            decision = await self.gating.aroute(task, top_k=top_k)
            ruling = self.governance.check_task(task, decision)  # never raises
            assert ruling.decision is not None
            self.store.routed(task.id, ruling.decision, ruling)  # a refusal too: the task's "why" shows it
            self._check_rerouting(task, decision, ruling)
            self.governance.refuse_unless_proceeds(task, ruling)
            async with self.governance.admission.slot(task.id, task.priority.rank):
                self.safety.ensure_accepting(task.id)  # a shutdown may have begun while the task waited
                self.store.started(task.id)
                work = self.coordinator.run(task, ruling.decision, aggregation=aggregation)
                result = await self.inflight.run(work, task_id=task.id)
        except TaskCancelledError as exc:
            self.store.finished(task.id, TaskState.CANCELLED, error=str(exc))
            raise
        except SafetyError as exc:
            self.store.finished(task.id, TaskState.INTERRUPTED, error=str(exc))
            raise
        except asyncio.CancelledError:
            self.store.finished(task.id, TaskState.CANCELLED, error="cancelled by its caller")
            raise
        except VyNexusError as exc:
            self.store.finished(task.id, TaskState.FAILED, error=str(exc))
            raise
        except Exception as exc:  # the flow contains expert failures; anything escaping it is a defect
            self.store.finished(task.id, TaskState.FAILED, error=f"internal error: {exc!r}")
            self.safety.report(f"internal error in the task flow: {exc!r}", Severity.CRITICAL, task_id=task.id)
            raise
        if result.ok:
            self.store.finished(task.id, TaskState.SUCCEEDED, result=result)
        else:
            self.store.finished(task.id, TaskState.FAILED, result=result, error="every chosen expert failed")
        return result

    def run(self, task: Task, **kwargs: Any) -> AggregatedResult:
        """Synchronous ``submit`` for scripts and the CLI: one event loop per call, the task committed to the
        store before it runs and its result after."""
        import asyncio

        async def once() -> AggregatedResult:
            try:
                return await self.submit(task, durable=True, **kwargs)
            finally:
                await self.release_loop_resources()
                await asyncio.to_thread(self.store.flush)

        return asyncio.run(once())

    def cancel(self, task_id: str, reason: str = "cancelled on request") -> TaskRecord:
        """Cancel a queued or running task: at once when this process runs it, else through the store (its owner
        notices within a moment). Thread-safe. Returns the record as it is now."""
        if not self._store_open:
            self._open_store()
        if self.inflight.cancel(task_id, reason):
            return self.store.get(task_id)
        return self.store.request_cancel(task_id)

    def get_task(self, task_id: str) -> TaskRecord:
        if not self._store_open:
            self._open_store()
        return self.store.get(task_id)

    def list_tasks(self, **filters: Any) -> TaskPage:
        """Filters: ``states``, ``expert``, ``since``, ``until`` (epoch seconds), ``limit``, ``offset``."""
        if not self._store_open:
            self._open_store()
        return self.store.list_tasks(**filters)

    def _cancel_requested_elsewhere(self, task_id: str) -> None:
        self.inflight.cancel(task_id, "cancelled on request (from another process)")

    def status(self) -> dict[str, Any]:
        store_url = self.settings.store_url
        if "@" in store_url:  # only a URL with user info can hold a password; SQLAlchemy parses it then
            from vy_nexus.store.engine import redact

            store_url = redact(store_url)
        return {
            "home": str(self.settings.home),
            "config_file": str(self.settings.config_file),
            "config_exists": self.settings.config_file.exists(),
            "experts": self.registry.stats(),
            "routing": {
                "strategy": self.gating.strategy.name,
                "threshold": self.gating.threshold,
                "cache": self.cache.stats().as_dict() if self.cache is not None else None,
            },
            "reasoning_core": {
                "provider": self.settings.reasoning_core.provider,
                "model": self.settings.reasoning_core.model,
            },
            "executor": {
                "kind": self.executor.name,
                "expert_timeout_seconds": self.settings.executor.expert_timeout_seconds,
                "max_retries": self.settings.executor.max_retries,
                "aggregation": self.settings.executor.aggregation,
                **self._executor_status(),
            },
            "store": {"url": store_url, "retention_days": self.settings.store.retention_days},
            "safety": {
                "shutting_down": self.safety.shutting_down,
                "reason": self.safety.shutdown_reason,
                "error_counts": self.safety.error_counts(),
            },
            "governance": {"running": self.governance.admission.load().running, "in_flight": len(self.inflight)},
        }

    def _executor_status(self) -> dict[str, Any]:
        """The executor's own part: thread pool (local); broker, workers and queue depths (celery)."""
        status = getattr(self.executor, "status", None)
        return dict(status()) if callable(status) else {}

    def heartbeat(self) -> Heartbeat:
        """The heartbeat over this home's sovereign state (``vy-nexus pulse``)."""
        from vy_nexus.foundation.pulse import Heartbeat, VerificationRunner  # subprocess machinery: pulse only

        runner = VerificationRunner(self.settings.home, timeout=self.settings.heartbeat.verification_timeout_seconds)
        flush = self.observability.flush if self.observability is not None else None
        return Heartbeat(self.state, runner, events=self.events, before_verify=flush)

    def request_shutdown(
        self,
        reason: str,
        *,
        actor: str = "api",
        approved_by: str | None = None,
        approval_id: str | None = None,
    ) -> bool:
        """The kill switch as an administrative action: governance decides (it is destructive), then the system
        stops accepting tasks. ``False`` when a shutdown was already under way."""
        action = AdminAction(SHUTDOWN, "system", {"reason": reason}, actor=actor, approved_by=approved_by)
        self.governance.authorize(action, approval_id=approval_id, reason=reason)
        return self.safety.request_shutdown(reason)

    def unregister_expert(
        self, expert_id: str, *, actor: str = "api", approved_by: str | None = None, approval_id: str | None = None
    ) -> BaseExpert:
        """Remove an expert; destructive, so governance decides first."""
        self.registry.get(expert_id)  # an unknown id fails before anything is filed for approval
        action = AdminAction(UNREGISTER_EXPERT, expert_id, actor=actor, approved_by=approved_by)
        self.governance.authorize(action, approval_id=approval_id)
        return self.registry.unregister(expert_id)

    def _on_shutdown(self, reason: str) -> None:
        """Called once by the safety handler: stop taking tasks (it refuses them), cancel in-flight tasks after the
        grace period, persist the state. The interface notices ``safety.shutting_down`` and exits."""
        from vy_nexus.foundation.state import record_shutdown

        self.inflight.cancel_after(self.settings.safety.grace_period_seconds, reason)
        try:
            record_shutdown(self.state, reason, self.safety.error_counts())
        except VyNexusError as exc:
            self.safety.report(f"could not record the shutdown in the state file: {exc}", Severity.HIGH)

    def _on_registry_change(self, action: str, expert_id: str) -> None:
        self.events.publish(
            f"expert.{action}",
            "registry",
            f"expert {expert_id} {action}",
            category="observation",
            expert_id=expert_id,
        )
