"""A task's "why" shows every candidate the strategy scored, the margin between the first two, and governance's
ruling rule by rule, with whatever users wrote escaped."""

from __future__ import annotations

from pathlib import Path

from vy_nexus.interfaces.api.routers.dashboard import templates
from vy_nexus.interfaces.dashboard.why import explain, ruling_view
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


def test_the_ruling_is_laid_out_rule_by_rule(tmp_path: Path) -> None:
    ruling = {
        "verdict": "denied",
        "policy": "retries",
        "reason": "this is retry 3 of the task; governance.max_retries allows 2",
        "checks": [
            {"verdict": "allowed", "policy": "concurrency", "reason": "0/4 running"},
            {"verdict": "denied", "policy": "retries", "reason": "this is retry 3 of the task"},
        ],
    }
    record = TaskRecord(id="t3", state=TaskState.FAILED, description="x", created_at=0.0, ruling=ruling)
    view = explain(record, tmp_path).ruling
    assert view is not None and (view.verdict, view.policy, view.proceeds) == ("denied", "retries", False)
    assert [(c.policy, c.verdict) for c in view.checks] == [("concurrency", "allowed"), ("retries", "denied")]
    older = ruling_view({"verdict": "allowed", "policy": "all", "reason": "5 policies allowed the task"})
    assert older is not None and older.proceeds and older.checks == []
    odd = ruling_view({"verdict": 3, "checks": ["not a check", {"policy": None}]})
    assert odd is not None and odd.verdict == "3" and [c.policy for c in odd.checks] == ["None"]
    assert ruling_view(None) is None and ruling_view({}) is None


def test_the_task_page_escapes_what_users_wrote_in_the_ruling(tmp_path: Path) -> None:
    hostile = "<script>alert('x')</script>"
    ruling = {
        "verdict": "denied",
        "policy": f"rule {hostile}",
        "reason": f"refused: {hostile}",
        "checks": [{"verdict": "denied", "policy": "p", "reason": hostile}],
    }
    record = TaskRecord(id="t4", state=TaskState.FAILED, description=hostile, created_at=0.0, ruling=ruling)
    html = templates.env.get_template("task.html").render(
        key=None, section="task", task=record.model_dump(mode="json"), why=explain(record, tmp_path)
    )
    assert "<script>" not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert (
        'class="ruling verdict-denied"' in html and html.count("&lt;script&gt;") == 4
    )  # description, rule, reason, check
