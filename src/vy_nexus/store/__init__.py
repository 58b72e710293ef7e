"""The task store: every task's state and history, durable across restarts, shared by every process of a home.

The states load at once; the records (pydantic) and the SQL implementation (SQLAlchemy) load on first use: a
command that only reads a record's shape does not pay for SQLAlchemy, and a `run` (which writes records but reads
none back unless a crashed task is recovered) does not pay for pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vy_nexus._lazy import lazy_exports
from vy_nexus.store.protocol import TaskStore
from vy_nexus.tasks import FINISHED_STATES, LIVE_STATES, TaskState

if TYPE_CHECKING:
    from vy_nexus.store.factory import open_task_store, store_from_settings
    from vy_nexus.store.records import TaskPage, TaskRecord
    from vy_nexus.store.sql import SqlTaskStore

_EXPORTS: dict[str, str] = {
    "TaskPage": "vy_nexus.store.records",
    "TaskRecord": "vy_nexus.store.records",
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
