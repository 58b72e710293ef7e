"""The composition root: builds every component from settings and wires them together.

Nothing else in vy-nexus constructs long-lived components; interfaces (CLI, API) create one ``VyNexus`` and call it.
Flow of a task: ``submit`` → gating (``route``) → coordinator (``run``) → ``AggregatedResult``; events go to the
observers subscribed on ``events``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from vy_nexus.config import Settings, load_settings
from vy_nexus.errors import ExpertRegistrationError, VyNexusError
from vy_nexus.events import EventBus, current_task_id
from vy_nexus.execution.coordinator import Coordinator
from vy_nexus.execution.governance import SHUTDOWN, UNREGISTER_EXPERT, AdminAction, Governance
from vy_nexus.execution.inflight import InFlightTasks
from vy_nexus.experts.base import BaseExpert, ExpertContext
from vy_nexus.experts.builtin import BUILTIN_EXPERTS
from vy_nexus.experts.loader import ExpertLoader, LoadReport
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.foundation.default_state import default_state
from vy_nexus.foundation.kill_switch import StopRequest, StopWatcher
from vy_nexus.foundation.pulse import Heartbeat, VerificationRunner
from vy_nexus.foundation.safe_fs import SafeFileSystem
from vy_nexus.foundation.safety import SafetyHandler, Severity
from vy_nexus.foundation.state import StateStore, record_shutdown
from vy_nexus.observability.stack import Observability
from vy_nexus.reasoning.core import ReasoningCore
from vy_nexus.reasoning.factory import build_reasoning_core
from vy_nexus.reasoning.llm import LLMBackend
from vy_nexus.routing.cache import RoutingCache
from vy_nexus.routing.gating import GatingEngine
from vy_nexus.routing.selection import build_strategy
from vy_nexus.routing.strategy import RoutingStrategy
from vy_nexus.tasks import AggregatedResult, RoutingDecision, Task


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
    ) -> None:
        """``observe=False`` builds the system without journal, metrics and Prometheus (tests, benchmarks).
        ``llm`` replaces the backend ``settings.reasoning_core`` names (tests, embedding applications)."""
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
        executor = settings.executor
        self.coordinator = Coordinator(
            self.registry,
            expert_timeout=executor.expert_timeout_seconds,
            task_timeout=settings.governance.max_task_duration_seconds,
            max_retries=min(executor.max_retries, settings.governance.max_retries),
            backoff_base=executor.backoff_base_seconds,
            backoff_max=executor.backoff_max_seconds,
            aggregation=executor.aggregation,
            context_factory=self.expert_context,
            events=self.events,
        )
        self.file_system = SafeFileSystem.from_settings(settings)
        self.safety = SafetyHandler.from_settings(settings, self.events)
        self.governance = Governance.from_settings(settings, self.events)
        self.state = StateStore(settings.state_file, default=default_state)
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
        self.observability = Observability(settings, self.events) if observe else None
        self._started = False

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
        return ExpertContext(settings=self.settings, llm=self.reasoning, file_system=self.file_system)

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

    def start(self) -> None:
        """Start background parts (observers, samplers). Idempotent."""
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

    def route(self, task: Task, top_k: int | None = None) -> RoutingDecision:
        return self.gating.route(task, top_k=top_k)

    async def submit(self, task: Task, *, top_k: int | None = None, aggregation: str | None = None) -> AggregatedResult:
        """Route, let governance decide, then run and aggregate one task. ``SafetyError`` once shutting down,
        ``GovernanceError`` when a policy refuses the task."""
        token = current_task_id.set(task.id)
        try:
            self.safety.ensure_accepting(task.id)
            self.events.publish(
                "task.received",
                "system",
                f"task received: {task.description[:80]}",
                task_id=task.id,
                metadata={"type": task.type, "priority": task.priority.value},
            )
            decision = self.governance.enforce_task(task, self.route(task, top_k=top_k))
            async with self.governance.admission.slot(task.id):
                self.safety.ensure_accepting(task.id)  # a shutdown may have begun while the task waited
                work = self.coordinator.run(task, decision, aggregation=aggregation)
                return await self.inflight.run(work, task_id=task.id)
        except VyNexusError:
            raise
        except Exception as exc:  # the flow contains expert failures; anything escaping it is a defect
            self.safety.report(f"internal error in the task flow: {exc!r}", Severity.CRITICAL, task_id=task.id)
            raise
        finally:
            current_task_id.reset(token)

    def run(self, task: Task, **kwargs: Any) -> AggregatedResult:
        """Synchronous ``submit`` for scripts and the CLI, in an event loop of its own: the reasoning core's pooled
        connections belong to that loop, so they are closed before it ends."""

        async def submit_once() -> AggregatedResult:
            try:
                return await self.submit(task, **kwargs)
            finally:
                await self.close_reasoning()

        return asyncio.run(submit_once())

    async def close_reasoning(self) -> None:
        """Close the reasoning core's backend (pooled HTTP clients, the loaded model) if it was built."""
        if self._reasoning is not None:
            await self._reasoning.aclose()

    async def astop(self, reason: str = "requested") -> None:
        """Stop from inside an event loop: shut the experts down too, drain observers off the loop."""
        self._stop_watcher.stop()
        await self.coordinator.shutdown()
        await self.close_reasoning()
        self._announce_stopped(reason)
        if self.observability is not None:
            await asyncio.to_thread(self.observability.stop)

    def stop(self, reason: str = "requested") -> None:
        self._stop_watcher.stop()
        self._announce_stopped(reason)
        if self.observability is not None:
            self.observability.stop()

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

    def __enter__(self) -> VyNexus:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def status(self) -> dict[str, Any]:
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
                "expert_timeout_seconds": self.settings.executor.expert_timeout_seconds,
                "max_retries": self.settings.executor.max_retries,
                "aggregation": self.settings.executor.aggregation,
            },
            "safety": {
                "shutting_down": self.safety.shutting_down,
                "reason": self.safety.shutdown_reason,
                "error_counts": self.safety.error_counts(),
            },
            "governance": {"running": self.governance.admission.load().running, "in_flight": len(self.inflight)},
        }

    def heartbeat(self) -> Heartbeat:
        """The heartbeat over this home's sovereign state (``vy-nexus pulse``)."""
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
