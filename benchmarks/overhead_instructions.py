"""Instructions per task of the whole ``submit`` path (observers and task store on), counted by callgrind.

A count of machine instructions does not move with other load on the machine, unlike µs per task (benchmarks/
overhead.py), so two versions can be compared on a busy shared machine: run this on each and compare. It runs the
overhead workload (no-op expert, keyword routing, distinct texts, store flushed at the end) under
``valgrind --tool=callgrind`` twice, with 0 and with ``--tasks`` tasks, and prints the difference per task, every
thread included (the store's and the observability writer's work too). Needs valgrind (Debian package
``valgrind``); takes about a minute and a half.

    python benchmarks/overhead_instructions.py [--tasks 300]
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


async def workload(home: Path, count: int) -> None:
    settings = load_settings(home, environ={"VY_NEXUS_ROUTING__STRATEGY": "keyword"})
    system = VyNexus(settings, load_plugins=False)
    system.register(NoOpExpert(), source="benchmark")
    async with system:
        for number in range(count):
            result = await system.submit(Task(description=f"noop request number {number}"))
            assert result.ok, result.results
        await asyncio.to_thread(system.store.flush)


def instructions(count: int) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        str(Path(__file__).resolve()),
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
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run is not None:
        with tempfile.TemporaryDirectory() as home:
            asyncio.run(workload(Path(home), args.run))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    base, loaded = instructions(0), instructions(args.tasks)
    print(f"instructions per task (callgrind, {args.tasks} tasks, every thread): {(loaded - base) / args.tasks:,.0f}")


if __name__ == "__main__":
    main()
