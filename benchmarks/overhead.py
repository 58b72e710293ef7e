"""Orchestration overhead per task: record + route + govern + run + aggregate a no-op expert, in one long-lived loop.

Measures the whole ``VyNexus.submit`` path with observability on (as configured by default) and the task store on
(the default SQLite file), against the same system with a store that keeps nothing and against a direct call of
the no-op expert, all in one run. The store's flush at the end is inside the timed part, so its background writes
are paid for. Prints µs per task, tasks/s, and what the store costs.

Targets (issue 11): ≤ 100 µs per task and ≥ 10,000 tasks/s with the store on.

    python benchmarks/overhead.py [--tasks 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from common import NoOpExpert

from vy_nexus.config import load_settings
from vy_nexus.store import TaskPage, TaskRecord
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task


class ForgetfulStore:
    """A task store that keeps nothing: the baseline that shows what the real one costs."""

    on_cancel = None

    def open(self) -> list[TaskRecord]:
        return []

    def close(self) -> None: ...
    def accept(self, task: Task) -> None: ...

    def routed(self, *_args: Any, **_kwargs: Any) -> None: ...
    def started(self, task_id: str) -> None: ...
    def finished(self, *_args: Any, **_kwargs: Any) -> None: ...
    def flush(self) -> None: ...
    def flush_soon(self) -> Future[None]:
        done: Future[None] = Future()
        done.set_result(None)
        return done

    def get(self, task_id: str) -> TaskRecord:
        raise NotImplementedError

    def list_tasks(self, **_filters: Any) -> TaskPage:
        return TaskPage(items=[], total=0)

    def request_cancel(self, task_id: str) -> TaskRecord:
        raise NotImplementedError

    def recover(self) -> list[TaskRecord]:
        return []

    def prune(self) -> int:
        return 0


async def submit_all(system: VyNexus, tasks: Iterable[Task]) -> tuple[float, float]:
    """Wall and CPU seconds (this process, every thread) to submit ``tasks`` and flush the store."""
    started, cpu = time.perf_counter(), time.process_time()
    for task in tasks:
        result = await system.submit(task)
        assert result.ok, result.results
    await asyncio.to_thread(system.store.flush)
    return time.perf_counter() - started, time.process_time() - cpu


async def direct(tasks: list[Task]) -> float:
    expert = NoOpExpert()
    started = time.perf_counter()
    for task in tasks:
        await expert.execute(task)
    return time.perf_counter() - started


async def measure(home: Path, tasks: list[Task], *, keep: bool) -> tuple[float, float]:
    # Keyword routing: this measures orchestration; benchmarks/routing.py measures the semantic encoder's cost.
    settings = load_settings(home, environ={"VY_NEXUS_ROUTING__STRATEGY": "keyword"})
    system = VyNexus(settings, store=None if keep else ForgetfulStore(), load_plugins=False)  # type: ignore[arg-type]
    system.register(NoOpExpert(), source="benchmark")
    async with system:
        await submit_all(system, [Task(description=f"warm-up {i} noop") for i in range(300)])
        return await submit_all(system, tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    per_task: dict[str, list[float]] = {"direct": [], "store on": [], "store off": []}
    cpu_per_task: dict[str, list[float]] = {"store on": [], "store off": []}
    for round_number in range(args.rounds):
        # Distinct texts, so the routing cache does not hide the routing cost.
        tasks = [Task(description=f"noop request number {round_number}-{i}") for i in range(args.tasks)]
        per_task["direct"].append(asyncio.run(direct(tasks)) / args.tasks * 1e6)
        order = [True, False] if round_number % 2 == 0 else [False, True]
        for keep in order:
            with tempfile.TemporaryDirectory() as home:
                took, cpu = asyncio.run(measure(Path(home), tasks, keep=keep))
            variant = "store on" if keep else "store off"
            per_task[variant].append(took / args.tasks * 1e6)
            cpu_per_task[variant].append(cpu / args.tasks * 1e6)
    median = {name: statistics.median(values) for name, values in per_task.items()}
    on, off = median["store on"], median["store off"]
    print(f"tasks per round:        {args.tasks} × {args.rounds} rounds (medians)")
    print(f"direct expert call:     {median['direct']:8.1f} µs/task")
    print(f"submit, store off:      {off:8.1f} µs/task  ({1e6 / off:,.0f} tasks/s)")
    print(f"submit, store on:       {on:8.1f} µs/task  ({1e6 / on:,.0f} tasks/s)")
    print(f"the task store costs    {on - off:8.1f} µs/task  (on/off throughput {off / on:.2f})")
    cpu_on, cpu_off = (statistics.median(cpu_per_task[v]) for v in ("store on", "store off"))
    print(f"CPU per task (all threads; load on the machine barely moves it): store off {cpu_off:.1f} µs,")
    print(f"    store on {cpu_on:.1f} µs, the store's share {cpu_on - cpu_off:.1f} µs")
    verdict = "meets" if on <= 100 and 1e6 / on >= 10_000 else "misses"
    print(f"target ≤ 100 µs and ≥ 10,000 tasks/s with the store on: {verdict}")


if __name__ == "__main__":
    main()
