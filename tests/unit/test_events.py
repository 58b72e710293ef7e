from __future__ import annotations

import pytest

from vy_nexus.events import Event, EventBus, current_task_id


def test_subscribe_emit_unsubscribe() -> None:
    bus = EventBus()
    seen: list[Event] = []
    assert not bus.has_subscribers
    bus.publish("nobody.listens", "test", "dropped")
    unsubscribe = bus.subscribe(seen.append)
    bus.publish("a.b", "test", "hello", metadata={"n": 1})
    unsubscribe()
    bus.publish("a.c", "test", "after")
    assert [e.kind for e in seen] == ["a.b"]
    assert seen[0].metadata == {"n": 1}


def test_task_id_comes_from_context() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    token = current_task_id.set("task-9")
    try:
        bus.publish("x", "test", "m")
    finally:
        current_task_id.reset(token)
    assert seen[0].task_id == "task-9"


def test_failing_subscriber_does_not_break_others(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    seen: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("observer bug")

    bus.subscribe(broken)
    bus.subscribe(seen.append)
    bus.publish("x", "test", "m")
    assert len(seen) == 1
    assert "observer bug" in caplog.text


def test_subscribers_get_only_what_they_declared_and_unwanted_events_are_not_built() -> None:
    stamped: list[float] = []

    def clock() -> float:
        stamped.append(1.0)
        return 1.0

    bus = EventBus(clock=clock)
    journal: list[Event] = []
    metrics: list[Event] = []
    unsubscribe = bus.subscribe(journal.append, levels=frozenset({"info", "warn", "error"}))
    bus.subscribe(metrics.append, levels=frozenset(), kinds=frozenset({"task.routed"}))
    assert bus.wants("info", "x") and bus.wants("debug", "task.routed") and not bus.wants("debug", "x")
    bus.publish("task.received", "test", "nobody wants debug", level="debug")
    assert stamped == []  # not built at all
    bus.publish("task.routed", "test", "routed", level="debug")
    bus.publish("task.aggregated", "test", "done")
    assert [e.kind for e in journal] == ["task.aggregated"]
    assert [e.kind for e in metrics] == ["task.routed"]
    unsubscribe()
    assert not bus.wants("info", "x") and bus.wants("info", "task.routed")
