"""The safety handler: errors with a severity, and the kill switch.

Components report errors with a severity (low, medium, high, critical; the seed called them torsion errors). When
``safety.critical_error_threshold`` critical errors arrive within ``safety.window_seconds`` the handler requests a
graceful shutdown. A manual kill switch (``vy-nexus stop`` through the stop file, SIGTERM in long-running commands,
an API call) requests the same shutdown.

A shutdown request only sets a flag and tells the listeners (the system stops accepting tasks, cancels in-flight
ones after the grace period and persists its state); the interface that owns the process decides how to exit.
Library code never calls ``sys.exit``.

Events: ``safety.error`` for every report, ``safety.shutdown`` once when a shutdown is requested.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from vy_nexus.config import Settings
from vy_nexus.errors import SafetyError
from vy_nexus.events import EventBus, Level

Clock = Callable[[], float]
ShutdownListener = Callable[[str], None]


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


_LEVELS: dict[Severity, Level] = {
    Severity.LOW: "info",
    Severity.MEDIUM: "warn",
    Severity.HIGH: "error",
    Severity.CRITICAL: "error",
}


@dataclass(frozen=True, slots=True)
class Incident:
    severity: Severity
    message: str
    component: str
    timestamp: float


class SafetyHandler:
    """Counts reported errors and owns the shutdown flag. Thread-safe."""

    def __init__(
        self,
        *,
        critical_threshold: int = 3,
        window_seconds: float = 300.0,
        events: EventBus | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.critical_threshold = critical_threshold
        self.window_seconds = window_seconds
        self._events = events or EventBus()
        self._clock = clock
        self._lock = threading.Lock()
        self._recent_critical: deque[float] = deque()
        self._counts: dict[Severity, int] = dict.fromkeys(Severity, 0)
        self._shutdown = threading.Event()
        self._reason: str | None = None
        self._listeners: list[ShutdownListener] = []

    @classmethod
    def from_settings(cls, settings: Settings, events: EventBus | None = None) -> SafetyHandler:
        return cls(
            critical_threshold=settings.safety.critical_error_threshold,
            window_seconds=settings.safety.window_seconds,
            events=events,
        )

    @property
    def shutting_down(self) -> bool:
        return self._shutdown.is_set()

    @property
    def shutdown_reason(self) -> str | None:
        return self._reason

    def error_counts(self) -> dict[str, int]:
        with self._lock:
            return {severity.value: count for severity, count in self._counts.items()}

    def on_shutdown(self, listener: ShutdownListener) -> None:
        """Call ``listener(reason)`` once when a shutdown is requested (from the requesting thread)."""
        self._listeners.append(listener)

    def report(
        self,
        message: str,
        severity: Severity | str = Severity.MEDIUM,
        *,
        component: str = "system",
        task_id: str | None = None,
    ) -> Incident:
        """Record an error. Critical errors past the threshold within the window request a shutdown."""
        level = Severity(severity)
        now = self._clock()
        with self._lock:
            self._counts[level] += 1
            recent = self._recent_critical
            if level is Severity.CRITICAL:
                recent.append(now)
            while recent and now - recent[0] > self.window_seconds:
                recent.popleft()
            critical_in_window = len(recent)
        self._events.publish(
            "safety.error",
            component,
            f"{level.value} error: {message}",
            level=_LEVELS[level],
            category="error",
            task_id=task_id,
            metadata={"severity": level.value, "critical_in_window": critical_in_window},
        )
        if level is Severity.CRITICAL and critical_in_window >= self.critical_threshold:
            self.request_shutdown(
                f"{critical_in_window} critical errors within {self.window_seconds:g} s"
                f" (safety.critical_error_threshold = {self.critical_threshold}); last: {message}"
            )
        return Incident(level, message, component, now)

    def request_shutdown(self, reason: str) -> bool:
        """Engage the kill switch. Returns ``False`` when a shutdown was already requested (the first reason wins)."""
        with self._lock:
            if self._shutdown.is_set():
                return False
            self._reason = reason
            self._shutdown.set()
        self._events.publish(
            "safety.shutdown",
            "safety",
            f"shutdown requested: {reason}",
            level="warn",
            category="milestone",
            phase="shutdown",
            metadata={"reason": reason, "error_counts": self.error_counts()},
        )
        for listener in list(self._listeners):
            listener(reason)
        return True

    def ensure_accepting(self, task_id: str | None = None) -> None:
        """Raise ``SafetyError`` once a shutdown has been requested."""
        if self._shutdown.is_set():
            raise SafetyError(f"vy-nexus is shutting down ({self._reason}); no new tasks accepted", task_id=task_id)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a shutdown is requested or ``timeout`` passes; ``True`` when shutting down."""
        return self._shutdown.wait(timeout)
