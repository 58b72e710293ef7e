"""Live event feeds of the tasks this server runs, for ``GET /api/tasks/{id}/events`` (Server-Sent Events).

A feed opens when the task is submitted and keeps everything it saw, so a client that connects after the submit
still receives the whole story: ``state`` (queued, running, then the final state), the flow's events for the task
(``task.routed``, ``task.governed``, ``expert.*``, ``task.aggregated``), ``token`` (each streamed LLM token) and
``result`` (the task record as stored), then the stream ends. Events and tokens may come from other threads; they are
handed to the event loop that owns the feeds.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from vy_nexus.events import Event
from vy_nexus.reasoning.llm import TokenCallback, TokenEvent

FORWARDED = ("task.", "expert.")
"""Kinds of flow events a feed carries (by prefix)."""


@dataclass(slots=True)
class FeedItem:
    event: str
    data: dict[str, Any]


@dataclass(slots=True)
class _Feed:
    items: list[FeedItem] = field(default_factory=list)
    listeners: set[asyncio.Queue[FeedItem | None]] = field(default_factory=set)
    running: bool = False
    closed: bool = False
    complete: bool = False
    """The final state and the record are in ``items`` (a feed that ended unwatched gets them on its first read)."""


class TaskFeeds:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        load_record: Callable[[str], Awaitable[dict[str, Any]]],
        *,
        keep_finished: int = 256,
    ) -> None:
        """``load_record`` reads a task's record from the store (a feed that ended unwatched loads it on demand)."""
        self._loop = loop
        self._load_record = load_record
        self._loop_thread = threading.get_ident()
        self._feeds: dict[str, _Feed] = {}
        self._finished: deque[str] = deque()  # closed feeds, oldest first: the first to go past ``keep_finished``
        self._keep_finished = keep_finished

    def open(self, task_id: str) -> None:
        feed = _Feed()
        self._feeds[task_id] = feed
        self._append(feed, FeedItem("state", {"state": "queued"}))

    def __contains__(self, task_id: str) -> bool:
        return task_id in self._feeds

    # -- producers (any thread) ---------------------------------------------------------------------------------------

    def observe(self, event: Event) -> None:
        """The event-bus subscriber."""
        if event.task_id is None or event.task_id not in self._feeds or not event.kind.startswith(FORWARDED):
            return
        data = {
            "kind": event.kind,
            "message": event.message,
            "level": event.level,
            "expert_id": event.expert_id,
            "timestamp": event.timestamp,
            "metadata": event.metadata,
        }
        self._call(self._publish, event.task_id, event.kind, data)

    def tokens(self, task_id: str) -> TokenCallback:
        """A token sink (``reasoning.streaming.stream_tokens_to``) feeding ``task_id``'s feed."""

        def sink(token: TokenEvent) -> None:
            data = {"text": token.text, "expert_id": token.expert_id, "provider": token.provider, "model": token.model}
            self._call(self._publish, task_id, "token", data)

        return sink

    def watched(self, task_id: str) -> bool:
        """Whether someone follows the feed right now."""
        feed = self._feeds.get(task_id)
        return feed is not None and bool(feed.listeners)

    def finish(self, task_id: str, record: dict[str, Any] | None) -> None:
        """The task ended: its final state and record, then the feed closes (kept a while for late readers).
        ``None`` for the record when nobody watches: the first late reader loads it, so a task nobody follows
        costs no read of the store."""
        feed = self._feeds.get(task_id)
        if feed is None:
            return
        if record is not None:
            self._complete(feed, record)
        feed.closed = True
        for queue in feed.listeners:
            queue.put_nowait(None)
        self._finished.append(task_id)
        while len(self._finished) > self._keep_finished:
            self._feeds.pop(self._finished.popleft(), None)

    # -- readers (the loop) -------------------------------------------------------------------------------------------

    async def follow(self, task_id: str) -> AsyncIterator[FeedItem]:
        """Everything the feed holds, then what comes, until the task ends. Empty when there is no such feed."""
        feed = self._feeds.get(task_id)
        if feed is None:
            return
        queue: asyncio.Queue[FeedItem | None] = asyncio.Queue()
        backlog = list(feed.items)
        listening = not feed.closed
        if listening:
            feed.listeners.add(queue)  # what arrives while the backlog is sent waits here
        try:
            for item in backlog:
                yield item
            while listening and (live := await queue.get()) is not None:
                yield live
            if not feed.complete:  # it ended with nobody watching: its record comes from the store now
                record = await self._load_record(task_id)
                if not feed.complete:
                    self._complete(feed, record)
                for item in feed.items[-2:]:
                    yield item
        finally:
            feed.listeners.discard(queue)

    # -- internals ----------------------------------------------------------------------------------------------------

    def _call(self, function: Any, *args: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            function(*args)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(function, *args)

    def _publish(self, task_id: str, kind: str, data: dict[str, Any]) -> None:
        feed = self._feeds.get(task_id)
        if feed is None or feed.closed:
            return
        if not feed.running and kind == "expert.started":
            feed.running = True
            self._append(feed, FeedItem("state", {"state": "running"}))
        self._append(feed, FeedItem(kind, data))

    def _complete(self, feed: _Feed, record: dict[str, Any]) -> None:
        self._append(feed, FeedItem("state", {"state": record.get("state")}))
        self._append(feed, FeedItem("result", record))
        feed.complete = True

    @staticmethod
    def _append(feed: _Feed, item: FeedItem) -> None:
        feed.items.append(item)
        for queue in feed.listeners:
            queue.put_nowait(item)
