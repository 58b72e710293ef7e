"""The safety handler (time-windowed threshold), the stop file, its watcher and the SIGTERM handler."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from vy_nexus.errors import SafetyError
from vy_nexus.events import Event, EventBus
from vy_nexus.foundation.kill_switch import StopNotice, StopRequest, StopWatcher, sigterm_requests_shutdown
from vy_nexus.foundation.safety import SafetyHandler, Severity


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def seen() -> list[Event]:
    return []


@pytest.fixture
def bus(seen: list[Event]) -> EventBus:
    events = EventBus()
    events.subscribe(seen.append)
    return events


def handler(bus: EventBus, clock: FakeClock | None = None) -> SafetyHandler:
    return SafetyHandler(critical_threshold=3, window_seconds=300, events=bus, clock=clock or FakeClock())


def test_threshold_of_critical_errors_within_the_window_shuts_down(bus: EventBus, seen: list[Event]) -> None:
    clock = FakeClock()
    safety = handler(bus, clock)
    reasons: list[str] = []
    safety.on_shutdown(reasons.append)
    for _ in range(2):
        safety.report("disk on fire", Severity.CRITICAL)
        clock.now += 100
    assert not safety.shutting_down
    safety.report("disk on fire", "critical")
    assert safety.shutting_down
    assert reasons == [safety.shutdown_reason]
    assert "3 critical errors within 300 s" in reasons[0] and "disk on fire" in reasons[0]
    kinds = [e.kind for e in seen]
    assert kinds.count("safety.error") == 3 and kinds.count("safety.shutdown") == 1
    error = next(e for e in seen if e.kind == "safety.error")
    assert error.level == "error" and error.metadata["severity"] == "critical"


def test_critical_errors_spread_beyond_the_window_do_not(bus: EventBus) -> None:
    clock = FakeClock()
    safety = handler(bus, clock)
    for _ in range(10):
        safety.report("flaky", Severity.CRITICAL)
        clock.now += 151  # never three within 300 s
    assert not safety.shutting_down
    assert safety.error_counts()["critical"] == 10


def test_lower_severities_never_trigger_a_shutdown(bus: EventBus, seen: list[Event]) -> None:
    safety = handler(bus)
    for severity in ("low", "medium", "high"):
        for _ in range(5):
            safety.report("meh", severity)
    assert not safety.shutting_down
    assert safety.error_counts() == {"low": 5, "medium": 5, "high": 5, "critical": 0}
    assert {e.level for e in seen} == {"info", "warn", "error"}


def test_unknown_severity_is_rejected(bus: EventBus) -> None:
    with pytest.raises(ValueError):
        handler(bus).report("x", "torsion")


def test_manual_shutdown_refuses_new_work_and_keeps_the_first_reason(bus: EventBus, seen: list[Event]) -> None:
    safety = handler(bus)
    safety.ensure_accepting()
    assert safety.wait(0) is False
    assert safety.request_shutdown("maintenance") is True
    assert safety.request_shutdown("again") is False
    assert safety.shutdown_reason == "maintenance"
    assert safety.wait(0) is True
    with pytest.raises(SafetyError, match="shutting down \\(maintenance\\)") as info:
        safety.ensure_accepting("t1")
    assert info.value.task_id == "t1"
    assert [e.metadata["reason"] for e in seen if e.kind == "safety.shutdown"] == ["maintenance"]


def test_stop_request_file_roundtrip(tmp_path: Path) -> None:
    request = StopRequest(tmp_path)
    assert request.read() is None and request.clear() is False
    notice = request.write("maintenance", requested_by="tester")
    read = request.read()
    assert read is not None and read.reason == "maintenance" and read.requested_at == notice.requested_at
    assert read.requested_by.startswith("tester (pid ")
    assert request.clear() is True and not request.path.exists()


def test_a_hand_written_stop_file_counts(tmp_path: Path) -> None:
    (tmp_path / "STOP").write_text("going home\n")
    notice = StopRequest(tmp_path).read()
    assert notice is not None and notice.reason == "going home" and notice.requested_by == "file"


def test_watcher_ignores_and_removes_stale_requests(tmp_path: Path, bus: EventBus, seen: list[Event]) -> None:
    request = StopRequest(tmp_path)
    request.write("old")
    safety = handler(bus)
    watcher = StopWatcher(request, safety, interval=0.01, events=bus)
    watcher.start()
    try:
        assert not request.path.exists()
        assert any(e.kind == "safety.stale_stop" for e in seen)
        assert watcher.check() is False
    finally:
        watcher.stop()
    assert not safety.shutting_down


def test_watcher_engages_the_kill_switch_for_a_fresh_request(tmp_path: Path, bus: EventBus) -> None:
    request = StopRequest(tmp_path)
    safety = handler(bus)
    watcher = StopWatcher(request, safety, interval=0.01, events=bus)
    watcher.start()
    watcher.start()  # idempotent
    try:
        assert watcher.running
        time.sleep(0.02)
        request.write("please stop")
        assert safety.wait(2.0)
        assert safety.shutdown_reason is not None and safety.shutdown_reason.endswith(": please stop")
    finally:
        watcher.stop()
    assert not watcher.running


def test_sigterm_engages_the_kill_switch_and_the_old_handler_returns(bus: EventBus) -> None:
    safety = handler(bus)
    before = signal.getsignal(signal.SIGTERM)
    with sigterm_requests_shutdown(safety):
        assert signal.getsignal(signal.SIGTERM) is not before
        os.kill(os.getpid(), signal.SIGTERM)
        assert safety.wait(2.0)
    assert safety.shutdown_reason == "SIGTERM received"
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.parametrize("make", ["not_utf8", "directory"], ids=["not-utf8", "directory"])
def test_an_unreadable_stop_file_is_still_a_stop_request(tmp_path: Path, bus: EventBus, make: str) -> None:
    request = StopRequest(tmp_path)
    safety = handler(bus)
    watcher = StopWatcher(request, safety, interval=0.01, events=bus)
    watcher.start()
    try:
        time.sleep(0.02)
        if make == "directory":
            request.path.mkdir()
        else:  # appears whole, as an editor's save does: the watcher never sees it half-written
            (tmp_path / "STOP.tmp").write_bytes(b"\xff\xfe")
            (tmp_path / "STOP.tmp").replace(request.path)
        assert safety.wait(2.0)
        assert safety.shutdown_reason is not None and "unreadable STOP file" in safety.shutdown_reason
    finally:
        watcher.stop()
    assert request.clear() is True and not request.path.exists()


def test_a_stale_unreadable_stop_file_does_not_keep_the_system_from_starting(tmp_path: Path, bus: EventBus) -> None:
    (tmp_path / "STOP").mkdir()
    (tmp_path / "STOP" / "keep").write_text("")  # cannot be removed: still stale, so still ignored
    safety = handler(bus)
    watcher = StopWatcher(StopRequest(tmp_path), safety, interval=0.01, events=bus)
    watcher.start()
    try:
        time.sleep(0.05)
        assert watcher.running and not safety.shutting_down
    finally:
        watcher.stop()


class FlakyRequest(StopRequest):
    """A stop file whose first two reads fail the way a broken file system would."""

    def __init__(self, home: Path) -> None:
        super().__init__(home)
        self.failures = 2

    def read(self) -> StopNotice | None:
        if self.failures and self.path.exists():
            self.failures -= 1
            raise OSError(5, "Input/output error")
        return super().read()


def test_the_stop_watcher_survives_an_error_and_honours_a_later_stop(
    tmp_path: Path, bus: EventBus, seen: list[Event]
) -> None:
    request = FlakyRequest(tmp_path)
    safety = handler(bus)
    watcher = StopWatcher(request, safety, interval=0.01, events=bus)
    watcher.start()
    try:
        time.sleep(0.02)
        request.write("after the errors")
        assert safety.wait(2.0)
        assert safety.shutdown_reason is not None and safety.shutdown_reason.endswith(": after the errors")
    finally:
        watcher.stop()
    assert request.failures == 0
    assert any(e.kind == "safety.stop_watch_error" for e in seen)
