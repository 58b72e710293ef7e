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

ALL_LEVELS: frozenset[str] = frozenset(("debug", "info", "warn", "error"))


@dataclass(frozen=True, slots=True)
class _Subscription:
    deliver: Subscriber
    levels: frozenset[str]
    kinds: frozenset[str]


class EventBus:
    """Synchronous fan-out of events to subscribers. Thread-safe; cheap when nobody listens.

    A subscriber may declare what it wants (``levels``, ``kinds``): it then receives only events at one of those
    levels or of one of those kinds, and an event nobody wants is never built. ``wants`` lets a publisher skip
    building the message and metadata too (the flow's debug events, when nothing records debug).

    ``clock`` stamps each event (Unix seconds); tests inject one to publish at a chosen time (say, across midnight).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._subscriptions: tuple[_Subscription, ...] = ()
        self._levels: frozenset[str] = frozenset()
        self._kinds: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def subscribe(
        self,
        subscriber: Subscriber,
        *,
        levels: frozenset[str] | None = None,
        kinds: frozenset[str] = frozenset(),
    ) -> Callable[[], None]:
        """Add a subscriber for the events at ``levels`` (default: every level) or of ``kinds``; returns a function
        that removes it again."""
        subscription = _Subscription(subscriber, ALL_LEVELS if levels is None else frozenset(levels), kinds)
        with self._lock:
            self._set_subscriptions((*self._subscriptions, subscription))

        def unsubscribe() -> None:
            with self._lock:
                self._set_subscriptions(tuple(s for s in self._subscriptions if s is not subscription))

        return unsubscribe

    def _set_subscriptions(self, subscriptions: tuple[_Subscription, ...]) -> None:
        # Publishing takes no lock: a publish racing a (un)subscribe may or may not reach that subscriber.
        self._levels = frozenset().union(*(s.levels for s in subscriptions))
        self._kinds = frozenset().union(*(s.kinds for s in subscriptions))
        self._subscriptions = subscriptions

    @property
    def has_subscribers(self) -> bool:
        return bool(self._subscriptions)

    def wants(self, level: Level, kind: str) -> bool:
        """Whether any subscriber wants an event of this level and kind."""
        return level in self._levels or kind in self._kinds

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
        """Build and deliver an event; nothing is built when nobody wants it.

        The flow's hot path publishes several events per task, so this builds the event positionally: a dataclass
        built from keywords costs twice as much.
        """
        if level not in self._levels and kind not in self._kinds:
            return
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
        for subscription in self._subscriptions:
            if level in subscription.levels or kind in subscription.kinds:
                try:
                    subscription.deliver(event)
                except Exception:  # an observer must never break the flow
                    _log_failed_subscriber(subscription.deliver, event)


def _log_failed_subscriber(subscriber: Subscriber, event: Event) -> None:
    import logging  # only when a subscriber fails: a keyword ``vy-nexus route`` never loads logging (issue 16)

    logging.getLogger(__name__).exception("event subscriber %r failed on %s", subscriber, event.kind)
