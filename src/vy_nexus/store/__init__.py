"""The task store: every task's state and history, durable across restarts, shared by every process of a home."""

from __future__ import annotations

from vy_nexus.store.factory import open_task_store, store_from_settings
from vy_nexus.store.protocol import TaskStore
from vy_nexus.store.records import FINISHED_STATES, LIVE_STATES, TaskPage, TaskRecord, TaskState
from vy_nexus.store.sql import SqlTaskStore

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
