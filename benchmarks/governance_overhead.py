"""What governance costs per task: ``VyNexus.submit`` with the default policy list against the same system with an
empty policy list (admission control, the kill-switch check and in-flight tracking stay in both), in one run.

    python benchmarks/governance_overhead.py [--tasks 5000]

Prints µs per task for both, the difference, and the ratio. No observers (``observe=False``), so only the flow is
measured.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile

from common import NoOpExpert, submit_all

from vy_nexus.config import load_settings
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        system = VyNexus(load_settings(home, environ={}), observe=False, load_plugins=False)
        system.register(NoOpExpert(), source="benchmark")
        tasks = [Task(description=f"noop request number {i}", context={"experts": ["noop"]}) for i in range(args.tasks)]
        policies = list(system.governance.policies)
        asyncio.run(submit_all(system, tasks[:200]))  # warm-up
        governed, bare = [], []
        for _ in range(args.rounds):  # interleaved, best of N: robust against a busy machine
            system.governance.policies[:] = policies
            governed.append(asyncio.run(submit_all(system, tasks)))
            system.governance.policies.clear()
            bare.append(asyncio.run(submit_all(system, tasks)))
        with_policies = min(governed) / args.tasks * 1e6
        without = min(bare) / args.tasks * 1e6
        print(f"tasks per round: {args.tasks}, rounds: {args.rounds} (best of each)")
        print(f"submit with {len(policies)} policies: {with_policies:8.1f} µs/task")
        print(f"submit with no policies:    {without:8.1f} µs/task")
        print(f"governance costs {with_policies - without:.1f} µs/task; ratio {with_policies / without:.3f}")


if __name__ == "__main__":
    main()
