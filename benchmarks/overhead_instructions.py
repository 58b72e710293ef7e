"""Instructions per task of the whole ``submit`` path (observers and task store on), counted by callgrind.

A count of machine instructions does not move with other load on the machine, unlike µs per task (benchmarks/
overhead.py), so two versions can be compared on a busy shared machine: run this on each and compare. It runs the
overhead workload (no-op expert, keyword routing, distinct texts, store and journal flushed at the end) under
``valgrind --tool=callgrind`` twice, both after ``--warmup`` tasks (as overhead.py warms up), then with 0 and with
``--tasks`` more tasks, and prints the difference per task, every thread included (the store's and the
observability writer's work too). One-time costs (the first task's imports, validators built on first use) stay
out, as they do in overhead.py's timing.

The writers' intervals are set long (store 10 s, journal and metrics 1 h, no system samples during the run):
under valgrind the loop runs ~50x slower, so the default intervals would write batches of a few tasks each and
count a per-batch cost a real run (hundreds of tasks per batch) spreads thin, and how many batches fall in the run
would move with the machine's load. Needs valgrind (Debian package ``valgrind``); takes about two and a half
minutes.

    python benchmarks/overhead_instructions.py [--tasks 600] [--warmup 300]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import NoOpExpert

from vy_nexus.config import load_settings
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task

COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


ENVIRON = {
    "VY_NEXUS_ROUTING__STRATEGY": "keyword",
    "VY_NEXUS_STORE__FLUSH_INTERVAL_SECONDS": "10",
    "VY_NEXUS_LOGGING__FLUSH_INTERVAL_SECONDS": "3600",
    "VY_NEXUS_METRICS__SYSTEM_SAMPLE_SECONDS": "3600",
}


async def submit_flushed(system: VyNexus, first: int, count: int) -> None:
    for number in range(first, first + count):
        result = await system.submit(Task(description=f"noop request number {number}"))
        assert result.ok, result.results
    await asyncio.to_thread(system.store.flush)
    if system.observability is not None:
        await asyncio.to_thread(system.observability.flush)


async def workload(home: Path, warmup: int, count: int) -> None:
    settings = load_settings(home, environ=ENVIRON)
    system = VyNexus(settings, load_plugins=False)
    system.register(NoOpExpert(), source="benchmark")
    async with system:
        await submit_flushed(system, 0, warmup)
        await submit_flushed(system, warmup, count)


def instructions(warmup: int, count: int) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        str(Path(__file__).resolve()),
        "--warmup",
        str(warmup),
        "--run",
        str(count),
    ]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    match = COLLECTED.search(finished.stderr)
    if finished.returncode != 0 or match is None:
        raise SystemExit(f"callgrind run failed ({finished.returncode}):\n{finished.stderr[-2000:]}")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run is not None:
        with tempfile.TemporaryDirectory() as home:
            asyncio.run(workload(Path(home), args.warmup, args.run))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    base, loaded = instructions(args.warmup, 0), instructions(args.warmup, args.tasks)
    per_task = (loaded - base) / args.tasks
    print(f"instructions per task (callgrind, {args.tasks} tasks after {args.warmup}, every thread): {per_task:,.0f}")


if __name__ == "__main__":
    main()
