from __future__ import annotations

import asyncio
import threading

import pytest

from spine_experts import make_expert
from vy_nexus.errors import FallbackExpertMissingError, RoutingError, UnknownExpertError
from vy_nexus.events import Event, EventBus
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.routing.cache import RoutingCache
from vy_nexus.routing.gating import GatingEngine
from vy_nexus.routing.keyword import KeywordStrategy
from vy_nexus.routing.strategy import Scores
from vy_nexus.tasks import RoutingDecision, Task


@pytest.fixture
def registry() -> ExpertRegistry:
    registry = ExpertRegistry()
    registry.register(make_expert("general", ("chat",)))
    registry.register(make_expert("coder", ("python", "bug", "code"), priority=5))
    registry.register(make_expert("data", ("csv", "python"), priority=1))
    return registry


def engine(registry: ExpertRegistry, **kwargs: object) -> GatingEngine:
    return GatingEngine(registry, KeywordStrategy(registry), **kwargs)  # type: ignore[arg-type]


def test_best_expert_wins(registry: ExpertRegistry) -> None:
    decision = engine(registry).route(Task(description="there is a bug in my python code"))
    assert decision.expert_ids == ["coder"]
    assert 0 < decision.confidence <= 1
    assert not decision.fallback


def test_top_k_orders_by_confidence(registry: ExpertRegistry) -> None:
    decision = engine(registry).route(Task(description="python code bug in csv loader"), top_k=2)
    assert decision.expert_ids == ["coder", "data"]
    assert decision.confidences["coder"] > decision.confidences["data"]


def test_ties_break_on_priority(registry: ExpertRegistry) -> None:
    decision = engine(registry).route(Task(description="python"), top_k=2)
    assert decision.expert_ids == ["coder", "data"]
    assert decision.confidences["coder"] == decision.confidences["data"]


def test_fallback_when_nothing_clears_threshold(registry: ExpertRegistry) -> None:
    decision = engine(registry, threshold=0.95).route(Task(description="python"))
    assert decision.expert_ids == ["general"]
    assert decision.fallback
    assert decision.confidence <= 0.5
    assert "fallback" in decision.reason
    assert not decision.out_of_scope  # there were candidates; they fell short of the threshold


def test_a_task_with_no_candidate_at_all_is_out_of_scope(registry: ExpertRegistry) -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    gate = engine(registry, events=bus, cache=RoutingCache())
    for _ in range(2):  # the second one from the cache keeps the flag
        decision = gate.route(Task(description="tell me about the weather on mars"))
        assert decision.fallback and decision.out_of_scope and decision.expert_ids == ["general"]
    assert [e.metadata["out_of_scope"] for e in seen] == [True, True] and seen[1].metadata["cache_hit"]
    assert not gate.route(Task(description="python bug")).out_of_scope


def test_fallback_missing_names_the_setting_to_fix(registry: ExpertRegistry) -> None:
    registry.unregister("general")
    with pytest.raises(FallbackExpertMissingError, match=r"fallback expert 'general' is not registered: set routing"):
        engine(registry).route(Task(description="nothing matches"))


def test_explicit_experts(registry: ExpertRegistry) -> None:
    decision = engine(registry).route(Task(description="x", context={"experts": ["data", "data"]}))
    assert decision.expert_ids == ["data"]
    assert decision.strategy == "explicit"
    with pytest.raises(UnknownExpertError):
        engine(registry).route(Task(description="x", context={"expert": "nobody"}))
    with pytest.raises(RoutingError):
        engine(registry).route(Task(description="x", context={"experts": [1]}))


def test_invalid_top_k(registry: ExpertRegistry) -> None:
    with pytest.raises(RoutingError):
        engine(registry).route(Task(description="x"), top_k=-1)


def test_cache_hits_and_invalidation_on_registry_change(registry: ExpertRegistry) -> None:
    cache = RoutingCache(max_size=10, ttl_seconds=60)
    gate = engine(registry, cache=cache)
    first = gate.route(Task(description="python bug"))
    second = gate.route(Task(description="  Python   BUG "))
    assert not first.cache_hit and second.cache_hit
    assert second.expert_ids == first.expert_ids
    registry.register(make_expert("debugger", ("bug", "python", "code", "stack trace"), priority=9))
    third = gate.route(Task(description="python bug"))
    assert not third.cache_hit


def test_routed_event_is_published(registry: ExpertRegistry) -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    engine(registry, events=bus).route(Task(id="t1", description="python bug"))
    assert seen[0].kind == "task.routed"
    assert seen[0].task_id == "t1"
    assert seen[0].metadata["experts"] == ["coder"]


class ThreadRecordingStrategy:
    """A strategy that declares it blocks (like the semantic one) and records which thread scored."""

    name = "recording"
    blocking = True

    def __init__(self) -> None:
        self.threads: list[str] = []

    def score(self, task: Task) -> Scores:
        self.threads.append(threading.current_thread().name)
        return Scores({"coder": 0.9}, reason="recorded")


def test_a_blocking_strategy_scores_off_the_loop_but_cached_and_explicit_answers_stay_on_it(
    registry: ExpertRegistry,
) -> None:
    strategy = ThreadRecordingStrategy()
    gating = GatingEngine(registry, strategy, cache=RoutingCache())

    async def scenario() -> list[RoutingDecision]:
        first = await gating.aroute(Task(description="scored in a thread"))
        again = await gating.aroute(Task(description="scored in a thread"))  # cached
        named = await gating.aroute(Task(description="anything", context={"experts": ["data"]}))
        return [first, again, named]

    first, again, named = asyncio.run(scenario())
    assert first.expert_ids == ["coder"] and again.cache_hit and named.strategy == "explicit"
    assert len(strategy.threads) == 1 and strategy.threads[0] != "MainThread"


def test_a_decision_keeps_the_runners_up_for_its_why(registry: ExpertRegistry) -> None:
    decision = engine(registry).route(Task(description="there is a bug in my python code"))
    assert decision.expert_ids == ["coder"]
    assert set(decision.candidates) >= {"coder", "data"}  # the runner-up is kept, so the margin can be shown
    assert decision.candidates["coder"] > decision.candidates["data"]
    assert list(decision.candidates) == sorted(decision.candidates, key=lambda e: -decision.candidates[e])
