"""The contract between the gating engine and a routing strategy (keyword, semantic, hybrid...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from vy_nexus.tasks import Task


# Not ``frozen``: built on every task's hot path, where a frozen dataclass costs 8x to build; treat as read-only.
@dataclass(slots=True)
class Scores:
    """A strategy's verdict: a confidence in [0, 1] per candidate expert, what it matched, and why."""

    confidences: dict[str, float]
    matched: list[str] = field(default_factory=list)
    reason: str = ""


class RoutingStrategy(Protocol):
    """``name`` labels decisions. A strategy that does CPU-heavy work (encoding) also sets a class attribute
    ``blocking = True``, and the gating engine calls it in a thread when routing from an event loop."""

    name: str

    def score(self, task: Task) -> Scores:
        """Score candidate experts for ``task``; experts not in the result are not candidates."""
        ...
