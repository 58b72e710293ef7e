"""A task's "why": the routing decision laid out for people (candidates by score, the margin between the first two,
the words or routes that matched), the governance ruling, each expert's result with its retries, and the journal
lines of the task."""

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
class Why:
    candidates: list[Candidate]
    margin: float | None
    """Top score minus the runner-up's (``None`` with fewer than two candidates)."""
    decision: dict[str, Any] | None
    ruling: dict[str, Any] | None
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
        ruling=record.ruling,
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
