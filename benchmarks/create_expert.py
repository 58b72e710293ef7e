"""Time from `vy-nexus create-expert` to the expert's generated test passing, on a clean setup.

Each round uses a fresh, empty home directory and runs, as a user would, two fresh processes: the real
`vy-nexus create-expert` command, then `python -m pytest` on the generated test file. The expert is then routed to
through a third process (`vy-nexus route`) to show it is live. Prints per-step and total times (median, min, max over
the rounds) and the ratio of the median total to the 5 s target.

    python benchmarks/create_expert.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 5.0


def vy_nexus_command() -> list[str]:
    exe = shutil.which("vy-nexus", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-c", "from vy_nexus.interfaces.cli import main; main()"]


def timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return elapsed, done.stdout


def one_round(round_no: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="vy-nexus-bench-") as tmp:
        home = Path(tmp) / "home"
        env = {k: v for k, v in os.environ.items() if not k.startswith("VY_NEXUS_")}
        env.update(VY_NEXUS_HOME=str(home), COLUMNS="200")
        name = f"InvoiceChecker{round_no}"
        create = [
            *vy_nexus_command(),
            "create-expert",
            "--name",
            name,
            "--capabilities",
            "invoice,vat,receipt",
            "--description",
            "Checks invoices",
            "--json",
        ]
        create_s, out = timed(create, env, Path(tmp))
        files = json.loads(out)["files"]
        test_s, test_out = timed(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", files["test"]], env, Path(tmp)
        )
        if " passed" not in test_out or "failed" in test_out:
            raise SystemExit(f"generated test did not pass:\n{test_out}")
        route_s, route_out = timed([*vy_nexus_command(), "route", "check the vat on this invoice", "--json"], env, home)
        chosen = json.loads(route_out)["expert_ids"]
        expected = json.loads(out)["expert_id"]
        if chosen != [expected]:
            raise SystemExit(f"routing chose {chosen}, expected [{expected}]")
        return {"create": create_s, "test": test_s, "total": create_s + test_s, "route": route_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rounds = [one_round(i) for i in range(args.rounds)]
    print(f"create-expert -> generated test passing, {args.rounds} rounds, fresh home each round (2 processes)")
    for key, label in (
        ("create", "vy-nexus create-expert"),
        ("test", "pytest generated test"),
        ("total", "total (create + test)"),
        ("route", "then vy-nexus route (live)"),
    ):
        values = [r[key] for r in rounds]
        print(
            f"  {label:<28} median {statistics.median(values):6.2f} s"
            f"   min {min(values):6.2f} s   max {max(values):6.2f} s"
        )
    median_total = statistics.median(r["total"] for r in rounds)
    print(f"median total / {TARGET_SECONDS:.0f} s target = {median_total / TARGET_SECONDS:.2f}")


if __name__ == "__main__":
    main()
