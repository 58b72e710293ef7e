"""Write-behind for the task store: the hot path records changes in memory, a flush writes them in one transaction.

A task's insert and its later updates coalesce while they wait, so a short task costs one row write, and a batch
of tasks one transaction. Values are turned into JSON at flush time, off the hot path.
"""

from __future__ import annotations

import threading
from typing import Any

Row = dict[str, Any]


class PendingWrites:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inserts: dict[str, Row] = {}
        self._updates: dict[str, Row] = {}

    def insert(self, task_id: str, row: Row) -> None:
        with self._lock:
            self._inserts[task_id] = row

    def update(self, task_id: str, fields: Row) -> None:
        with self._lock:
            pending = self._inserts.get(task_id)
            if pending is not None:
                pending.update(fields)
            else:
                self._updates.setdefault(task_id, {}).update(fields)

    def __len__(self) -> int:
        with self._lock:
            return len(self._inserts) + len(self._updates)

    def take(self) -> tuple[dict[str, Row], dict[str, Row]]:
        """Everything waiting, in two parts (new rows, changes to written rows); the buffer starts empty again."""
        with self._lock:
            inserts, self._inserts = self._inserts, {}
            updates, self._updates = self._updates, {}
        return inserts, updates

    def give_back(self, inserts: dict[str, Row], updates: dict[str, Row]) -> None:
        """Put a batch that could not be written back in front of newer changes, so nothing is lost."""
        with self._lock:
            for task_id, row in inserts.items():
                newer = self._updates.pop(task_id, {})
                self._inserts[task_id] = {**row, **newer}
            for task_id, fields in updates.items():
                newer = self._updates.pop(task_id, {})
                self._updates[task_id] = {**fields, **newer}
