"""The task store interface the system depends on; ``SqlTaskStore`` is the implementation (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol

from vy_nexus.tasks import AggregatedResult, RoutingDecision, Task, TaskState

if TYPE_CHECKING:
    from vy_nexus.store.records import TaskPage, TaskRecord  # pydantic: loaded where records are read


class RulingLike(Protocol):
    """A governance ruling (execution/governance.py's ``Ruling``), turned into its dict when the row is written."""

    def as_dict(self) -> dict[str, Any]: ...


StoredRuling = dict[str, Any] | RulingLike


class TaskStore(Protocol):
    on_cancel: Callable[[str], None] | None

    def open(self) -> list[TaskRecord]: ...
    def close(self) -> None: ...
    def accept(self, task: Task) -> None:
        """Record a new task as ``queued`` (committed by the next flush; reads flush first)."""
        ...

    def routed(self, task_id: str, decision: RoutingDecision, ruling: StoredRuling | None = None) -> None:
        """The routing decision and governance's ruling (a dict, or a read-only ruling object the store turns into
        its dict off the hot path, when it writes the row)."""
        ...

    def started(self, task_id: str) -> None: ...
    def finished(
        self, task_id: str, state: TaskState, *, result: AggregatedResult | None = None, error: str | None = None
    ) -> None: ...
    def flush(self) -> None: ...
    def flush_soon(self) -> Future[None]:
        """Completes once everything accepted so far is committed: callers that wait together share one commit."""
        ...

    def get(self, task_id: str) -> TaskRecord: ...
    def list_tasks(
        self,
        *,
        states: Iterable[TaskState | str] = (),
        expert: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> TaskPage: ...
    def request_cancel(self, task_id: str) -> TaskRecord: ...
    def recover(self) -> list[TaskRecord]: ...
    def prune(self) -> int: ...
