from __future__ import annotations

import pytest

from vy_nexus.errors import TaskError
from vy_nexus.tasks import Priority, RoutingDecision, Task


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
