"""What one pooled HTTP client per backend saves against a new client per call, for both HTTP backends.

Each backend chats with a local server speaking its protocol (the test peers in tests/fakes/: real HTTP on
127.0.0.1, a four-token answer), ``--calls`` calls per round: once through one backend whose pooled client serves
every call (what a server does), once with a new backend, hence a new official client, per call. Prints the median
milliseconds per call over ``--rounds`` rounds, the ratio, and the connections the server accepted.

    python benchmarks/llm_clients.py [--calls 40] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fakes.http_server import FakeServer, serving
from fakes.ollama_server import OllamaServer
from fakes.openai_server import OpenAIServer
from vy_nexus.reasoning.core import ReasoningCore
from vy_nexus.reasoning.llm import LLMBackend, user
from vy_nexus.reasoning.ollama import OllamaBackend
from vy_nexus.reasoning.openai_compat import OpenAICompatBackend

Make = Callable[[str], LLMBackend]


async def pooled(make: Make, url: str, calls: int) -> float:
    async with ReasoningCore(make(url)) as core:
        started = time.perf_counter()
        for n in range(calls):
            await core.chat([user(f"hello {n}")])
        return (time.perf_counter() - started) / calls


async def client_per_call(make: Make, url: str, calls: int) -> float:
    started = time.perf_counter()
    for n in range(calls):
        async with ReasoningCore(make(url)) as core:
            await core.chat([user(f"hello {n}")])
    return (time.perf_counter() - started) / calls


def measure(name: str, server: FakeServer, make: Make, calls: int, rounds: int) -> None:
    with serving(server):
        asyncio.run(pooled(make, server.url, calls))  # warm-up
        before = server.connections
        pool = statistics.median(asyncio.run(pooled(make, server.url, calls)) for _ in range(rounds)) * 1e3
        pool_connections = server.connections - before
        before = server.connections
        fresh = statistics.median(asyncio.run(client_per_call(make, server.url, calls)) for _ in range(rounds)) * 1e3
        fresh_connections = server.connections - before
    print(
        f"{name:<7} pooled {pool:6.2f} ms/call ({pool_connections} connections) | new client per call "
        f"{fresh:6.2f} ms/call ({fresh_connections} connections) | ratio {fresh / pool:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores · load average {os.getloadavg()[0]:.2f} · {args.calls} calls × {args.rounds} rounds")
    measure("ollama", OllamaServer(), lambda url: OllamaBackend(base_url=url), args.calls, args.rounds)
    measure(
        "openai",
        OpenAIServer(),
        lambda url: OpenAICompatBackend("local-model", base_url=f"{url}/v1", environ={}),
        args.calls,
        args.rounds,
    )


if __name__ == "__main__":
    main()
