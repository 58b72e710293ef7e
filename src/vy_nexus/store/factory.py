"""Building the task store a home's settings describe."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from vy_nexus.config import Settings
from vy_nexus.store.sql import SqlTaskStore


def store_from_settings(settings: Settings, on_warning: Callable[[str], None] | None = None) -> SqlTaskStore:
    return SqlTaskStore(
        settings.store_url,
        flush_interval=settings.store.flush_interval_seconds,
        retention_seconds=settings.store.retention_days * 86400,
        on_warning=on_warning,
    )


@contextmanager
def open_task_store(settings: Settings, on_warning: Callable[[str], None] | None = None) -> Iterator[SqlTaskStore]:
    """The store, open for the block (short commands: list, show, cancel); closed after."""
    store = store_from_settings(settings, on_warning)
    store.open()
    try:
        yield store
    finally:
        store.close()
