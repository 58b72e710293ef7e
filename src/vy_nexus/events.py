"""Events: how the flow tells observers (journal, metrics, dashboard) what happened.

The flow only calls ``EventBus.publish``; subscribers must be quick and must not raise into the flow (a failing
subscriber is logged and otherwise ignored). Subscribers that write to disk queue the event and write it from a
background thread.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Level = Literal["debug", "info", "warn", "error"]
Category = Literal["thought", "observation", "decision", "error", "milestone"]

current_task_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("vy_nexus_task_id", default=None)


@dataclass(slots=True)
class Event:
    """One thing that happened. ``kind`` is a dotted name such as ``task.routed`` or ``expert.finished``.

    Treat events as read-only: every subscriber receives the same instance. (Not ``frozen``: a frozen dataclass
    costs twice as much to build, and the flow builds several events per task.)
    """

    kind: str
    component: str
    message: str
    level: Level = "info"
    category: Category = "observation"
    phase: str = "runtime"
    task_id: str | None = None
    expert_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)


Subscriber = Callable[[Event], None]


class EventBus:
    """Synchronous fan-out of events to subscribers. Thread-safe; cheap when nobody listens.

    ``clock`` stamps each event (Unix seconds); tests inject one to publish at a chosen time (say, across midnight).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._subscribers: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it again."""
        with self._lock:
            self._subscribers = (*self._subscribers, subscriber)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not subscriber)

        return unsubscribe

    @property
    def has_subscribers(self) -> bool:
        return bool(self._subscribers)

    def publish(
        self,
        kind: str,
        component: str,
        message: str,
        *,
        level: Level = "info",
        category: Category = "observation",
        phase: str = "runtime",
        task_id: str | None = None,
        expert_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Build and deliver an event; nothing is built when nobody listens.

        The flow's hot path publishes several events per task, so this builds the event positionally: a dataclass
        built from keywords costs twice as much.
        """
        subscribers = self._subscribers
        if subscribers:
            event = Event(
                kind,
                component,
                message,
                level,
                category,
                phase,
                current_task_id.get() if task_id is None else task_id,
                expert_id,
                {} if metadata is None else metadata,
                self._clock(),
            )
            for subscriber in subscribers:
                try:
                    subscriber(event)
                except Exception:  # an observer must never break the flow
                    _log_failed_subscriber(subscriber, event)


def _log_failed_subscriber(subscriber: Subscriber, event: Event) -> None:
    import logging  # only when a subscriber fails: a keyword ``vy-nexus route`` never loads logging (issue 16)

    logging.getLogger(__name__).exception("event subscriber %r failed on %s", subscriber, event.kind)
