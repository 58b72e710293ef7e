"""Scale-out with the Celery executor, measured in one run (needs Redis on 127.0.0.1:6379, or --broker):

1. throughput of a CPU-bound expert (~CPU_MS ms of pure Python per call) with 1 vs 2 `vy-nexus worker`
   processes (one pool process each), TASKS tasks submitted at once from one server; the ratio is the speed-up
   (the target on 2 idle cores is >= 1.7x). Both workers run throughout: worker A consumes the queues of two
   identical experts, worker B only the second's, so a burst for the first expert runs on one process and a burst
   for the second on two. ROUNDS rounds alternate the order; the median ratio is the result (a single pair of
   bursts swung from 1.65x to 2.4x on the same quiet machine);
2. per-task overhead of the celery executor against the local one with a no-op expert, tasks one after another:
   microseconds per task and the ratio.

Usage: python benchmarks/scale_out.py [--tasks 40] [--cpu-ms 100] [--rounds 5] [--calls 200] [--broker URL]
                                      [--store-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import yaml

from vy_nexus.config import load_settings
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task

EXPERTS = """
import time

from vy_nexus.experts.base import BaseExpert, ExpertOutput


class Burn(BaseExpert):
    id = "burn"
    name = "Burn"
    capabilities = ("burn",)

    def execute(self, task):
        wall, cpu = time.perf_counter(), time.process_time()
        total = 0
        for i in range(int(task.input["ops"])):
            total += i * i % 7
        return ExpertOutput({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu})


class BurnToo(Burn):
    id = "burn2"
    name = "Burn, on two workers"
    capabilities = ("burn2",)


class Noop(BaseExpert):
    id = "noop"
    name = "No-op"
    capabilities = ("noop",)

    async def execute(self, task):
        return ExpertOutput("ok", confidence=1.0)
"""


def make_home(root: Path, executor: dict[str, Any], store_url: str | None) -> Path:
    home = root / uuid.uuid4().hex[:8]
    (home / "experts").mkdir(parents=True)
    (home / "experts" / "bench_experts.py").write_text(EXPERTS, encoding="utf-8")
    config: dict[str, Any] = {
        "executor": executor,
        "governance": {"max_concurrent_tasks": 64, "max_queue_size": 1000},
        "routing": {"cache": {"enabled": False}},
    }
    if store_url:
        config["store"] = {"url": store_url}
    (home / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return home


def start_worker(home: Path, queues: list[str]) -> subprocess.Popen[str]:
    cli = Path(sys.executable).with_name("vy-nexus")
    process = subprocess.Popen(
        [str(cli), "--home", str(home), "worker", "--queues", ",".join(queues), "-c", "1", "-l", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    return process


def stop_workers(workers: list[subprocess.Popen[str]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)


async def wait_for_workers(system: VyNexus, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await asyncio.to_thread(system.status)
        if len(status["executor"].get("workers", {})) >= count:
            return
        await asyncio.sleep(0.5)
    raise SystemExit(f"{count} worker(s) did not answer within {timeout:.0f}s")


def ops_for(cpu_ms: float) -> int:
    """Loop iterations of Burn that take about ``cpu_ms`` here."""
    started, ops = time.perf_counter(), 200_000
    total = 0
    for i in range(ops):
        total += i * i % 7
    return max(1, int(ops * cpu_ms / 1e3 / (time.perf_counter() - started)))


@dataclass
class Burst:
    tasks_per_second: float
    calls_per_worker: list[int]
    share: float
    """The share of a core each call got (CPU time / wall time inside the expert)."""
    worker_cpu_per_call: float
    """CPU seconds per call the worker processes spent outside the expert (Celery, the ledger, the notice)."""
    server_cpu_per_call: float


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


async def burst(
    system: VyNexus, count: int, ops: int, workers: list[subprocess.Popen[str]], expert: str = "burn"
) -> Burst:
    """``count`` burn tasks submitted at once, with the CPU every process spent on them."""
    tasks = [Task(description="burn", input={"ops": ops}, context={"experts": [expert]}) for _ in range(count)]
    worker_processes = [psutil.Process(w.pid) for w in workers]
    worker_processes += [child for p in worker_processes for child in p.children(recursive=True)]
    server = [psutil.Process()]
    worker_cpu, server_cpu = cpu_seconds(worker_processes), cpu_seconds(server)
    started = time.perf_counter()
    results = await asyncio.gather(*(system.submit(task) for task in tasks))
    elapsed = time.perf_counter() - started
    worker_cpu, server_cpu = cpu_seconds(worker_processes) - worker_cpu, cpu_seconds(server) - server_cpu
    failed = [r.results for r in results if not r.ok]
    if failed:
        raise SystemExit(f"{len(failed)} burn tasks failed: {failed[0]}")
    per_worker = Counter(r.results[0].metadata.get("worker") for r in results)
    expert_cpu = sum(r.output["cpu"] for r in results)
    return Burst(
        tasks_per_second=count / elapsed,
        calls_per_worker=sorted(per_worker.values(), reverse=True),
        share=expert_cpu / sum(r.output["wall"] for r in results),
        worker_cpu_per_call=(worker_cpu - expert_cpu) / count,
        server_cpu_per_call=server_cpu / count,
    )


async def sequential(system: VyNexus, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        result = await system.submit(Task(description="noop", context={"experts": ["noop"]}))
        if not result.ok:
            raise SystemExit(f"noop failed: {result.results}")
    return (time.perf_counter() - started) / count


async def throughput(root: Path, args: argparse.Namespace, ops: int) -> list[tuple[Burst, Burst]]:
    """(one process, two processes) per round."""
    queues = {"burn": "vy-nexus.bench.one", "burn2": "vy-nexus.bench.two"}
    home = make_home(root, {"kind": "celery", "broker_url": args.broker, "queues": queues}, args.store_url)
    processes = [start_worker(home, list(queues.values())), start_worker(home, [queues["burn2"]])]
    rounds: list[tuple[Burst, Burst]] = []
    try:
        async with VyNexus(load_settings(home), observe=False) as system:
            await wait_for_workers(system, 2)
            for expert in ("burn", "burn2"):  # warm-up: each pool process loads its experts and opens the store
                await burst(system, 4, ops, processes, expert)
            for number in range(args.rounds):
                order = ("burn", "burn2") if number % 2 == 0 else ("burn2", "burn")
                measured = {expert: await burst(system, args.tasks, ops, processes, expert) for expert in order}
                rounds.append((measured["burn"], measured["burn2"]))
    finally:
        stop_workers(processes)
    return rounds


async def overhead(root: Path, args: argparse.Namespace) -> tuple[float, float]:
    local_home = make_home(root, {"kind": "local"}, None)
    async with VyNexus(load_settings(local_home), observe=False) as system:
        await sequential(system, 20)
        local = await sequential(system, args.calls)
    home = make_home(root, {"kind": "celery", "broker_url": args.broker}, args.store_url)
    processes = [start_worker(home, ["vy-nexus.expert.noop"])]
    try:
        async with VyNexus(load_settings(home), observe=False) as system:
            await wait_for_workers(system, 1)
            await sequential(system, 20)
            celery = await sequential(system, args.calls)
    finally:
        stop_workers(processes)
    return local, celery


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--cpu-ms", type=float, default=100.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--store-url", default=None, help="default: SQLite in a temporary home")
    args = parser.parse_args()
    ops = ops_for(args.cpu_ms)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rounds = await throughput(root, args, ops)
        local, celery = await overhead(root, args)
    print(
        f"CPU-bound expert (~{args.cpu_ms:.0f} ms/call, {args.tasks} tasks at once, {args.rounds} rounds),"
        f" {os.cpu_count()} CPUs:"
    )
    for number, (one, two) in enumerate(rounds, 1):
        print(
            f"  round {number}: 1 process {one.tasks_per_second:6.2f} tasks/s, 2 processes {two.tasks_per_second:6.2f}"
            f" tasks/s {two.calls_per_worker}: {two.tasks_per_second / one.tasks_per_second:.2f}x;"
            f" calls got {one.share:.0%} / {two.share:.0%} of a core"
        )
    for label, index in (("1 process  ", 0), ("2 processes", 1)):
        runs = [pair[index] for pair in rounds]
        print(
            f"  CPU per call outside the expert, {label}: workers"
            f" {statistics.median(r.worker_cpu_per_call for r in runs) * 1e3:.1f} ms,"
            f" server {statistics.median(r.server_cpu_per_call for r in runs) * 1e3:.1f} ms (medians)"
        )
    speed_up = statistics.median(two.tasks_per_second / one.tasks_per_second for one, two in rounds)
    share = statistics.median(2 * two.share / one.share for one, two in rounds)
    # Every burst has the same number of tasks, so the time per task summed over the rounds compares the totals.
    overall = sum(1 / one.tasks_per_second for one, _ in rounds) / sum(1 / two.tasks_per_second for _, two in rounds)
    print(
        f"  speed-up: median of the rounds {speed_up:.2f}x, all rounds' tasks over all rounds' time {overall:.2f}x;"
        f" CPU the calls got, 2 vs 1 processes: {share:.2f}x"
    )
    print(
        f"  load average at the end: {os.getloadavg()[0]:.1f} (other processes on this machine compete for the cores)"
    )
    print(f"No-op expert, {args.calls} tasks one after another:")
    print(f"  local executor : {local * 1e6:9.0f} us/task")
    print(f"  celery executor: {celery * 1e6:9.0f} us/task   overhead {(celery - local) * 1e6:.0f} us")
    print(f"  ratio celery/local: {celery / local:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
