"""What observability costs: tasks/s with journal + metrics ON vs OFF, and log-query time on a 1M-line journal.

Part 1 runs the same tasks through three systems in one process: ``off`` (``observe=False``), ``bus only``
(``observe=False`` plus a do-nothing subscriber, so events are built and delivered but nothing is written: the floor
any observer pays) and ``on`` (journal at ``info``, SQLite metrics, Prometheus, system sampler — all started). Rounds
rotate the order so drift on a shared machine hits all three. Each ON round ends with ``observability.flush()``, so
the writers' work (and the GIL they take) is inside the ON measurement. It runs once with a no-op expert (the worst
case: orchestration is all there is) and once with an expert spending 1 ms of CPU per task. Rounds last seconds, so
the fsyncs of the final flush (milliseconds, which the flow never waits for in steady state) do not dominate. Prints
the ratios (target ON/OFF ≥ 0.90).

Part 2 writes a structured.jsonl of ``--lines`` lines (default 1,000,000) and times ``vy_nexus.observability``
queries over it: a full scan with a rare component filter, a ``--task`` lookup, a ``--grep``, ``--level error``, and
``--since 1h`` (which bisects instead of scanning).

    python benchmarks/observability_overhead.py [--tasks 3000] [--rounds 6] [--busy-tasks 1500] [--lines 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from common import NoOpExpert

from vy_nexus.config import load_settings
from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.observability import LogFilter, QueryStats, query
from vy_nexus.observability.timeutil import iso_utc
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task

ENV = {name: value for name, value in os.environ.items() if name.startswith("VY_NEXUS_")}


class BusyExpert(NoOpExpert):
    """Spends about ``BUSY_SECONDS`` of CPU per task: a stand-in for an expert that does real work."""

    id = "busy"
    name = "Busy"

    async def execute(self, task: Task) -> ExpertOutput:
        deadline = time.perf_counter() + BUSY_SECONDS
        while time.perf_counter() < deadline:
            pass
        return ExpertOutput("ok", confidence=1.0)


BUSY_SECONDS = 0.001
VARIANTS = ("off", "bus only", "on")


async def run_tasks(system: VyNexus, tasks: list[Task]) -> None:
    for task in tasks:
        result = await system.submit(task)
        assert result.ok


def make_system(home: Path, variant: str, expert: BaseExpert) -> VyNexus:
    settings = load_settings(home, environ=ENV)
    system = VyNexus(settings, observe=variant == "on", register_builtins=False, load_plugins=False)
    if variant == "bus only":
        system.events.subscribe(lambda _event: None)  # events are built and delivered, nobody writes them
    system.register(expert, source="benchmark")
    return system


def throughput(expert_class: type[BaseExpert], n_tasks: int, rounds: int) -> dict[str, float]:
    """Median tasks/s per variant; rounds rotate the order so machine drift hits every variant alike."""
    rates: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        systems = {v: make_system(Path(tmp) / v.replace(" ", "-"), v, expert_class()) for v in VARIANTS}
        for system in systems.values():
            system.start()
            asyncio.run(run_tasks(system, [Task(description=f"noop warm {i}") for i in range(200)]))
        try:
            for round_index in range(rounds):
                shift = round_index % len(VARIANTS)
                for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                    system = systems[variant]
                    # Distinct texts, so the routing cache does not hide the routing cost.
                    tasks = [Task(description=f"noop round {round_index} task {i}") for i in range(n_tasks)]
                    started = time.perf_counter()
                    asyncio.run(run_tasks(system, tasks))
                    if system.observability is not None:
                        system.observability.flush()  # the writers' work belongs to the ON rounds
                    rates[variant].append(n_tasks / (time.perf_counter() - started))
        finally:
            for system in systems.values():
                system.stop()
    return {variant: statistics.median(values) for variant, values in rates.items()}


def report_throughput(n_tasks: int, rounds: int, busy_tasks: int) -> None:
    print(f"throughput: medians of {rounds} rounds per variant")
    for label, expert_class, count in (
        ("no-op expert", NoOpExpert, n_tasks),
        (f"{BUSY_SECONDS * 1e3:.0f} ms CPU expert", BusyExpert, busy_tasks),
    ):
        rates = throughput(expert_class, count, rounds)
        print(
            f"  {label:<17} {count:>5} tasks/round  OFF {rates['off']:7,.0f}/s  bus only {rates['bus only']:7,.0f}/s  "
            f"ON {rates['on']:7,.0f}/s  ratio ON/OFF {rates['on'] / rates['off']:.3f}  "
            f"(bus only/OFF {rates['bus only'] / rates['off']:.3f})"
        )
    print("  target: ratio ON/OFF >= 0.90")


def write_journal(path: Path, lines: int) -> float:
    """A realistic structured.jsonl: one line per second ending now; every 1000th line an error."""
    started = time.time() - lines
    components = ("system", "gating", "coordinator", "coordinator", "coordinator")
    with path.open("w", encoding="utf-8") as handle:
        batch = []
        for i in range(lines):
            component = components[i % 5]
            level = "error" if i % 1000 == 999 else "info"
            record = {
                "timestamp": iso_utc(started + i),
                "level": level,
                "phase": "runtime",
                "component": component,
                "kind": "expert.finished",
                "category": "observation",
                "message": f"expert code finished task {i:08x} in {i % 97}.5 ms",
                "task_id": f"{i:016x}",
                "expert_id": "code",
                "metadata": {"duration_ms": i % 97 + 0.5, "success": level == "info"},
            }
            batch.append(json.dumps(record, separators=(",", ":")) + "\n")
            if len(batch) == 10_000:
                handle.write("".join(batch))
                batch.clear()
        handle.write("".join(batch))
    return started


def timed_query(path: Path, label: str, flt: LogFilter) -> None:
    stats = QueryStats()
    started = time.perf_counter()
    matched = sum(1 for _ in query(path, flt, stats))
    seconds = time.perf_counter() - started
    print(f"  {label:<34} {seconds * 1e3:9.1f} ms  {matched:>9,} matches  {stats.lines:>9,} lines read")


def log_query(lines: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "structured.jsonl"
        started = time.perf_counter()
        first = write_journal(path, lines)
        size_mb = path.stat().st_size / 1e6
        seconds = time.perf_counter() - started
        print(f"log query: {lines:,} lines, {size_mb:,.0f} MB (generated in {seconds:.1f} s)")
        timed_query(path, "--component nosuch (full scan)", LogFilter(component="nosuch"))
        timed_query(path, "--level error", LogFilter(level="error"))
        timed_query(path, f"--task {lines // 2:016x}", LogFilter(task_id=f"{lines // 2:016x}"))
        timed_query(path, "--grep 'task 0007a12' (parse all)", LogFilter(grep="task 0007a12"))
        timed_query(path, "--since 1h (bisect)", LogFilter(since=first + lines - 3600))
        timed_query(
            path,
            "--component gating --since/--until",
            LogFilter(component="gating", since=first + lines * 0.5, until=first + lines * 0.6),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument(
        "--busy-tasks", type=int, default=1500, help="tasks per round for the 1 ms expert (rounds of ~1.5 s)"
    )
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    report_throughput(args.tasks, args.rounds, args.busy_tasks)
    log_query(args.lines)


if __name__ == "__main__":
    main()
