"""Hybrid routing: keyword evidence and semantic similarity, averaged over the strategies that have an opinion.

A strategy abstains when it returns no candidates (keyword: no capability or task type matched; semantic: the
task is out of scope). The confidence of an expert is the weighted mean of the confidences the non-abstaining
strategies give it (0 from a strategy that has an opinion but not about that expert), so:

* explicit capability words and a semantic match agree → both count;
* a paraphrase with no capability word → the semantic confidence alone;
* a task the routes do not cover but whose words name a capability → the keyword confidence alone;
* both abstain → no candidates, and the gating engine falls back to the general expert.
"""

from __future__ import annotations

from vy_nexus.routing.strategy import RoutingStrategy, Scores
from vy_nexus.tasks import Task

DEFAULT_SEMANTIC_WEIGHT = 0.6


class HybridStrategy:
    name = "hybrid"
    blocking = True  # it encodes: the gating engine runs it off the event loop

    def __init__(
        self, keyword: RoutingStrategy, semantic: RoutingStrategy, *, semantic_weight: float = DEFAULT_SEMANTIC_WEIGHT
    ) -> None:
        if not 0.0 <= semantic_weight <= 1.0:
            raise ValueError("semantic_weight must be between 0 and 1")
        self.keyword = keyword
        self.semantic = semantic
        self.semantic_weight = semantic_weight

    def score(self, task: Task) -> Scores:
        keyword = self.keyword.score(task)
        semantic = self.semantic.score(task)
        voters = [
            (scores, weight)
            for scores, weight in ((keyword, 1.0 - self.semantic_weight), (semantic, self.semantic_weight))
            if scores.confidences and weight > 0
        ]
        total = sum(weight for _, weight in voters)
        experts = {expert for scores, _ in voters for expert in scores.confidences}
        confidences = (
            {e: sum(w * s.confidences.get(e, 0.0) for s, w in voters) / total for e in experts} if total else {}
        )
        matched = list(dict.fromkeys([*keyword.matched, *semantic.matched]))
        reason = f"keyword: {keyword.reason}; semantic: {semantic.reason}"
        return Scores(confidences=confidences, matched=matched, reason=reason)
