"""Evaluate the routing decisions ``run`` would execute on user-labelled tasks: ``{"text": ..., "accept": [ids]}``.

Each line of the JSON Lines file is a task and the experts that could serve it (several may: a question about a
pasted table may be fine for data-analysis or research). A decision is right when its first expert is among
``accept``. Two numbers are reported because they can differ:

* ``top1`` — gating's first expert (what the strategy chose);
* ``executed`` — the first expert of the decision ``run`` would execute, after governance's rulings (a
  confidence below ``governance.min_routing_confidence`` hands the task to the fallback expert).

Also: the out-of-scope rate (tasks the strategy had no candidate for, so the fallback expert took them), the
governance reroute rate, accuracy per accepted expert, routing latency p50/p95/p99 of uncached decisions, and the
first misses for inspection.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vy_nexus.errors import ConfigError
from vy_nexus.routing.evaluate import percentiles
from vy_nexus.routing.routes import json_lines, require_file, required_text
from vy_nexus.tasks import Task

if TYPE_CHECKING:
    from vy_nexus.execution.governance import RoutingPreview

ACCEPT_FIELD = "accept"
MAX_MISSES = 20


@dataclass(frozen=True, slots=True)
class AcceptExample:
    text: str
    accept: tuple[str, ...]
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DecisionReport:
    examples: int
    strategy: str
    top1: float
    executed: float
    out_of_scope_rate: float
    rerouted_rate: float
    per_expert: dict[str, float]
    latency_ms: dict[str, float]
    misses: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_accept_file(path: Path) -> bool:
    """Whether the first record of a JSON Lines file has an ``accept`` field (else it is label-per-line data)."""
    require_file(path, "labeled data file")
    try:
        for _, row in json_lines(path):
            return ACCEPT_FIELD in row
    except ConfigError:
        return False  # read_labeled names the problem
    return False


def read_accept(path: Path) -> list[AcceptExample]:
    """Examples from JSON Lines with ``text`` and ``accept`` (an expert id or a list of them) on every line."""
    examples: list[AcceptExample] = []
    for number, row in json_lines(path):
        where = f"{path}:{number}"
        text = required_text(row, "text", where, "text")
        accept = row.get(ACCEPT_FIELD)
        accepted = [accept] if isinstance(accept, str) else accept
        if not isinstance(accepted, list) or not accepted or not all(isinstance(a, str) and a for a in accepted):
            raise ConfigError(f"{where}: 'accept' must be an expert id or a non-empty list of them")
        fields = {k: v for k, v in row.items() if k not in ("text", ACCEPT_FIELD) and isinstance(v, str)}
        examples.append(AcceptExample(text=text, accept=tuple(accepted), fields=fields))
    if not examples:
        raise ConfigError(f"labeled data file {path} holds no examples")
    return examples


def check_experts(examples: Sequence[AcceptExample], known: set[str]) -> None:
    unknown = sorted({a for e in examples for a in e.accept} - known)
    if unknown:
        raise ConfigError(
            f"'accept' names unregistered expert(s): {', '.join(unknown)} (registered: {', '.join(sorted(known))})"
        )


def evaluate_decisions(
    examples: Sequence[AcceptExample], preview: Callable[[Task], RoutingPreview], *, strategy: str
) -> DecisionReport:
    """Route every example through ``preview`` (``VyNexus.preview``) and score the decisions."""
    if not examples:
        raise ConfigError("no examples to evaluate")
    right = executed = out_of_scope = rerouted = 0
    per_expert: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    latencies: list[float] = []
    misses: list[dict[str, Any]] = []
    for example in examples:
        result = preview(Task(description=example.text))
        routed, decision = result.routed, result.decision
        ok = routed.expert_ids[0] in example.accept
        ran = decision.expert_ids[0] in example.accept
        right += ok
        executed += ran
        out_of_scope += routed.fallback
        rerouted += result.amended
        for expert_id in example.accept:
            per_expert[expert_id][0] += ok
            per_expert[expert_id][1] += 1
        if not routed.cache_hit:
            latencies.append(routed.latency_ms)
        if not ran and len(misses) < MAX_MISSES:
            misses.append(
                {
                    "text": example.text[:200],
                    "accept": list(example.accept),
                    "routed": routed.expert_ids[0],
                    "confidence": round(routed.confidence, 3),
                    "executed": decision.expert_ids[0],
                }
            )
    n = len(examples)
    return DecisionReport(
        examples=n,
        strategy=strategy,
        top1=right / n,
        executed=executed / n,
        out_of_scope_rate=out_of_scope / n,
        rerouted_rate=rerouted / n,
        per_expert={e: hits / total for e, (hits, total) in sorted(per_expert.items())},
        latency_ms=percentiles(latencies),
        misses=misses,
    )
