"""A task's "why" shows every candidate the strategy scored and the margin between the first two."""

from __future__ import annotations

from pathlib import Path

from vy_nexus.interfaces.dashboard.why import explain
from vy_nexus.store import TaskRecord, TaskState


def test_the_why_ranks_the_runners_up_and_measures_the_margin(tmp_path: Path) -> None:
    decision = {
        "expert_ids": ["code"],
        "confidences": {"code": 0.82},
        "candidates": {"code": 0.82, "data-analysis": 0.61, "general": 0.2},
        "reason": "matched 'python'",
        "strategy": "hybrid",
    }
    record = TaskRecord(id="t1", state=TaskState.SUCCEEDED, description="x", created_at=0.0, decision=decision)
    why = explain(record, tmp_path)
    assert [(c.expert_id, c.chosen) for c in why.candidates] == [
        ("code", True),
        ("data-analysis", False),
        ("general", False),
    ]
    assert why.margin is not None and abs(why.margin - 0.21) < 1e-9


def test_a_decision_from_before_candidates_were_kept_shows_the_chosen_experts(tmp_path: Path) -> None:
    decision = {"expert_ids": ["code"], "confidences": {"code": 0.82}, "reason": "r", "strategy": "keyword"}
    record = TaskRecord(id="t2", state=TaskState.SUCCEEDED, description="x", created_at=0.0, decision=decision)
    why = explain(record, tmp_path)
    assert [c.expert_id for c in why.candidates] == ["code"] and why.margin is None
