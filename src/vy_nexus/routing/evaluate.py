"""Evaluate a ``SemanticRouter`` on labeled examples: accuracy, out-of-scope recall/precision, calibration, latency.

Labels are compared with route names, or, when the data's labels are not route names (``--label-field domain``
on routes fitted per intent), with each route's ``metadata[label_field]``: route probabilities are summed per
label, so the confidence of a domain is the probability mass of its intents.

Metrics (in-scope = examples whose label is not the out-of-scope label):

* ``accuracy`` — in-scope examples routed to the right label and not rejected (CLINC150's in-scope accuracy);
* ``closed_set_accuracy`` — in-scope examples whose best label is right, ignoring rejection;
* ``oos_recall`` / ``oos_precision`` — of out-of-scope examples, the share rejected; of rejections, the share
  that were out-of-scope;
* each is ``None`` when it has nothing to count (no in-scope examples for the accuracies, the calibration error
  and the mean confidence; no out-of-scope examples, or no rejection, for recall and precision);
* ``ece`` — expected calibration error of the best label's confidence on in-scope examples (closed set);
* ``latency_ms`` — p50/p95/p99 of routing one query at a time (embedding included) on a sample.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from vy_nexus.errors import ConfigError
from vy_nexus.routing.calibration import expected_calibration_error
from vy_nexus.routing.routes import OUT_OF_SCOPE_LABEL, LabeledExample
from vy_nexus.routing.semantic import SemanticRouter


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    examples: int
    in_scope: int
    out_of_scope: int
    labels: int
    accuracy: float | None
    """``None`` (as ``closed_set_accuracy``, ``ece`` and ``mean_confidence``) when no example is in scope."""
    closed_set_accuracy: float | None
    oos_recall: float | None
    oos_precision: float | None
    ece: float | None
    mean_confidence: float | None
    latency_ms: dict[str, float]
    model_kind: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def label_index(router: SemanticRouter, labels: set[str], label_field: str) -> tuple[list[str], list[int]]:
    """(label names, label index of each route): routes map to themselves or to their ``metadata[label_field]``."""
    route_names = [route.name for route in router.routes]
    if labels <= set(route_names):
        return route_names, list(range(len(route_names)))
    if not any(label_field in route.metadata for route in router.routes):
        unknown = sorted(labels - set(route_names))[:5]
        raise ConfigError(
            f"labels {unknown} are not route names, and no route has '{label_field}' metadata to map them:"
            " evaluate with the label field the routes were fitted on"
        )
    # A route without the field (an expert's own route) keeps its name: choosing it is never right.
    mapped = [route.metadata.get(label_field, route.name) for route in router.routes]
    names = sorted(set(mapped))
    position = {name: i for i, name in enumerate(names)}
    return names, [position[label] for label in mapped]


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    if not samples_ms:
        return {}
    values = np.asarray(samples_ms)
    return {f"p{q}": round(float(np.percentile(values, q)), 3) for q in (50, 95, 99)} | {
        "mean": round(float(values.mean()), 3)
    }


def measure_latency(router: SemanticRouter, texts: Sequence[str], sample: int) -> list[float]:
    timings = []
    for text in texts[:sample]:
        started = time.perf_counter()
        router.predict([text])
        timings.append((time.perf_counter() - started) * 1e3)
    return timings


def evaluate(
    router: SemanticRouter,
    examples: Sequence[LabeledExample],
    *,
    label_field: str = "intent",
    oos_label: str = OUT_OF_SCOPE_LABEL,
    latency_sample: int = 200,
) -> EvaluationReport:
    if not examples:
        raise ConfigError("no examples to evaluate")
    in_labels = {e.label for e in examples if e.label != oos_label}
    names, route_to_label = label_index(router, in_labels, label_field)
    unknown = sorted(in_labels - set(names))
    if unknown:
        raise ConfigError(f"labels with no route: {', '.join(unknown[:10])}")
    position = {name: i for i, name in enumerate(names)}
    logits, probs = router.probabilities([e.text for e in examples])
    verdicts = [router.verdict(logits[i], probs[i]) for i in range(len(examples))]
    mapping = np.zeros((len(router.routes), len(names)))
    mapping[np.arange(len(router.routes)), route_to_label] = 1.0
    label_probs = probs @ mapping
    best = label_probs.argmax(axis=1)
    confidence = label_probs.max(axis=1)
    rejected = np.asarray([v.out_of_scope for v in verdicts])
    is_oos = np.asarray([e.label == oos_label for e in examples])
    truth = np.asarray([position.get(e.label, -1) for e in examples])
    closed_correct = best == truth
    in_scope = ~is_oos
    n_in, n_oos = int(in_scope.sum()), int(is_oos.sum())
    samples = measure_latency(router, [e.text for e in examples], latency_sample)
    return EvaluationReport(
        examples=len(examples),
        in_scope=n_in,
        out_of_scope=n_oos,
        labels=len(in_labels),
        accuracy=float((closed_correct & ~rejected & in_scope).sum() / n_in) if n_in else None,
        closed_set_accuracy=float(closed_correct[in_scope].mean()) if n_in else None,
        oos_recall=float(rejected[is_oos].mean()) if n_oos else None,
        oos_precision=float(is_oos[rejected].mean()) if rejected.any() and n_oos else None,
        ece=expected_calibration_error(confidence[in_scope], closed_correct[in_scope]) if n_in else None,
        mean_confidence=float(confidence[in_scope].mean()) if n_in else None,
        latency_ms=percentiles(samples),
        model_kind=router.model.kind,
    )
