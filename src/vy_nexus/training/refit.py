"""The route model of a trained encoder: its own trained head or a refitted one, calibrated on unseen sentences.

``routes fit`` calibrates (temperature, out-of-scope cut) on a share of the route utterances held out of the head.
After fine-tuning that share is no longer unseen: the encoder trained on (most of) those utterances and maps them
tighter than it maps new queries, so a cut fitted there rejects far more real queries than its budget says. Here
the held-out sentences are the ones the encoder did not train on (the share of each label kept out of fine-tuning,
or ``--val``), and three heads compete on them:

- ``trained``: the fine-tuning head itself (scaled cosine, so it applies as is to the normalised embeddings
  routing computes); a route it was not trained on gets the same scale times its utterances' normalised centroid;
- ``refit``: a logistic-regression head fitted on the route utterances (the held-out sentences left out while it
  is judged and calibrated, then refitted on all of them), as ``routes fit`` does;
- ``ensemble``: the mean of the two, each divided by its own held-out temperature (still one linear head).

The ensemble is kept unless one head alone is ahead of it on the held-out sentences by more than
``SINGLE_HEAD_MARGIN``: two heads of different kinds make different mistakes, and which single head is ahead flips
between held-out train utterances and new queries (on CLINC150 the trained head was 0.07 points ahead on the first
and 0.33 behind on the validation set in one run, 0.1 ahead on both in the next). Temperature and cut are fitted on
the kept head's held-out logits. The cut is the highest that costs at most ``max_in_scope_loss`` of held-out
accuracy, lowered, when out-of-scope examples are given, to the least that still rejects ``min_oos_recall`` of them:
a cut fitted on train paraphrases costs new queries more than its budget says, so it should not reject more than
the recall asked for.

Trained on everything (``holdout`` 0), there are no unseen in-scope sentences: a share of the train sentences stands
in for them (``held_out_seen``). The encoder trained on them, so they cannot tell the heads apart or price a cut;
they only weight the ensemble's two heads (each head's temperature; the refitted head is still judged with them left
out) and set the displayed temperature. The ensemble is kept without a contest, and the cut is the one that rejects
``min_oos_recall`` of the out-of-scope examples (without those, the in-scope budget on the seen sentences, which
rejects fewer queries than it would on unseen ones).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from vy_nexus.reasoning.embeddings import Encoder
from vy_nexus.routing.calibration import fit_rejection_threshold, fit_temperature
from vy_nexus.routing.classifier import CentroidClassifier, LogisticHead, Matrix
from vy_nexus.routing.route_model import RouteModel, fit_route_model, utterance_matrix
from vy_nexus.routing.routes import LabeledExample, Route, routes_fingerprint

SINGLE_HEAD_MARGIN = 0.005
"""Held-out accuracy by which one head alone must beat the ensemble to be kept instead (half a point)."""


def trained_rows(
    routes: Sequence[Route], vectors: Matrix, labels: npt.NDArray[np.int64], head: dict[str, Matrix]
) -> Matrix:
    """One weight row per route: the trained head's row for its label, else ``scale`` times the route's centroid."""
    rows = {name: head["weights"][i] for i, name in enumerate(head["labels"].tolist())}
    scale = float(np.linalg.norm(head["weights"], axis=1).mean())
    centroids = CentroidClassifier.fit(vectors, labels, len(routes)).centroids * scale
    return np.asarray(
        [rows.get(route.name, centroids[i]) for i, route in enumerate(routes)],
        dtype=np.float32,
    )


def ensemble(
    refit: tuple[Matrix, Matrix], trained: tuple[Matrix, Matrix], temperatures: dict[str, float]
) -> tuple[Matrix, Matrix]:
    """The mean of the two heads' temperature-scaled logits, which is itself one linear head (so routing runs it as
    any other): each head's weights and bias divided by its own held-out temperature, then averaged."""
    weights = (refit[0] / temperatures["refit"] + trained[0] / temperatures["trained"]) / 2
    bias = (refit[1] / temperatures["refit"] + trained[1] / temperatures["trained"]) / 2
    return weights.astype(np.float32), bias.astype(np.float32)


def choose_head(accuracy: dict[str, float]) -> str:
    """The head routing keeps, from the held-out accuracy of each candidate (see the module docstring)."""
    if "ensemble" not in accuracy:
        return "refit"
    single = max(("refit", "trained"), key=lambda name: accuracy[name])
    return single if accuracy[single] > accuracy["ensemble"] + SINGLE_HEAD_MARGIN else "ensemble"


def recall_cut(oos_scores: Matrix, min_recall: float) -> float:
    """The lowest cut on the score that rejects at least ``min_recall`` of the out-of-scope examples (a score below
    the cut is rejected)."""
    ordered = np.sort(np.asarray(oos_scores, dtype=np.float32))
    k = max(1, math.ceil(min_recall * ordered.size - 1e-9))
    # The next float32 up: the k-th score stays below the cut whether it is compared as float32 or float64.
    return float(np.nextafter(ordered[k - 1], np.float32(math.inf)))


def refit_trained_routes(
    routes: Sequence[Route],
    encoder: Encoder,
    held_out: Sequence[LabeledExample],
    *,
    head: dict[str, Matrix] | None = None,
    oos_texts: Sequence[str] = (),
    max_in_scope_loss: float,
    min_oos_recall: float | None = None,
    choice: str | None = None,
    held_out_seen: bool = False,
    c: float = 10.0,
) -> RouteModel:
    """The route model for ``routes`` on a trained ``encoder`` (see the module docstring). ``head`` is the trained
    head (``labels``: label names, ``weights``: one row per label) or None; ``held_out`` are in-scope sentences the
    encoder never trained on. ``choice`` forces one of the heads (to compare them). ``held_out_seen``: the
    encoder trained on ``held_out`` too (see the module docstring). Without held-out sentences that name a route,
    this is ``fit_route_model``."""
    position = {route.name: i for i, route in enumerate(routes)}
    held = [e for e in held_out if e.label in position]
    if not held:
        return fit_route_model(routes, encoder, oos_texts=oos_texts, max_in_scope_loss=max_in_scope_loss, c=c)
    vectors, labels = utterance_matrix(routes, encoder)
    held_vectors = encoder.encode([e.text for e in held])
    held_labels = np.asarray([position[e.label] for e in held], dtype=np.int64)
    held_texts = {e.text for e in held}
    texts = [u for route in routes for u in route.utterances]
    fit_part = np.asarray([i for i, text in enumerate(texts) if text not in held_texts], dtype=np.int64)
    n = len(routes)

    probe = LogisticHead.fit(vectors[fit_part], labels[fit_part], n, c=c, balanced=True)
    candidates: dict[str, tuple[Matrix, Matrix]] = {"refit": (probe.weights, probe.bias)}
    temperatures: dict[str, float] = {}
    if head is not None:
        candidates["trained"] = (trained_rows(routes, vectors, labels, head), np.zeros(n, dtype=np.float32))
        for name in ("refit", "trained"):
            temperatures[name] = fit_temperature(LogisticHead(*candidates[name]).logits(held_vectors), held_labels)
        candidates["ensemble"] = ensemble(candidates["refit"], candidates["trained"], temperatures)
    accuracy: dict[str, float] = {}
    held_logits: dict[str, Matrix] = {}
    for name, (weights, bias) in candidates.items():
        held_logits[name] = LogisticHead(weights, bias).logits(held_vectors)
        accuracy[name] = float((held_logits[name].argmax(axis=1) == held_labels).mean())
    if choice is not None and choice not in candidates:
        raise ValueError(f"no {choice!r} head here (candidates: {', '.join(candidates)})")
    if held_out_seen:
        choice = choice or ("ensemble" if "ensemble" in candidates else "refit")
    chosen = choice or choose_head(accuracy)
    logits = held_logits[chosen]
    temperature = fit_temperature(logits, held_labels)
    threshold = fit_rejection_threshold(logits.max(axis=1), logits.argmax(axis=1) == held_labels, max_in_scope_loss)
    oos_scores = (
        LogisticHead(*candidates[chosen]).logits(encoder.encode(list(oos_texts))).max(axis=1) if oos_texts else None
    )
    cut_by_recall = False
    if oos_scores is not None and min_oos_recall is not None:
        cut = recall_cut(oos_scores, min_oos_recall)
        cut_by_recall = held_out_seen or cut < threshold
        threshold = cut if cut_by_recall else threshold
    report: dict[str, Any] = {
        "utterances": len(labels),
        "held_out": len(held),
        "held_out_source": (
            "train sentences the encoder trained on (holdout 0)"
            if held_out_seen
            else "sentences the encoder did not train on"
        ),
        "oos_examples": len(oos_texts),
        **{f"held_out_accuracy_{name}": round(value, 4) for name, value in accuracy.items()},
        "head": chosen,
        "temperature": round(temperature, 4),
        **{f"temperature_{name}": round(value, 4) for name, value in temperatures.items()},
        "kind": "head",
        "c": c,
    }
    if oos_scores is not None:
        report["held_out_oos_recall"] = round(float((oos_scores < threshold).mean()), 4)
        report["cut"] = "out-of-scope recall" if cut_by_recall else "in-scope budget"
    report["held_out_in_scope_cost"] = round(
        float(((logits.argmax(axis=1) == held_labels) & (logits.max(axis=1) < threshold)).mean()), 4
    )
    final = candidates[chosen]
    if chosen != "trained":
        # Judged with the held-out sentences left out of the logistic regression; routing gets it fitted on all.
        refit = LogisticHead.fit(vectors, labels, n, c=c, balanced=True)
        final = (refit.weights, refit.bias)
        if chosen == "ensemble":
            final = ensemble(final, candidates["trained"], temperatures)
    weights, bias = final
    return RouteModel(
        kind="head",
        route_names=tuple(route.name for route in routes),
        fingerprint=routes_fingerprint(routes),
        model_id=encoder.model_id,
        temperature=temperature,
        rejection_threshold=threshold if math.isfinite(threshold) else -math.inf,
        arrays={"weights": weights, "bias": bias},
        report=report,
    )
