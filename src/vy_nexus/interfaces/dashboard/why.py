"""A task's "why": the routing decision laid out for people (candidates by score, the margin between the first two,
the words or routes that matched), the governance ruling (the verdict, the rule that decided and why, each rule's own
ruling with the limit it applied), each expert's result with its retries, and the journal lines of the task."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vy_nexus.observability.journal import STRUCTURED_FILENAME
from vy_nexus.observability.logquery import LogFilter, query
from vy_nexus.store import TaskRecord

MAX_JOURNAL_LINES = 200


@dataclass(frozen=True)
class Candidate:
    expert_id: str
    score: float
    chosen: bool


@dataclass(frozen=True)
class Check:
    """One policy's ruling on the task: ``policy`` (the rule), ``verdict``, and ``reason`` (the limit it applied)."""

    policy: str
    verdict: str
    reason: str


@dataclass(frozen=True)
class RulingView:
    """Governance's ruling as stored with the task: the verdict (allowed, throttled, denied, needs_approval), the rule
    that decided (``all`` when every policy allowed it), its reason, and each rule asked (empty for tasks recorded
    before rulings kept them)."""

    verdict: str
    policy: str
    reason: str
    checks: list[Check] = field(default_factory=list)

    @property
    def proceeds(self) -> bool:
        return self.verdict in ("allowed", "throttled")


def ruling_view(ruling: dict[str, Any] | None) -> RulingView | None:
    """The stored ruling (``Ruling.as_dict``) for people; any value is kept as text, never interpreted."""
    if not ruling:
        return None
    raw_checks = ruling.get("checks")
    checks = [
        Check(str(check.get("policy", "")), str(check.get("verdict", "")), str(check.get("reason", "")))
        for check in (raw_checks if isinstance(raw_checks, list) else [])
        if isinstance(check, dict)
    ]
    return RulingView(
        str(ruling.get("verdict", "unknown")), str(ruling.get("policy", "")), str(ruling.get("reason", "")), checks
    )


@dataclass(frozen=True)
class Why:
    candidates: list[Candidate]
    margin: float | None
    """Top score minus the runner-up's (``None`` with fewer than two candidates)."""
    decision: dict[str, Any] | None
    ruling: RulingView | None
    results: list[dict[str, Any]]
    retries: int
    journal: list[dict[str, Any]] = field(default_factory=list)


def explain(record: TaskRecord, logs_dir: Path) -> Why:
    decision = record.decision or None
    # Every candidate the strategy scored (decisions since the candidates field), else the chosen experts only.
    confidences: dict[str, float] = dict(
        (decision or {}).get("candidates") or (decision or {}).get("confidences") or {}
    )
    chosen = set((decision or {}).get("expert_ids") or record.experts)
    candidates = [
        Candidate(expert, float(score), expert in chosen)
        for expert, score in sorted(confidences.items(), key=lambda item: (-item[1], item[0]))
    ]
    margin = candidates[0].score - candidates[1].score if len(candidates) > 1 else None
    results = [{**result, "retries": max(0, int(result.get("attempts") or 1) - 1)} for result in record.results or []]
    return Why(
        candidates=candidates,
        margin=margin,
        decision=decision,
        ruling=ruling_view(record.ruling),
        results=results,
        retries=sum(result["retries"] for result in results),
        journal=journal_lines(logs_dir, record.id, since=record.created_at - 1.0),
    )


def journal_lines(logs_dir: Path, task_id: str, *, since: float | None = None) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for entry in query(logs_dir / STRUCTURED_FILENAME, LogFilter(task_id=task_id, since=since)):
        lines.append(
            {"timestamp": entry.timestamp, "level": entry.level, "component": entry.component, "message": entry.message}
        )
        if len(lines) >= MAX_JOURNAL_LINES:
            break
    return lines
