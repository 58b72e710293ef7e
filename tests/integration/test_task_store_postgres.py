"""The same task store code on a real PostgreSQL (127.0.0.1:5432): a fresh database per test, dropped after.

Skips, naming what to install, when no PostgreSQL answers (a user's machine); CI starts one (.ci/run).
"""

from __future__ import annotations

import socket

from store_helpers import die
from vy_nexus.store import SqlTaskStore, TaskState
from vy_nexus.tasks import AggregatedResult, ExpertResult, RoutingDecision, Task


def test_the_store_works_the_same_on_postgresql(pg_url: str) -> None:
    store = SqlTaskStore(pg_url, flush_interval=60)
    store.open()
    other = SqlTaskStore(pg_url, owner_id="elsewhere:1:1")
    other.open()
    try:
        task = Task(description="sum the units", input={"rows": [1, 2]})
        store.accept(task)
        decision = RoutingDecision(
            task_id=task.id, expert_ids=["data-analysis"], confidences={"data-analysis": 0.9}, strategy="k", reason="r"
        )
        store.routed(task.id, decision, {"verdict": "allowed", "policy": "all", "reason": "ok"})
        store.started(task.id)
        assert other.list_tasks(states=[TaskState.RUNNING]).total == 0  # not flushed yet: the other process waits
        store.flush()
        assert other.get(task.id).state is TaskState.RUNNING  # another process sees it once committed
        assert other.request_cancel(task.id).cancel_requested
        result = ExpertResult(task_id=task.id, expert_id="data-analysis", output={"total": 3}, confidence=0.9)
        aggregated = AggregatedResult(
            task_id=task.id,
            output={"total": 3},
            experts=["data-analysis"],
            method="single",
            confidence=0.9,
            results=[result],
        )
        store.finished(task.id, TaskState.SUCCEEDED, result=aggregated)
        store.flush()
        done = other.get(task.id)
        assert done.state is TaskState.SUCCEEDED and done.output == {"total": 3}
        assert done.task["input"] == {"rows": [1, 2]} and done.experts == ["data-analysis"]
        assert other.list_tasks(expert="data-analysis").total == 1
    finally:
        other.close()
        store.close()


def test_tasks_of_a_dead_owner_are_interrupted_on_postgresql(pg_url: str) -> None:
    gone = SqlTaskStore(pg_url, owner_id=f"{socket.gethostname()}:999999:1")
    gone.open()
    task = Task(description="was running")
    gone.accept(task)
    gone.started(task.id)
    gone.flush()
    die(gone)
    survivor = SqlTaskStore(pg_url)
    try:
        assert [r.state for r in survivor.open()] == [TaskState.INTERRUPTED]
    finally:
        survivor.close()


def test_text_postgresql_cannot_hold_is_stored_on_postgresql(pg_url: str) -> None:
    store = SqlTaskStore(pg_url)
    store.open()
    try:
        task = Task(description="nul\x00inside", context={"big": 10**30, "odd": "x\udc00"})
        store.accept(task)
        record = store.get(task.id)
        assert record.description == "nul\ufffdinside" and record.task["description"] == "nul\x00inside"
        assert record.task["context"]["big"] == 10**30
    finally:
        store.close()
