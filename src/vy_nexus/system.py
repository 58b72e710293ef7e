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
from vy_nexus.errors import ExpertRegistrationError
from vy_nexus.events import EventBus, current_task_id
from vy_nexus.execution.coordinator import Coordinator
from vy_nexus.experts.base import BaseExpert, ExpertContext
from vy_nexus.experts.builtin import BUILTIN_EXPERTS
from vy_nexus.experts.loader import ExpertLoader, LoadReport
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.observability.stack import Observability
from vy_nexus.reasoning.core import ReasoningCore
from vy_nexus.reasoning.factory import build_reasoning_core
from vy_nexus.reasoning.llm import LLMBackend
from vy_nexus.routing.cache import RoutingCache
from vy_nexus.routing.gating import GatingEngine
from vy_nexus.routing.keyword import KeywordStrategy
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
            strategy or KeywordStrategy(self.registry),
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
        return ExpertContext(settings=self.settings, llm=self.reasoning)

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
        self.events.publish("system.started", "system", "vy-nexus started", category="milestone", phase="boot",
                            metadata={"home": str(self.settings.home), "experts": len(self.registry)})

    def route(self, task: Task, top_k: int | None = None) -> RoutingDecision:
        return self.gating.route(task, top_k=top_k)

    async def submit(self, task: Task, *, top_k: int | None = None, aggregation: str | None = None) -> AggregatedResult:
        """Route, then run, then aggregate one task."""
        token = current_task_id.set(task.id)
        try:
            self.events.publish("task.received", "system", f"task received: {task.description[:80]}",
                                task_id=task.id, metadata={"type": task.type, "priority": task.priority.value})
            decision = self.route(task, top_k=top_k)
            return await self.coordinator.run(task, decision, aggregation=aggregation)
        finally:
            current_task_id.reset(token)

    def run(self, task: Task, **kwargs: Any) -> AggregatedResult:
        """Synchronous ``submit`` for scripts and the CLI."""
        return asyncio.run(self.submit(task, **kwargs))

    async def astop(self, reason: str = "requested") -> None:
        await self.coordinator.shutdown()
        self.events.publish("system.stopped", "system", f"vy-nexus stopped: {reason}", category="milestone",
                            phase="shutdown", metadata={"reason": reason})
        self._started = False
        if self.observability is not None:
            await asyncio.to_thread(self.observability.stop)

    def stop(self, reason: str = "requested") -> None:
        if self._started:
            self.events.publish("system.stopped", "system", f"vy-nexus stopped: {reason}", category="milestone",
                                phase="shutdown", metadata={"reason": reason})
            self._started = False
        if self.observability is not None:
            self.observability.stop()

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
            "executor": self.settings.executor.kind,
        }

    def _on_registry_change(self, action: str, expert_id: str) -> None:
        self.events.publish(f"expert.{action}", "registry", f"expert {expert_id} {action}",
                            category="observation", expert_id=expert_id)
