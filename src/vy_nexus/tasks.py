"""The data that flows through vy-nexus: tasks in, routing decisions, expert results, aggregated results out."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vy_nexus.errors import TaskError

MAX_DESCRIPTION_CHARS = 100_000


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


def new_task_id() -> str:
    """16 hex digits (64 random bits) from the operating system: not the ``random`` module, whose shared state any
    code (a test framework, a library calling ``random.seed``) may reseed, which would repeat ids."""
    return uuid.uuid4().hex[:16]


class TaskState(StrEnum):
    """Where a task is in its life; the task store keeps it (store/records.py)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        return self in FINISHED_STATES


FINISHED_STATES = frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED, TaskState.INTERRUPTED})
LIVE_STATES = frozenset({TaskState.QUEUED, TaskState.RUNNING})


class Task(BaseModel):
    """One unit of work. ``type`` is a free hint ("code", "research", ...) that routing may use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(default_factory=new_task_id, min_length=1, max_length=128)
    type: str = Field(default="general", min_length=1, max_length=64)
    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION_CHARS)
    input: Any = None
    context: dict[str, Any] = Field(default_factory=dict)
    priority: Priority = Priority.MEDIUM
    deadline: datetime | None = None

    @field_validator("description")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("type")
    @classmethod
    def _normalise_type(cls, value: str) -> str:
        return value.strip().lower()

    @classmethod
    def from_data(cls, data: Any) -> Task:
        """Build a task from user data, turning validation failures into a TaskError naming the field."""
        if not isinstance(data, dict):
            raise TaskError(f"a task must be a JSON object, not {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'task'}: {err['msg']}" for err in exc.errors()
            )
            raise TaskError(f"invalid task: {problems}") from exc


class RoutingDecision(BaseModel):
    """Which experts should handle a task, how confident the router is in each, and why."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    expert_ids: list[str]
    confidences: dict[str, float]
    strategy: str
    reason: str
    capabilities: list[str] = Field(default_factory=list)
    candidates: dict[str, float] = Field(
        default_factory=dict, description="the strategy's best scores (up to 5), chosen or not: the margin, the why"
    )
    fallback: bool = False
    out_of_scope: bool = Field(
        default=False,
        description="the strategy had no candidate at all (nothing it knows matched), so the fallback expert took it;"
        " a fallback whose candidates only fell short of the threshold is not out of scope",
    )
    cache_hit: bool = False
    latency_ms: float = 0.0

    @property
    def confidence(self) -> float:
        """Confidence in the top choice."""
        return self.confidences.get(self.expert_ids[0], 0.0) if self.expert_ids else 0.0


class ExpertResult(BaseModel):
    """What one expert produced for one task (or the error that stopped it)."""

    model_config = ConfigDict(defer_build=True)  # validators built on first use: `vy-nexus route` makes none

    task_id: str
    expert_id: str
    output: Any = None
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    duration_ms: float = 0.0
    error: str | None = None
    error_kind: str | None = Field(
        default=None, description="timeout, invalid, reasoning (the LLM backend failed), error, unknown or cancelled"
    )
    attempts: int = 1
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


class AggregatedResult(BaseModel):
    """The final answer for a task, with the experts that contributed and how it was combined."""

    model_config = ConfigDict(defer_build=True)

    task_id: str
    output: Any
    experts: list[str]
    method: str
    confidence: float = Field(ge=0.0, le=1.0)
    results: list[ExpertResult] = Field(default_factory=list)
    decision: RoutingDecision | None = None
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return any(result.ok for result in self.results)

    @property
    def failure_kind(self) -> str | None:
        """When every expert failed for the same kind of reason (``error_kind``), that kind; else ``None``."""
        kinds = {result.error_kind for result in self.results}
        if self.ok or len(kinds) != 1:
            return None
        return next(iter(kinds))
