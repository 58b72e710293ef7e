"""What the task store keeps about a task: its state, and everything that happened to it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vy_nexus.tasks import FINISHED_STATES, LIVE_STATES, TaskState

__all__ = ["FINISHED_STATES", "LIVE_STATES", "TaskPage", "TaskRecord", "TaskState"]


class TaskRecord(BaseModel):
    """One task as the store knows it. Times are seconds since the epoch (UTC)."""

    model_config = ConfigDict(extra="ignore", defer_build=True)  # built on first use, not by `vy-nexus route`

    id: str
    state: TaskState
    description: str
    type: str = "general"
    priority: str = "medium"
    task: dict[str, Any] = Field(default_factory=dict, description="the submitted task (large inputs summarised)")
    owner: str | None = Field(default=None, description="the store that accepted it: host:pid:start:nonce")
    experts: list[str] = Field(default_factory=list, description="the experts chosen by routing")
    decision: dict[str, Any] | None = None
    ruling: dict[str, Any] | None = None
    results: list[dict[str, Any]] = Field(default_factory=list)
    output: Any = None
    confidence: float | None = None
    error: str | None = None
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    duration_ms: float | None = None
    cancel_requested: bool = False


class TaskPage(BaseModel):
    """One page of ``list``: the records, and the cursor for the next page (``None`` on the last)."""

    model_config = ConfigDict(defer_build=True)

    items: list[TaskRecord]
    total: int
    next_offset: int | None = None
