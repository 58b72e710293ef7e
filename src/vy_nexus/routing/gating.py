"""GatingEngine: decides which expert(s) handle a task, with a confidence, through a RoutingCache.

Order of decisions: an explicit choice in ``task.context["experts"]`` wins; otherwise the strategy scores the
candidates, the top ``k`` above the threshold are chosen (ties broken by expert priority, then id); when nothing
clears the threshold the fallback expert (``general``) takes the task. When the strategy had no candidate at all the
decision is also marked ``out_of_scope`` (the task is outside what any expert's routes or capabilities cover).
"""

from __future__ import annotations

import time

from vy_nexus.errors import FallbackExpertMissingError, RoutingError, UnknownExpertError
from vy_nexus.events import EventBus
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.routing.cache import RoutingCache, routing_key
from vy_nexus.routing.strategy import RoutingStrategy
from vy_nexus.tasks import RoutingDecision, Task

MAX_CANDIDATES = 5
"""How many of the strategy's scores a decision keeps for explaining it (the chosen experts and the runners-up)."""
FALLBACK_CONFIDENCE_CAP = 0.5
"""A fallback decision never claims more confidence than a coin flip: nothing specific matched."""


class GatingEngine:
    def __init__(
        self,
        registry: ExpertRegistry,
        strategy: RoutingStrategy,
        *,
        cache: RoutingCache | None = None,
        threshold: float = 0.3,
        fallback_expert: str = "general",
        default_top_k: int = 1,
        events: EventBus | None = None,
    ) -> None:
        self.registry = registry
        self.strategy = strategy
        self.cache = cache
        self.threshold = threshold
        self.fallback_expert = fallback_expert
        self.default_top_k = default_top_k
        self._events = events or EventBus()
        if cache is not None:
            registry.on_change(lambda _action, _expert_id: cache.invalidate())

    async def aroute(self, task: Task, top_k: int | None = None) -> RoutingDecision:
        """``route`` for an event loop: a strategy that declares ``blocking`` (it encodes text) runs in a thread,
        unless the answer needs no scoring (an explicit choice, a cached decision)."""
        if getattr(self.strategy, "blocking", False) and not self._answers_without_scoring(task, top_k):
            import asyncio  # here: routing alone (``vy-nexus route``) never loads asyncio (issue 16, cold start)

            return await asyncio.to_thread(self.route, task, top_k)
        return self.route(task, top_k)

    def _answers_without_scoring(self, task: Task, top_k: int | None) -> bool:
        if "experts" in task.context or "expert" in task.context:
            return True
        if self.cache is None:
            return False
        return routing_key(task, self.registry.version, top_k or self.default_top_k) in self.cache

    def route(self, task: Task, top_k: int | None = None) -> RoutingDecision:
        k = top_k or self.default_top_k
        if k < 1:
            raise RoutingError(f"top_k must be at least 1, got {k}", task_id=task.id)
        started = time.perf_counter()
        key = routing_key(task, self.registry.version, k) if self.cache is not None else ""
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is not None:
            decision = cached.with_changes(
                task_id=task.id, cache_hit=True, latency_ms=(time.perf_counter() - started) * 1e3
            )
        else:
            decision = self._decide(task, k, started)
            if self.cache is not None:
                self.cache.put(key, decision)
        if self._events.wants("info", "task.routed"):
            self._events.publish(
                "task.routed",
                "gating",
                f"routed to {', '.join(decision.expert_ids)} ({decision.confidence:.2f}, {decision.strategy})",
                category="decision",
                task_id=task.id,
                metadata={
                    "experts": decision.expert_ids,
                    "confidences": decision.confidences,
                    "strategy": decision.strategy,
                    "cache_hit": decision.cache_hit,
                    "latency_ms": decision.latency_ms,
                    "fallback": decision.fallback,
                    "out_of_scope": decision.out_of_scope,
                    "reason": decision.reason,
                },
            )
        return decision

    def _decide(self, task: Task, k: int, started: float) -> RoutingDecision:
        """The decision, its ``latency_ms`` counted from ``started`` (set once: a copy of a decision costs more)."""
        explicit = self.explicit_choice(task)
        if explicit:
            return RoutingDecision(
                task_id=task.id,
                expert_ids=explicit,
                confidences=dict.fromkeys(explicit, 1.0),
                strategy="explicit",
                reason="experts named in the task context",
                latency_ms=(time.perf_counter() - started) * 1e3,
            )
        scores = self.strategy.score(task)
        ranked = sorted(
            ((expert_id, conf) for expert_id, conf in scores.confidences.items() if expert_id in self.registry),
            key=lambda item: (-item[1], -self._priority(item[0]), item[0]),
        )
        chosen = [(expert_id, conf) for expert_id, conf in ranked if conf >= self.threshold][:k]
        candidates = {expert_id: round(conf, 4) for expert_id, conf in ranked[:MAX_CANDIDATES]}
        if chosen:
            return RoutingDecision(
                task_id=task.id,
                expert_ids=[expert_id for expert_id, _ in chosen],
                confidences={expert_id: round(conf, 4) for expert_id, conf in chosen},
                strategy=self.strategy.name,
                reason=scores.reason if len(chosen) == k else f"{scores.reason}; {self._fewer(k, ranked, len(chosen))}",
                capabilities=scores.matched,
                candidates=candidates,
                latency_ms=(time.perf_counter() - started) * 1e3,
            )
        best = ranked[0][1] if ranked else 0.0
        return self._fallback(task, scores.reason, best, scores.matched, candidates, started)

    def _fewer(self, k: int, ranked: list[tuple[str, float]], found: int) -> str:
        """Why a top-``k`` request got fewer experts."""
        asked = f"asked for {k} experts, {found} cleared the threshold {self.threshold:.2f}"
        if found < len(ranked):
            expert_id, confidence = ranked[found]
            return f"{asked} (next: {expert_id} at {confidence:.2f})"
        return f"{asked}; no other expert is a candidate"

    def _fallback(
        self,
        task: Task,
        reason: str,
        best: float,
        matched: list[str],
        candidates: dict[str, float],
        started: float,
    ) -> RoutingDecision:
        self.require_fallback(task, f"no expert matched the task ({reason})")
        confidence = round(min(FALLBACK_CONFIDENCE_CAP, max(best, 0.1)), 4)
        return RoutingDecision(
            task_id=task.id,
            expert_ids=[self.fallback_expert],
            confidences={self.fallback_expert: confidence},
            strategy=self.strategy.name,
            reason=f"{reason}; nothing cleared the threshold {self.threshold:.2f}, so the fallback expert takes it",
            capabilities=matched,
            candidates=candidates,
            fallback=True,
            out_of_scope=not candidates,  # the strategy scored no expert at all
            latency_ms=(time.perf_counter() - started) * 1e3,
        )

    def require_fallback(self, task: Task, why: str) -> None:
        """Raise ``FallbackExpertMissingError`` when the fallback expert a task needs (``why``) is not registered."""
        if self.fallback_expert in self.registry:
            return
        registered = ", ".join(sorted(expert.id for expert in self.registry)) or "none"
        raise FallbackExpertMissingError(
            f"{why}, and the fallback expert '{self.fallback_expert}' is not registered: set routing.fallback_expert"
            f" to a registered expert ({registered}), or stop disabling it (experts.disabled)",
            task_id=task.id,
        )

    def explicit_choice(self, task: Task) -> list[str]:
        """The experts ``task.context`` names (``experts`` or ``expert``), in order; empty when it names none.
        Raises ``RoutingError`` for a malformed choice and ``UnknownExpertError`` for an expert that does not exist."""
        named = task.context.get("experts", task.context.get("expert"))
        if named is None:
            return []
        ids = [named] if isinstance(named, str) else list(named) if isinstance(named, list) else None
        if not ids or not all(isinstance(i, str) for i in ids):
            raise RoutingError("context 'experts' must be an expert id or a list of expert ids", task_id=task.id)
        for expert_id in ids:
            if expert_id not in self.registry:
                try:
                    self.registry.get(expert_id)
                except UnknownExpertError as exc:
                    exc.task_id = task.id
                    raise
        return list(dict.fromkeys(ids))

    def _priority(self, expert_id: str) -> int:
        try:
            return self.registry.get(expert_id).priority
        except UnknownExpertError:
            return 0
