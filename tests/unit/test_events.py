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
