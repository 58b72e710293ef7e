from __future__ import annotations

import threading

import pytest

from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.routing.cache import RoutingCache, normalise_text, routing_key
from vy_nexus.routing.gating import GatingEngine
from vy_nexus.routing.keyword import KeywordStrategy
from vy_nexus.tasks import RoutingDecision, Task


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def decision(expert: str = "code") -> RoutingDecision:
    return RoutingDecision(task_id="t", expert_ids=[expert], confidences={expert: 0.9}, strategy="keyword", reason="")


def test_miss_then_hit_counts() -> None:
    cache = RoutingCache(max_size=10, ttl_seconds=60)
    assert cache.get("k") is None
    cache.put("k", decision())
    assert cache.get("k") == decision()
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.size) == (1, 1, 1)
    assert stats.hit_rate == 0.5


def test_entries_expire_after_ttl() -> None:
    clock = Clock()
    cache = RoutingCache(max_size=10, ttl_seconds=5, timer=clock)
    cache.put("k", decision())
    clock.now = 4.9
    assert cache.get("k") is not None
    clock.now = 5.1
    assert cache.get("k") is None
    stats = cache.stats()
    assert stats.expirations == 1
    assert stats.size == 0


def test_least_recently_used_entry_is_evicted() -> None:
    cache = RoutingCache(max_size=2, ttl_seconds=60)
    cache.put("a", decision("a"))
    cache.put("b", decision("b"))
    cache.get("a")  # a is now more recent than b
    cache.put("c", decision("c"))
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None
    assert cache.stats().evictions == 1
    assert len(cache) == 2


def test_invalidate_drops_everything_and_counts() -> None:
    cache = RoutingCache()
    cache.put("a", decision())
    cache.invalidate()
    assert cache.get("a") is None
    assert cache.stats().invalidations == 1
    assert cache.stats().as_dict()["size"] == 0


@pytest.mark.parametrize(("max_size", "ttl"), [(0, 10.0), (10, 0.0)])
def test_rejects_bad_limits(max_size: int, ttl: float) -> None:
    with pytest.raises(ValueError):
        RoutingCache(max_size=max_size, ttl_seconds=ttl)


def test_key_is_stable_and_normalised() -> None:
    a = Task(description="  Fix   the BUG\n", type="code", context={"user": "x"})
    b = Task(description="fix the bug", type="code", context={"user": "y"})
    assert normalise_text(a.description) == "fix the bug"
    assert routing_key(a, 3, 1) == routing_key(b, 3, 1)  # ids and non-routing context do not matter
    key = routing_key(a, 3, 1)
    assert len(key) == 32 and int(key, 16) >= 0
    assert key == routing_key(Task(description="fix the bug", type="code"), 3, 1)  # stable across task instances


@pytest.mark.parametrize(
    "other",
    [
        Task(description="fix the bug", type="research"),
        Task(description="fix the bugs", type="code"),
        Task(description="fix the bug", type="code", context={"language": "go"}),
    ],
)
def test_key_changes_with_what_routing_depends_on(other: Task) -> None:
    base = Task(description="fix the bug", type="code")
    assert routing_key(base, 1, 1) != routing_key(other, 1, 1)


def test_key_changes_with_registry_version_and_top_k() -> None:
    task = Task(description="fix the bug")
    assert len({routing_key(task, 1, 1), routing_key(task, 2, 1), routing_key(task, 1, 2)}) == 3


def test_concurrent_use_keeps_counts_exact() -> None:
    cache = RoutingCache(max_size=50, ttl_seconds=60)
    rounds, workers = 2000, 4

    def work(worker: int) -> None:
        for i in range(rounds):
            key = f"k{(i + worker) % 100}"
            if cache.get(key) is None:
                cache.put(key, decision())

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = cache.stats()
    assert stats.hits + stats.misses == rounds * workers
    assert stats.size <= 50
    assert stats.evictions > 0


class _Coder(BaseExpert):
    id = "coder"
    name = "Coder"
    capabilities = ("python",)

    async def execute(self, task: Task) -> ExpertOutput:
        return ExpertOutput("ok")


class _General(_Coder):
    id = "general"
    name = "General"
    capabilities = ("chat",)


def test_gating_serves_hits_and_invalidates_on_expert_change() -> None:
    registry = ExpertRegistry()
    registry.register(_General())
    cache = RoutingCache()
    gating = GatingEngine(registry, KeywordStrategy(registry), cache=cache)
    task = Task(description="python script please")
    first = gating.route(task)
    assert first.fallback and not first.cache_hit
    assert gating.route(task).cache_hit
    registry.register(_Coder())  # a new expert must not be hidden by a stale decision
    assert cache.stats().invalidations == 1
    fresh = gating.route(task)
    assert not fresh.cache_hit
    assert fresh.expert_ids == ["coder"]
