"""Orchestration overhead per task: route + govern + run + aggregate a no-op expert.

Measures the whole ``VyNexus.submit`` path with observability as configured by default, against a direct call of
the same no-op expert, in one run. Prints µs per task, tasks/s and the overhead.

    python benchmarks/overhead.py [--tasks 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

from common import NoOpExpert, submit_all

from vy_nexus.config import load_settings
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task


async def direct(tasks: list[Task]) -> float:
    expert = NoOpExpert()
    started = time.perf_counter()
    for task in tasks:
        await expert.execute(task)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        settings = load_settings(home, environ={})
        system = VyNexus(settings)
        system.register(NoOpExpert(), source="benchmark")
        # Distinct texts, so the routing cache does not hide the routing cost.
        tasks = [Task(description=f"noop request number {i}") for i in range(args.tasks)]
        with system:
            asyncio.run(submit_all(system, tasks[:200]))  # warm-up
            baseline = asyncio.run(direct(tasks))
            total = asyncio.run(submit_all(system, tasks))
    per_task = total / args.tasks * 1e6
    print(f"tasks:                 {args.tasks}")
    print(f"direct expert call:    {baseline / args.tasks * 1e6:8.1f} µs/task")
    print(f"orchestrated submit:   {per_task:8.1f} µs/task  ({args.tasks / total:,.0f} tasks/s)")
    print(f"orchestration overhead {per_task - baseline / args.tasks * 1e6:8.1f} µs/task")


if __name__ == "__main__":
    main()
