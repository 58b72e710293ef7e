"""Calibration: turn logits into confidences that mean what they say, and measure how well they do.

* ``softmax(logits, temperature)`` — temperature scaling (Guo et al., 2017): one scalar ``T`` fitted on held-out
  data by minimising the negative log-likelihood; it changes confidences, never the ranking.
* ``expected_calibration_error`` — the gap between confidence and accuracy, averaged over equal-width bins
  weighted by how many predictions fall in each (0 is perfect; a router that says 0.8 and is right 80% of the
  time has none).
* ``fit_rejection_threshold`` — the out-of-scope cut on a score (the head's max logit): the highest cut that costs
  at most ``max_in_scope_loss`` (1 point) of held-out in-scope accuracy, i.e. the most out-of-scope recall that
  budget buys.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from vy_nexus.routing.classifier import log_softmax

FloatArray = npt.NDArray[np.floating]
DEFAULT_BINS = 15
DEFAULT_IN_SCOPE_LOSS = 0.01


def softmax(logits: FloatArray, temperature: float = 1.0) -> npt.NDArray[np.float64]:
    return np.exp(log_softmax(np.asarray(logits, dtype=np.float64) / temperature))


def negative_log_likelihood(logits: FloatArray, labels: npt.NDArray[np.int64], temperature: float) -> float:
    logp = log_softmax(np.asarray(logits, dtype=np.float64) / temperature)
    return -float(logp[np.arange(len(labels)), labels].mean())


def fit_temperature(
    logits: FloatArray, labels: npt.NDArray[np.int64], low: float = 1e-3, high: float = 100.0, iterations: int = 60
) -> float:
    """The temperature minimising held-out NLL, by golden-section search on log T (NLL is unimodal in T)."""
    if len(labels) == 0:
        return 1.0
    a, b = math.log(low), math.log(high)
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc = negative_log_likelihood(logits, labels, math.exp(c))
    fd = negative_log_likelihood(logits, labels, math.exp(d))
    for _ in range(iterations):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = negative_log_likelihood(logits, labels, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = negative_log_likelihood(logits, labels, math.exp(d))
    return math.exp((a + b) / 2)


def expected_calibration_error(
    confidences: FloatArray, correct: npt.NDArray[np.bool_], bins: int = DEFAULT_BINS
) -> float:
    confidences = np.asarray(confidences, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if confidences.size == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidences, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(float(confidences[members].mean()) - float(correct[members].mean()))
    return float(error)


def fit_rejection_threshold(
    in_scope_scores: FloatArray,
    in_scope_correct: npt.NDArray[np.bool_],
    max_in_scope_loss: float = DEFAULT_IN_SCOPE_LOSS,
) -> float:
    """The highest cut on the score that rejects at most ``max_in_scope_loss`` of the held-out in-scope examples
    that would have been routed correctly. A higher cut catches more out-of-scope queries, so this is the most
    out-of-scope recall the in-scope accuracy budget allows. Scores below the cut mean out of scope."""
    scores = np.asarray(in_scope_scores, dtype=np.float64)
    correct = np.asarray(in_scope_correct, dtype=bool)
    if scores.size == 0 or not correct.any():
        return -math.inf
    budget = math.floor(max_in_scope_loss * scores.size)
    correct_scores = np.sort(scores[correct])
    if budget >= correct_scores.size:
        return float(correct_scores[-1])
    return float(correct_scores[budget])
