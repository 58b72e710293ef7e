"""Routing benchmark: cache speed-up, cache hit rate on a Zipf stream, semantic latency, CLINC150 accuracy.

Run:  .venv/bin/python benchmarks/routing.py [--clinc DIR] [--cache-dir DIR] [--stream N]

Prints, all measured in this one run:
1. routing time per task without and with the routing cache (keyword and semantic strategies), and the cut;
2. the cache hit rate on a Zipf(1.1) stream over 5,000 distinct tasks (max_size 1,000, TTL 300 s), next to the
   best any 1,000-entry cache could do on that stream (the share of requests for the 1,000 most popular tasks)
   and the LRU hit rate with room for every task;
3. keyword / semantic / hybrid on the evaluation prompts for the built-in experts (benchmarks/data/routing_eval.jsonl,
   dev and held-out splits): top-1 of gating and of the decision `run` executes after governance, the out-of-scope
   rate (tasks no expert was confident about, handed to the fallback expert) and uncached routing latency p50/p99,
   as wall-clock time and as the process's CPU time (which other jobs loading the cores do not inflate);
4. semantic routing latency p50/p99 per query (embedding included), one query at a time;
5. the encoder's session choices compared in this run, interleaved in blocks of 20 prompts (each block routed by
   every variant in turn, the order rotating) so that other jobs' load falls on all alike: default hybrid routing
   with float32 products (``routing.semantic.int8_matmul: false``, the behaviour before) and with integer
   products, with 1 and 2 onnxruntime threads — top-1 per split and uncached latency p50/p99, wall and CPU;
6. CLINC150 val accuracy for 150 intents and for 10 domains, with out-of-scope recall and ECE — when the data is
   present (default ../shared/data/clinc150); otherwise it says so and skips that part.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from vy_nexus.config import load_settings
from vy_nexus.execution.governance import RoutingPreview
from vy_nexus.experts.builtin import BUILTIN_EXPERTS
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.reasoning.embeddings import OnnxSentenceEncoder
from vy_nexus.routing.cache import RoutingCache
from vy_nexus.routing.decision_eval import AcceptExample, evaluate_decisions
from vy_nexus.routing.embedding_cache import CachedEncoder
from vy_nexus.routing.evaluate import evaluate, percentiles
from vy_nexus.routing.gating import GatingEngine
from vy_nexus.routing.hybrid import HybridStrategy
from vy_nexus.routing.keyword import KeywordStrategy
from vy_nexus.routing.route_model import fit_route_model
from vy_nexus.routing.routes import read_labeled, routes_from_labeled
from vy_nexus.routing.semantic import SemanticRouter, SemanticStrategy, task_text
from vy_nexus.routing.strategy import RoutingStrategy
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task

DEFAULT_CLINC = Path(__file__).resolve().parents[2] / "shared" / "data" / "clinc150"
DISTINCT_TASKS = 5000
ZIPF_EXPONENT = 1.1

EVAL_SET = Path(__file__).resolve().parent / "data" / "routing_eval.jsonl"
SPLITS = ("dev", "holdout")


def eval_rows() -> list[dict[str, Any]]:
    """The evaluation prompts: written for vy-nexus, labelled with acceptable experts, never used for fitting;
    the ``holdout`` third was not looked at while choosing the strategy, its weights or the route material."""
    with EVAL_SET.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def registry_with_builtins() -> ExpertRegistry:
    registry = ExpertRegistry()
    for expert_class in BUILTIN_EXPERTS:
        registry.register(expert_class())
    return registry


def per_call_us(call: Callable[[], object], repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        call()
    return (time.perf_counter() - started) / repeat * 1e6


def cache_speedup(name: str, strategy: RoutingStrategy, registry: ExpertRegistry, tasks: list[Task]) -> None:
    uncached = GatingEngine(registry, strategy)
    cached = GatingEngine(registry, strategy, cache=RoutingCache(max_size=1000, ttl_seconds=300))
    for task in tasks:
        cached.route(task)  # warm: every later call is a hit
    rounds = max(1, 400 // len(tasks))
    cold = per_call_us(lambda: [uncached.route(t) for t in tasks], rounds) / len(tasks)
    warm = per_call_us(lambda: [cached.route(t) for t in tasks], rounds * 5) / len(tasks)
    assert cached.cache is not None
    print(
        f"  {name:<8} uncached {cold:9.1f} µs/task   cached hit {warm:6.1f} µs/task"
        f"   cut {(1 - warm / cold) * 100:5.1f}%   (hit rate {cached.cache.stats().hit_rate * 100:.1f}%)"
    )


def zipf_stream(length: int, seed: int = 0) -> tuple[np.ndarray, float]:
    ranks = np.arange(1, DISTINCT_TASKS + 1, dtype=np.float64)
    weights = ranks**-ZIPF_EXPONENT
    weights /= weights.sum()
    stream = np.random.default_rng(seed).choice(DISTINCT_TASKS, size=length, p=weights)
    return stream, float(weights[:1000].sum())


def hit_rate(stream: np.ndarray, max_size: int, registry: ExpertRegistry) -> float:
    cache = RoutingCache(max_size=max_size, ttl_seconds=300)
    gating = GatingEngine(registry, KeywordStrategy(registry), cache=cache)
    tasks = [Task(description=f"task {i}: fix the python bug in module {i}") for i in range(DISTINCT_TASKS)]
    for index in stream:
        gating.route(tasks[index])
    return cache.stats().hit_rate


def cpu_timed(system: VyNexus, samples: list[float], task: Task) -> RoutingPreview:
    """``system.preview(task)``, recording its CPU time (of the whole process: load from other jobs does not count)."""
    started = time.process_time()
    preview = system.preview(task)
    samples.append((time.process_time() - started) * 1e3)
    return preview


def strategy_accuracy(system: VyNexus, strategies: dict[str, RoutingStrategy], rows: list[dict[str, Any]]) -> None:
    """Top-1 of gating and of the decision run executes (after governance), out-of-scope rate, latency."""
    print(
        f"  {'strategy':<9}{'split':<9}{'n':>4}  {'top-1':>6}  {'executed':>8}  {'out of scope':>12}"
        "  wall p50 / p99 ms  cpu p50 / p99 ms"
    )
    for name, strategy in strategies.items():
        system.gating = GatingEngine(system.registry, strategy, threshold=system.gating.threshold)
        for split in (*SPLITS, "all"):
            chosen = [r for r in rows if split in ("all", r["split"])]
            examples = [AcceptExample(r["text"], tuple(r["accept"])) for r in chosen]
            cpu: list[float] = []
            report = evaluate_decisions(examples, partial(cpu_timed, system, cpu), strategy=name)
            wall, spent = report.latency_ms, percentiles(cpu)
            print(
                f"  {name:<9}{split:<9}{report.examples:>4}  {report.top1 * 100:5.1f}%  {report.executed * 100:7.1f}%"
                f"  {report.out_of_scope_rate * 100:11.1f}%  {wall['p50']:8.2f} / {wall['p99']:6.2f}"
                f"  {spent['p50']:7.2f} / {spent['p99']:6.2f}"
            )


ENCODER_VARIANTS: dict[str, dict[str, str]] = {
    "float32 products, onnxruntime's threads": {"VY_NEXUS_ROUTING__SEMANTIC__INT8_MATMUL": "false", "threads": ""},
    "float32 products, 1 thread": {"VY_NEXUS_ROUTING__SEMANTIC__INT8_MATMUL": "false"},
    "int8 products, 1 thread (default)": {},
    "int8 products, 2 threads": {"VY_NEXUS_ROUTING__SEMANTIC__THREADS": "2"},
}
"""Environment overrides per variant; ``threads: ""`` leaves onnxruntime's own choice (one thread per core)."""


VARIANT_BLOCK = 20
"""Prompts each variant routes in a row: its weights stay in the CPU caches, as in a process with one encoder
(switching model on every prompt measured every variant 3x slower than part 3), while blocks alternate often enough
that other jobs' load falls on all variants alike."""


def encoder_variants(root: Path, rows: list[dict[str, Any]]) -> None:
    """Default hybrid routing under each ``ENCODER_VARIANTS`` entry, interleaved in blocks of ``VARIANT_BLOCK``."""
    systems: dict[str, VyNexus] = {}
    for index, (name, overrides) in enumerate(ENCODER_VARIANTS.items()):
        environ = {k: v for k, v in overrides.items() if k.startswith("VY_NEXUS_")}
        system = VyNexus(load_settings(root / f"variant-{index}", environ=environ), observe=False, load_plugins=False)
        semantic = system.gating.strategy.semantic  # type: ignore[attr-defined]
        if overrides.get("threads") == "":
            semantic.encoder.encoder.encoder.threads = None  # CachedEncoder > PastedTextEncoder > the ONNX encoder
        started = time.perf_counter()
        system.preview(Task(description="warm up"))  # loads the encoder (and refits the route model when needed)
        print(f"  {name}: ready in {time.perf_counter() - started:.1f} s; route model {semantic.model_note}")
        systems[name] = system
    names = list(systems)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    right: dict[str, dict[str, int]] = {n: dict.fromkeys(SPLITS, 0) for n in names}
    blocks = [rows[i : i + VARIANT_BLOCK] for i in range(0, len(rows), VARIANT_BLOCK)]
    for b, block in enumerate(blocks):
        for name in names[b % len(names) :] + names[: b % len(names)]:
            for row in block:
                task = Task(description=row["text"])
                started, started_cpu = time.perf_counter(), time.process_time()
                preview = systems[name].preview(task)
                wall[name].append((time.perf_counter() - started) * 1e3)
                cpu[name].append((time.process_time() - started_cpu) * 1e3)
                right[name][row["split"]] += preview.routed.expert_ids[0] in row["accept"]
    sizes = {split: sum(r["split"] == split for r in rows) for split in SPLITS}
    print(f"  {'variant':<40}{'dev top-1':>10}{'held-out':>10}  wall p50 / p99 ms  cpu p50 / p99 ms")
    for name in names:
        w, c = percentiles(wall[name]), percentiles(cpu[name])
        dev, held = (right[name][s] / sizes[s] * 100 for s in SPLITS)
        print(
            f"  {name:<40}{dev:9.1f}%{held:9.1f}%  {w['p50']:8.2f} / {w['p99']:6.2f}  {c['p50']:7.2f} / {c['p99']:6.2f}"
        )
    base, best = names[1], names[2]
    wall_x = percentiles(wall[base])["p50"] / percentiles(wall[best])["p50"]
    cpu_x = percentiles(cpu[base])["p50"] / percentiles(cpu[best])["p50"]
    print(f"  int8 vs float32 products (1 thread): p50 wall x{wall_x:.2f}, cpu x{cpu_x:.2f} faster")


def clinc(directory: Path, encoder: CachedEncoder) -> None:
    if not (directory / "train.jsonl").is_file():
        print(f"  CLINC150 not found at {directory}: skipped (pass --clinc DIR; the data lives in ../shared/data)")
        return
    train = read_labeled(directory / "train.jsonl", "intent")
    oos_train = read_labeled(directory / "oos_train.jsonl", "intent")
    routes = routes_from_labeled(train)
    started = time.perf_counter()
    model = fit_route_model(routes, encoder, oos_texts=[e.text for e in oos_train])
    print(
        f"  fitted {len(routes)} routes on {len(train)} utterances in {time.perf_counter() - started:.1f} s:"
        f" {model.kind}, held-out accuracy centroid {model.report.get('held_out_accuracy_centroid', 0) * 100:.1f}%"
        f" / head {model.report.get('held_out_accuracy_head', 0) * 100:.1f}%, T={model.temperature:.3f}"
    )
    router = SemanticRouter(routes, encoder, model)
    centroids = SemanticRouter.build(routes, encoder)
    for label_field in ("intent", "domain"):
        val = read_labeled(directory / "val.jsonl", label_field) + read_labeled(
            directory / "oos_val.jsonl", label_field
        )
        for name, candidate in (("head", router), ("centroid", centroids)):
            if name == "centroid" and label_field == "domain":
                continue
            report = evaluate(candidate, val, label_field=label_field, latency_sample=300 if name == "head" else 0)
            print(
                f"  val {label_field:<6} ({report.labels:>3} labels, {name:<8}) accuracy {report.accuracy * 100:5.1f}%"
                f"  closed-set {report.closed_set_accuracy * 100:5.1f}%"
                f"  oos recall {(report.oos_recall or 0) * 100:5.1f}%"
                f"  oos precision {(report.oos_precision or 0) * 100:5.1f}%"
                f"  ECE {report.ece:.4f}"
            )
            if report.latency_ms:
                latency = report.latency_ms
                print(
                    f"  semantic routing latency per query (150 routes, head): p50 {latency['p50']:.2f} ms"
                    f"  p95 {latency['p95']:.2f} ms  p99 {latency['p99']:.2f} ms"
                )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clinc", type=Path, default=DEFAULT_CLINC, help="CLINC150 directory (train/val jsonl)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="reuse utterance embeddings across runs")
    parser.add_argument("--stream", type=int, default=100_000, help="length of the Zipf request stream")
    args = parser.parse_args()
    cache_dir = args.cache_dir or Path(tempfile.mkdtemp(prefix="vy-routing-bench-"))
    registry = registry_with_builtins()
    settings = load_settings(cache_dir / "home", environ={})
    encoder = CachedEncoder(OnnxSentenceEncoder.from_settings(settings), cache_dir)
    system = VyNexus(settings, observe=False, load_plugins=False)
    semantic = SemanticStrategy.from_settings(system.registry, settings)
    semantic.router().encoder.encode(["warm up"])  # load the model outside the measurements
    print(f"semantic model: {semantic.model_note}")
    rows = eval_rows()
    tasks = [Task(description=row["text"]) for row in rows[:30]]

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load} (latencies grow with load)")
    print("1. routing cache: time per routed task (GatingEngine.route, built-in experts, 30 evaluation prompts)")
    cache_speedup("keyword", KeywordStrategy(registry), registry, tasks)
    cache_speedup("semantic", semantic, system.registry, tasks)

    print(f"2. cache hit rate, Zipf({ZIPF_EXPONENT}) stream of {args.stream:,} requests over {DISTINCT_TASKS:,} tasks")
    stream, ceiling = zipf_stream(args.stream)
    print(f"  max_size 1000 (default): {hit_rate(stream, 1000, registry) * 100:.1f}%")
    print(f"  best possible with 1000 entries (share of requests for the top 1000 tasks): {ceiling * 100:.1f}%")
    print(f"  max_size 2000: {hit_rate(stream, 2000, registry) * 100:.1f}%")
    print(f"  max_size 5000 (room for every task): {hit_rate(stream, 5000, registry) * 100:.1f}%")

    print(
        f"3. built-in experts, {len(rows)} evaluation prompts ({EVAL_SET.name}; executed = after governance's"
        f" min_routing_confidence {settings.governance.min_routing_confidence}; latency uncached, embedding included)"
    )
    strategy_accuracy(
        system,
        {
            "keyword": KeywordStrategy(system.registry),
            "semantic": semantic,
            "hybrid": HybridStrategy(KeywordStrategy(system.registry), semantic),
        },
        rows,
    )

    print("4. semantic routing latency, one query at a time (built-in expert routes)")
    router = semantic.router()
    samples, cpu_samples = [], []
    for _ in range(3):
        for row in rows:
            text = task_text(Task(description=row["text"]))
            started, started_cpu = time.perf_counter(), time.process_time()
            router.predict([text])
            samples.append((time.perf_counter() - started) * 1e3)
            cpu_samples.append((time.process_time() - started_cpu) * 1e3)
    for label, stats in (("wall", percentiles(samples)), ("cpu ", percentiles(cpu_samples))):
        print(f"  {label} p50 {stats['p50']:.2f} ms  p95 {stats['p95']:.2f} ms  p99 {stats['p99']:.2f} ms")

    print("5. encoder session choices, default hybrid routing, interleaved in blocks of prompts (uncached, in-process)")
    encoder_variants(cache_dir, rows)

    print("6. CLINC150 validation (routes from train.jsonl, out-of-scope from oos_val.jsonl)")
    clinc(args.clinc, encoder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
