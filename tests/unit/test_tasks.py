from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from vy_nexus.errors import TaskError
from vy_nexus.tasks import AggregatedResult, ExpertResult, Priority, RoutingDecision, Task


def test_task_defaults_and_normalisation() -> None:
    task = Task(description="do it", type="  Code ")
    assert task.type == "code"
    assert task.priority is Priority.MEDIUM
    assert len(task.id) == 16


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "JSON object"),
        ({"description": "   "}, "description"),
        ({"description": "x", "priority": "urgent"}, "priority"),
        ({"description": "x", "colour": "red"}, "colour"),
        ({}, "description"),
    ],
)
def test_from_data_names_the_problem(data: object, fragment: str) -> None:
    with pytest.raises(TaskError, match=fragment):
        Task.from_data(data)


def test_decision_confidence_is_top_choice() -> None:
    decision = RoutingDecision(
        task_id="t", expert_ids=["a", "b"], confidences={"a": 0.9, "b": 0.4}, strategy="keyword", reason="r"
    )
    assert decision.confidence == 0.9
    empty = RoutingDecision(task_id="t", expert_ids=[], confidences={}, strategy="s", reason="r")
    assert empty.confidence == 0.0


def test_task_ids_do_not_repeat_when_someone_reseeds_random() -> None:
    import random

    from vy_nexus.tasks import new_task_id

    random.seed(7)
    first = new_task_id()
    random.seed(7)  # as hypothesis does before each example
    assert new_task_id() != first


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"id": ""}, "id: must be text of 1 to 128 characters"),
        ({"id": 7}, "id: must be text"),
        ({"type": "x" * 65}, "type: must be text of 1 to 64 characters"),
        ({"type": "   "}, "type: must not be blank"),
        ({"description": 42}, "description: must be text, not int"),
        ({"description": "x" * 100_001}, "description: must be at most 100,000 characters, not 100,001"),
        ({"context": ["a"]}, "context: must be an object, not list"),
        ({"deadline": "next tuesday"}, "deadline: must be an ISO 8601 date-time, not 'next tuesday'"),
        ({"deadline": 10**30}, "deadline: must be an ISO 8601 date-time"),
        ({"deadline": True}, "deadline: must be an ISO 8601 date-time"),
    ],
)
def test_a_task_built_with_a_bad_field_names_it(fields: dict[str, object], fragment: str) -> None:
    with pytest.raises(TaskError, match="invalid task: .*" + re.escape(fragment)):
        Task(**{"description": "do it", **fields})  # type: ignore[arg-type]


def test_a_task_reads_its_deadline_and_priority_from_json_values() -> None:
    task = Task.from_data({"description": "x", "deadline": "2026-12-03T10:00:00+00:00", "priority": "high"})
    assert task.deadline == datetime(2026, 12, 3, 10, tzinfo=UTC)
    assert task.priority is Priority.HIGH
    assert Task(description="x", deadline=0).deadline == datetime(1970, 1, 1, tzinfo=UTC)  # type: ignore[arg-type]


def test_a_task_is_immutable_and_with_changes_checks_the_copy() -> None:
    task = Task(description="x", context={"a": 1})
    with pytest.raises(AttributeError):
        task.description = "y"  # type: ignore[misc]
    changed = task.with_changes(context={"b": 2})
    assert (changed.id, changed.context, task.context) == (task.id, {"b": 2}, {"a": 1})
    with pytest.raises(TaskError, match="description"):
        task.with_changes(description="")


def test_as_dict_and_back_give_the_same_values() -> None:
    task = Task(description="sum", type="data", input=[1, 2], context={"k": "v"}, priority=Priority.LOW)
    data = json.loads(json.dumps(task.as_dict()))
    assert Task.from_data(data) == task
    assert "input" not in task.as_dict(include_input=False)
    decision = RoutingDecision(
        task_id=task.id, expert_ids=["data"], confidences={"data": 0.9}, strategy="keyword", reason="words"
    )
    result = ExpertResult(task_id=task.id, expert_id="data", output={"total": 3}, confidence=0.9)
    aggregated = AggregatedResult(
        task_id=task.id,
        output={"total": 3},
        experts=["data"],
        method="single",
        confidence=0.9,
        results=[result],
        decision=decision,
    )
    data = json.loads(json.dumps(aggregated.as_dict()))
    assert RoutingDecision.from_dict(data["decision"]) == decision
    assert ExpertResult.from_dict({**data["results"][0], "added_later": 1}) == result
    with pytest.raises(TaskError, match="expert result: expected a JSON object, not list"):
        ExpertResult.from_dict([])  # type: ignore[arg-type]
