"""The task store: every task's state and history, durable across restarts, shared by every process of a home.

The records load at once; the SQL implementation (SQLAlchemy) loads on first use, so a command that only reads a
record's shape does not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vy_nexus._lazy import lazy_exports
from vy_nexus.store.protocol import TaskStore
from vy_nexus.store.records import FINISHED_STATES, LIVE_STATES, TaskPage, TaskRecord, TaskState

if TYPE_CHECKING:
    from vy_nexus.store.factory import open_task_store, store_from_settings
    from vy_nexus.store.sql import SqlTaskStore

_EXPORTS: dict[str, str] = {
    "SqlTaskStore": "vy_nexus.store.sql",
    "open_task_store": "vy_nexus.store.factory",
    "store_from_settings": "vy_nexus.store.factory",
}

__all__ = [
    "FINISHED_STATES",
    "LIVE_STATES",
    "SqlTaskStore",
    "TaskPage",
    "TaskRecord",
    "TaskState",
    "TaskStore",
    "open_task_store",
    "store_from_settings",
]

__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
