"""Hybrid routing: the semantic strategy's calibrated probabilities, sharpened or tempered by keyword evidence.

A strategy abstains when it returns no candidates (keyword: no capability, pasted material or task type matched;
semantic: the task is out of scope). When both have an opinion, the experts' confidences are a product of experts:

    confidence(e) ∝ p_semantic(e) · exp(KEYWORD_WEIGHT · c_keyword(e))

normalised over all experts (an expert only the keyword strategy names enters with ``KEYWORD_ONLY_PRIOR``; the
probability of experts neither names keeps its weight), so

* capability words or pasted material that agree with the semantic match raise its confidence;
* a capability word for another expert lowers the confidence but rarely overturns a clear semantic match;
* a task type that experts declare (``--type``) is the user's choice: only those experts stay candidates; so is
  the type ``question`` of a question about a handed-over document (``routing/document_questions.py``): only the
  experts that answer questions stay, however much the request's few words sound like a rewrite or a table;
* a paraphrase with no capability word → the semantic confidences alone; a task the routes do not cover but whose
  words name a capability → the keyword confidences alone; both abstain → no candidates, and the gating engine
  falls back to the general expert.

The weight (2.0) was chosen on the development half of ``benchmarks/data/routing_eval.jsonl`` (see docs/routing.md):
a weighted mean of the two confidences, the previous rule, was as accurate but pulled the confidence of right
answers below governance's ``min_routing_confidence`` whenever a capability word pointed elsewhere.
"""

from __future__ import annotations

import math

from vy_nexus.routing.keyword import KeywordStrategy
from vy_nexus.routing.strategy import RoutingStrategy, Scores
from vy_nexus.tasks import Task

DEFAULT_KEYWORD_WEIGHT = 2.0
KEYWORD_ONLY_PRIOR = 0.01
"""The semantic probability assumed for an expert that only the keyword strategy names."""


class HybridStrategy:
    name = "hybrid"
    blocking = True  # it encodes: the gating engine runs it off the event loop

    def __init__(
        self, keyword: KeywordStrategy, semantic: RoutingStrategy, *, keyword_weight: float = DEFAULT_KEYWORD_WEIGHT
    ) -> None:
        if keyword_weight < 0:
            raise ValueError("keyword_weight must not be negative")
        self.keyword = keyword
        self.semantic = semantic
        self.keyword_weight = keyword_weight

    def score(self, task: Task) -> Scores:
        keyword = self.keyword.score(task)
        semantic = self.semantic.score(task)
        matched = list(dict.fromkeys([*keyword.matched, *semantic.matched]))
        reason = f"semantic: {semantic.reason}; keyword: {keyword.reason}"
        if not semantic.confidences or not keyword.confidences:
            confidences = semantic.confidences or keyword.confidences
            return Scores(confidences=dict(confidences), matched=matched, reason=reason)
        experts = {*semantic.confidences, *keyword.confidences}
        raw = {
            e: semantic.confidences.get(e, KEYWORD_ONLY_PRIOR)
            * math.exp(self.keyword_weight * keyword.confidences.get(e, 0.0))
            for e in experts
        }
        unreported = max(0.0, 1.0 - sum(semantic.confidences.values()))  # experts the semantic side left out
        typed = self.keyword.typed_experts(task)
        if typed:
            raw = {e: value for e, value in raw.items() if e in typed}
            unreported = 0.0
        total = sum(raw.values()) + unreported
        return Scores(confidences={e: value / total for e, value in raw.items()}, matched=matched, reason=reason)
