"""What the routes share, built in the app's lifespan and kept on ``app.state``: the one ``VyNexus``, the key
store, the rate limiter, the request log and the task feeds, plus the background tasks this server runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vy_nexus.errors import VyNexusError
from vy_nexus.interfaces.api.feeds import TaskFeeds
from vy_nexus.interfaces.api.keys import KeyStore
from vy_nexus.interfaces.api.ratelimit import RateLimiter
from vy_nexus.interfaces.api.request_log import RequestLog
from vy_nexus.observability.metrics_db import MetricsDatabase
from vy_nexus.reasoning.streaming import stream_tokens_to
from vy_nexus.store import TaskRecord
from vy_nexus.system import VyNexus
from vy_nexus.tasks import AggregatedResult, Task

_log = logging.getLogger(__name__)


@dataclass
class ApiServices:
    system: VyNexus
    keys: KeyStore
    limiter: RateLimiter
    requests: RequestLog
    feeds: TaskFeeds
    metrics: MetricsDatabase
    """The metrics database every reader of this server shares (the home's SQLite file or the cluster's PostgreSQL)."""
    request_exit: Callable[[], None] = lambda: None
    """Asks the server to stop serving (set by ``server.serve``); called once a shutdown is under way."""
    started_at: float = field(default_factory=time.time)
    uploads_dir: Path = field(init=False)
    """Where uploaded payloads too large to keep in memory are spooled (computed once, not per request)."""
    jobs: dict[str, asyncio.Task[AggregatedResult]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.uploads_dir = self.system.settings.cache_dir / "uploads"

    async def submit(self, task: Task, *, top_k: int | None, aggregation: str | None) -> None:
        """Commit ``task`` to the store and run it in the background, its events and tokens going to its feed."""
        self.feeds.open(task.id)
        with stream_tokens_to(self.feeds.tokens(task.id)):
            job = await self.system.enqueue(task, top_k=top_k, aggregation=aggregation)
        self.jobs[task.id] = job
        job.add_done_callback(lambda done: self._finished(task.id, done))

    async def cancel(self, task_id: str, reason: str = "cancelled through the API") -> TaskRecord:
        """Cancel a task: at once when it runs here, or still waits here for a slot; else through the store (its
        owner notices within a moment)."""
        job = self.jobs.get(task_id)
        if not self.system.inflight.cancel(task_id, reason) and job is not None:
            job.cancel(reason)
        return await asyncio.to_thread(self.system.cancel, task_id, reason)

    def _finished(self, task_id: str, job: asyncio.Task[AggregatedResult]) -> None:
        self.jobs.pop(task_id, None)
        if not job.cancelled():
            error = job.exception()
            if error is not None and not isinstance(error, VyNexusError):
                _log.error("task %s failed unexpectedly", task_id, exc_info=error)
        asyncio.get_running_loop().create_task(self._close_feed(task_id))

    async def _close_feed(self, task_id: str) -> None:
        # Read the record only for someone watching: a later reader of the feed loads it itself.
        record = await self.load_record(task_id) if self.feeds.watched(task_id) else None
        self.feeds.finish(task_id, record)

    async def load_record(self, task_id: str) -> dict[str, Any]:
        """A task's record as JSON data, read off the event loop."""
        return await load_record(self.system, task_id)

    async def drain(self) -> None:
        """Let the tasks this server started end (``astop`` cancels what still runs first)."""
        for job in list(self.jobs.values()):
            with contextlib.suppress(BaseException):
                await job


async def load_record(system: VyNexus, task_id: str) -> dict[str, Any]:
    """A task's record as JSON data, read off the event loop."""
    record = await asyncio.to_thread(system.get_task, task_id)
    return record.model_dump(mode="json")
