"""Ways to combine several experts' results into one answer.

Each aggregator takes the successful results (in routing order) with the router's confidence in each expert and
returns ``(output, confidence)``. Weights are ``routing confidence × result confidence``.

* ``single``: the first successful result in routing order, as it is.
* ``confidence_weighted``: numbers are averaged by weight; anything else: the heaviest result wins, and its
  confidence is scaled by the share of weight that agrees with it.
* ``majority_vote``: equal outputs (strings compared case- and whitespace-insensitively) vote together; the
  largest group wins (ties: the heavier group); confidence = vote share × the winners' mean confidence.
* ``ensemble``: every output is kept: text is joined under one heading per expert, anything else becomes a
  mapping ``{expert_id: output}``; confidence is the weighted mean.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from vy_nexus.tasks import ExpertResult

Aggregator = Callable[[Sequence[ExpertResult], dict[str, float]], tuple[Any, float]]


def _weight(result: ExpertResult, routing: dict[str, float]) -> float:
    return max(routing.get(result.expert_id, 1.0), 1e-6) * max(result.confidence, 1e-6)


def _vote_key(output: Any) -> str:
    if isinstance(output, str):
        return " ".join(output.lower().split())
    try:
        return json.dumps(output, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(output)


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def single(results: Sequence[ExpertResult], routing: dict[str, float]) -> tuple[Any, float]:
    first = results[0]
    return first.output, first.confidence


def confidence_weighted(results: Sequence[ExpertResult], routing: dict[str, float]) -> tuple[Any, float]:
    weights = [_weight(r, routing) for r in results]
    total = sum(weights)
    if all(isinstance(r.output, int | float) and not isinstance(r.output, bool) for r in results):
        value = sum(w * float(r.output) for w, r in zip(weights, results, strict=True)) / total
        confidence = sum(w * r.confidence for w, r in zip(weights, results, strict=True)) / total
        return value, _clamp(confidence)
    best_index = max(range(len(results)), key=lambda i: weights[i])
    best = results[best_index]
    agreeing = sum(w for w, r in zip(weights, results, strict=True) if _vote_key(r.output) == _vote_key(best.output))
    return best.output, _clamp(best.confidence * agreeing / total)


def majority_vote(results: Sequence[ExpertResult], routing: dict[str, float]) -> tuple[Any, float]:
    groups: dict[str, list[ExpertResult]] = {}
    for result in results:
        groups.setdefault(_vote_key(result.output), []).append(result)
    winner = max(
        groups.values(),
        key=lambda group: (len(group), sum(_weight(r, routing) for r in group)),
    )
    share = len(winner) / len(results)
    mean_confidence = sum(r.confidence for r in winner) / len(winner)
    return winner[0].output, _clamp(share * mean_confidence)


def ensemble(results: Sequence[ExpertResult], routing: dict[str, float]) -> tuple[Any, float]:
    weights = [_weight(r, routing) for r in results]
    confidence = sum(w * r.confidence for w, r in zip(weights, results, strict=True)) / sum(weights)
    if len(results) == 1:
        return results[0].output, _clamp(confidence)
    if all(isinstance(r.output, str) for r in results):
        combined = "\n\n".join(f"## {r.expert_id}\n{r.output}" for r in results)
        return combined, _clamp(confidence)
    return {r.expert_id: r.output for r in results}, _clamp(confidence)


AGGREGATORS: dict[str, Aggregator] = {
    "single": single,
    "confidence_weighted": confidence_weighted,
    "majority_vote": majority_vote,
    "ensemble": ensemble,
}
