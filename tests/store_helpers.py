"""What the task store's tests share."""

from __future__ import annotations

from vy_nexus.store import SqlTaskStore


def die(store: SqlTaskStore) -> None:
    """The process "dies": its thread stops beating, nothing is closed, its owner row stays."""
    store._closing.set()
    store._wake.set()
    assert store._thread is not None
    store._thread.join()
    assert store._engine is not None
    store._engine.dispose()
