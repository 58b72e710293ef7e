"""Routing time per task with 10, 100, 1,000 and 10,000 registered experts (keyword strategy, cache off).

Each synthetic expert declares three capabilities drawn from a vocabulary that grows with the number of experts,
so more experts also means more distinct capabilities — the case where a scan-everything router slows down.
Prints µs per routed task and the ratio to the 10-expert time, measured in one run.

    python benchmarks/routing_scale.py [--tasks 2000]
"""

from __future__ import annotations

import argparse
import random
import time
from typing import ClassVar

from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.routing.gating import GatingEngine
from vy_nexus.routing.keyword import KeywordStrategy
from vy_nexus.tasks import Task

FILLER = [
    "please",
    "could",
    "you",
    "take",
    "a",
    "look",
    "at",
    "the",
    "following",
    "thing",
    "and",
    "tell",
    "me",
    "what",
    "you",
    "think",
    "about",
    "it",
]


def build_registry(size: int, rng: random.Random) -> tuple[ExpertRegistry, list[str]]:
    registry = ExpertRegistry()
    vocabulary = [f"skill{i}" for i in range(size * 2)]

    class General(BaseExpert):
        id = "general"
        name = "General"
        capabilities: ClassVar[tuple[str, ...]] = ("chat",)

        async def execute(self, task: Task) -> ExpertOutput:
            return ExpertOutput(None)

    registry.register(General())
    for index in range(size - 1):
        caps = tuple(rng.sample(vocabulary, 3))
        expert_class = type(
            f"Synthetic{index}",
            (General,),
            {"id": f"expert-{index}", "name": f"Expert {index}", "capabilities": caps},
        )
        registry.register(expert_class())
    return registry, vocabulary


def make_tasks(vocabulary: list[str], count: int, rng: random.Random) -> list[Task]:
    tasks = []
    for _ in range(count):
        words = rng.sample(FILLER, 10) + rng.sample(vocabulary, 2)
        rng.shuffle(words)
        tasks.append(Task(description=" ".join(words)))
    return tasks


def time_routing(size: int, task_count: int) -> float:
    rng = random.Random(size)
    registry, vocabulary = build_registry(size, rng)
    engine = GatingEngine(registry, KeywordStrategy(registry), cache=None)
    tasks = make_tasks(vocabulary, task_count, rng)
    for task in tasks[:100]:  # warm-up
        engine.route(task)
    started = time.perf_counter()
    for task in tasks:
        engine.route(task)
    return (time.perf_counter() - started) / task_count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    args = parser.parse_args()
    sizes = (10, 100, 1_000, 10_000)
    results = {size: time_routing(size, args.tasks) for size in sizes}
    base = results[10]
    print(f"{'experts':>8}  {'µs/task':>9}  {'ratio vs 10':>11}")
    for size in sizes:
        print(f"{size:>8}  {results[size]:>9.1f}  {results[size] / base:>10.2f}x")


if __name__ == "__main__":
    main()
