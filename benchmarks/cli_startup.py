"""CLI cold start: wall time and CPU time of `vy-nexus --version`, `--help`, a keyword `route`, `status` and `run`,
beside the floor of `python -c 'import typer, rich'`, measured in one run (median of --runs fresh processes each,
interleaved, after one untimed warm-up run of each).

`run` answers two tasks no LLM is called for: a data question over examples/sales.csv and a check of
examples/mean.py (no review words, so the code expert analyses it exactly), each with keyword routing (the home's
config.yaml) and with the default hybrid routing (a second home without config.yaml: the sentence encoder loads).

Targets (issue 16): `--version`/`--help` ≤ 0.15 s and a keyword `route` ≤ 0.3 s on an idle 2-core machine, where the
floor takes about 0.07 s: about 2× and 4× the floor. On a shared, loaded machine compare the ratios; CPU time (user +
system of the child) moves less with load than wall time does.

The home holds a config.yaml choosing keyword routing, as `vy-nexus configure routing.strategy keyword` writes it
(its parse and the settings it validated to are cached after the warm-up run, as after a user's first command); the
same route with the choice made by an environment variable instead is measured beside it. The commands run as an
installed vy-nexus does: with bytecode caches (pip writes them at install), so PYTHONDONTWRITEBYTECODE is dropped for
the children and the warm-up run writes the caches of a source checkout.

    python benchmarks/cli_startup.py [--runs 7] [--only run]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "vy_nexus.interfaces.cli"]
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DATA_QUESTION = ["run", "total units by region in this csv", "--input", str(EXAMPLES / "sales.csv")]
CODE_CHECK = ["run", "check this python code", "--input", str(EXAMPLES / "mean.py")]
FLOOR = "floor: import typer, rich"
ENV_ROUTE = "route, keyword by env var"
"""The same route with keyword routing set by ``VY_NEXUS_ROUTING__STRATEGY`` instead of the home's config.yaml: an
environment override loads pydantic and pydantic-settings (config.py), which the file alone does not."""
COMMANDS: dict[str, list[str]] = {
    FLOOR: [sys.executable, "-c", "import typer, rich"],
    "--version": [*CLI, "--version"],
    "--help": [*CLI, "--help"],
    "route (keyword)": [*CLI, "route", "fix the bug in this python function"],
    ENV_ROUTE: [*CLI, "route", "fix the bug in this python function"],
    "status": [*CLI, "status", "--json"],
    "run data (keyword)": [*CLI, *DATA_QUESTION],
    "run data (hybrid)": [*CLI, *DATA_QUESTION],
    "run code check (keyword)": [*CLI, *CODE_CHECK],
    "run code check (hybrid)": [*CLI, *CODE_CHECK],
}
HYBRID = {"run data (hybrid)", "run code check (hybrid)"}
"""Run in a home without config.yaml: the default hybrid routing, whose sentence encoder loads on the first task."""
TARGETS = {"--version": 0.15, "--help": 0.15, "route (keyword)": 0.3}
IDLE_FLOOR = 0.072
"""The floor's wall time on an idle machine of the project (issue 16): the targets as ratios are target / this."""


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run."""
    cpu = children_cpu()
    started = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started, children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--only", default="", help="Measure only the commands whose name contains this (and the floor)."
    )
    args = parser.parse_args()
    commands = {name: command for name, command in COMMANDS.items() if name == FLOOR or args.only in name}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as hybrid_home:
        (Path(home) / "config.yaml").write_text("routing:\n  strategy: keyword\n", encoding="utf-8")
        env = {**os.environ, "VY_NEXUS_HOME": str(Path(home))}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for name in [name for name in env if name.startswith("VY_NEXUS_") and name != "VY_NEXUS_HOME"]:
            env.pop(name)  # the homes alone choose the routing
        envs = {name: env for name in commands}
        if ENV_ROUTE in envs:
            envs[ENV_ROUTE] = {**env, "VY_NEXUS_ROUTING__STRATEGY": "keyword"}
        for name in HYBRID & set(envs):
            envs[name] = {**env, "VY_NEXUS_HOME": hybrid_home}
        for name, command in commands.items():
            timed(command, envs[name])  # warm-up: bytecode caches, file system caches
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                wall, cpu = timed(command, envs[name])
                walls[name].append(wall)
                cpus[name].append(cpu)
    load_after = os.getloadavg()
    floor_wall = statistics.median(walls[FLOOR])
    floor_cpu = statistics.median(cpus[FLOOR])
    print(f"median of {args.runs} runs; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print(f"{'':26} {'wall':>8} {'× floor':>8} {'CPU':>8} {'× floor':>8}   target")
    for name in commands:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        target = (
            f"≤ {TARGETS[name]:.2f} s (≈{TARGETS[name] / IDLE_FLOOR:.1f}× an idle floor)" if name in TARGETS else ""
        )
        print(f"{name:26} {wall:6.3f} s {wall / floor_wall:7.1f}× {cpu:6.3f} s {cpu / floor_cpu:7.1f}×   {target}")


if __name__ == "__main__":
    main()
