"""Task submissions per second against the running API server, beside a bare FastAPI endpoint, in one run.

Two servers run as their own processes on loopback (uvicorn, one worker each): the vy-nexus app (its own home, a
no-op expert, keys, rate limit raised out of the way, every request recorded) and a bare FastAPI app whose
``POST /api/tasks`` validates the same body and answers 202 at once. The load generator (this process) sends the same
``POST /api/tasks`` with ``CONCURRENCY`` requests in flight, bounded by ``--requests`` and ``--seconds``, and prints
requests/s, p50 and p99 latency for both and the ratio, and each server's CPU time per request (a number other load
on the machine barely moves). Rounds alternate between the two servers.

Targets (issue 12): vy-nexus ≥ 0.5× the bare endpoint's rate, p99 ≤ 50 ms at that rate.

    python benchmarks/api_load.py [--requests 2000] [--seconds 60] [--concurrency 8] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from vy_nexus.interfaces.api.schemas import TaskAccepted, TaskSubmission

BODY = {"description": "do nothing", "experts": ["noop"]}


def serve_vy_nexus(port: int, home: str) -> None:
    import uvicorn
    from common import NoOpExpert

    from vy_nexus.config import Settings, load_settings
    from vy_nexus.interfaces.api.app import create_app
    from vy_nexus.system import VyNexus

    def system(settings: Settings) -> VyNexus:
        vy = VyNexus(settings, load_plugins=False)
        vy.register(NoOpExpert(), source="benchmark")
        return vy

    settings = load_settings(home, api={"rate_limit_per_minute": 10_000_000}, governance={"max_queue_size": 100_000})
    uvicorn.run(create_app(settings, system_factory=system), port=port, log_level="warning")


def serve_bare(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI, Header

    app = FastAPI()

    @app.post("/api/tasks", status_code=202)
    async def submit(body: TaskSubmission, authorization: str = Header()) -> TaskAccepted:
        return TaskAccepted(id="0", location="/api/tasks/0", events="/api/tasks/0/events")

    uvicorn.run(app, port=port, log_level="warning")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def load(url: str, key: str, requests: int, seconds: float, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    remaining = requests
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, limits=limits) as client:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0 and time.monotonic() < deadline:
                remaining -= 1
                started = time.perf_counter()
                reply = await client.post("/api/tasks", json=BODY)
                latencies.append(time.perf_counter() - started)
                if reply.status_code != 202:
                    raise SystemExit(f"{url}: {reply.status_code} {reply.text}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    rates: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    cpu_per_request: list[float] = field(default_factory=list)


def start(name: str, command: list[str], port: int, key: str) -> Server:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.post(f"{url}/api/tasks", json=BODY, headers={"Authorization": f"Bearer {key}"}, timeout=1)
            return Server(name, url, process)
        except httpx.HTTPError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.terminate()
                raise SystemExit(f"{name} server did not start") from None
            time.sleep(0.2)


def server_cpu(server: Server) -> float:
    """CPU seconds the server process has used (every thread): unlike the rate, barely moved by other load."""
    times = psutil.Process(server.process.pid).cpu_times()
    return float(times.user + times.system)


def measure_round(server: Server, key: str, args: argparse.Namespace) -> None:
    cpu = server_cpu(server)
    rate, latencies = asyncio.run(load(server.url, key, args.requests, args.seconds, args.concurrency))
    time.sleep(0.5)  # the vy-nexus server finishes the tasks it accepted: their cost is part of a submission
    server.cpu_per_request.append((server_cpu(server) - cpu) / len(latencies))
    server.rates.append(rate)
    server.latencies.extend(latencies)


def report(server: Server) -> tuple[float, float, float]:
    quantiles = statistics.quantiles(server.latencies, n=100)
    rate, p50, p99 = statistics.median(server.rates), quantiles[49] * 1000, quantiles[98] * 1000
    cpu = statistics.median(server.cpu_per_request) * 1e6
    print(
        f"{server.name:>10}: {rate:8.0f} submissions/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms"
        f"   server CPU {cpu:6.0f} µs/request   ({len(server.latencies)} requests)"
    )
    return rate, p99, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4, help="measured rounds per server, alternating")
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        kind, port, *rest = args.serve
        serve_vy_nexus(int(port), rest[0]) if kind == "vy" else serve_bare(int(port))
        return
    from vy_nexus.interfaces.api.keys import KeyStore, keys_file

    me = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory() as home:
        key = KeyStore(keys_file(Path(home))).create("bench").secret
        bare_port, vy_port = free_port(), free_port()
        servers: list[Server] = []
        try:  # a server that fails to start stops the ones already running
            servers.append(start("bare", [sys.executable, me, "--serve", "bare", str(bare_port)], bare_port, key))
            servers.append(start("vy-nexus", [sys.executable, me, "--serve", "vy", str(vy_port), home], vy_port, key))
            for server in servers:  # warm-up
                asyncio.run(load(server.url, key, min(200, args.requests), 10, args.concurrency))
            # Rounds alternate between the two servers, so a change in the machine's load hits both alike.
            for round_number in range(args.rounds):
                for server in servers if round_number % 2 == 0 else servers[::-1]:
                    measure_round(server, key, args)
        finally:
            for server in servers:
                server.process.terminate()
                server.process.wait(timeout=30)
        (bare_rate, _, bare_cpu), (vy_rate, vy_p99, vy_cpu) = (report(server) for server in servers)
    print(
        f"ratio: vy-nexus {vy_rate / bare_rate:.2f}x the bare endpoint's rate (target >= 0.5x);"
        f" p99 {vy_p99:.1f} ms (target <= 50 ms); server CPU per request {vy_cpu / bare_cpu:.1f}x the bare one's"
    )


if __name__ == "__main__":
    main()
