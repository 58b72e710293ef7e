"""CLI cold start: wall time of `vy-nexus --version`, `--help`, a keyword `route` and `status`, beside the floor of
`python -c 'import typer, rich'`, measured in one run (median of --runs fresh processes each, interleaved).

Targets (issue 16): `--version`/`--help` ≤ 0.15 s and a keyword `route` ≤ 0.3 s on an idle 2-core machine.

    python benchmarks/cli_startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "vy_nexus.interfaces.cli"]
COMMANDS: dict[str, list[str]] = {
    "floor: import typer, rich": [sys.executable, "-c", "import typer, rich"],
    "--version": [*CLI, "--version"],
    "--help": [*CLI, "--help"],
    "route (keyword)": [*CLI, "route", "fix the bug in this python function"],
    "status": [*CLI, "status", "--json"],
}


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "VY_NEXUS_HOME": str(Path(home)), "VY_NEXUS_ROUTING__STRATEGY": "keyword"}
        samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for _ in range(args.runs):
            for name, command in COMMANDS.items():
                samples[name].append(timed(command, env))
    floor = statistics.median(samples["floor: import typer, rich"])
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:28} {median:6.3f} s  ({median / floor:4.1f}× the floor)")


if __name__ == "__main__":
    main()
