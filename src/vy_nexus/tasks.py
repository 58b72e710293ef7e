"""The data that flows through vy-nexus: tasks in, routing decisions, expert results, aggregated results out.

Plain dataclasses, not pydantic models: they are built several times per task on the hot path and imported by every
CLI command, where pydantic's import alone cost more than the rest of a keyword ``route``. A ``Task`` checks its
own fields when it is built (``__post_init__``); data from outside (JSON from the API, a worker's message) comes in
through ``from_data``/``from_dict``, which name the problem. ``as_dict`` gives JSON-ready values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from vy_nexus.errors import TaskError
from vy_nexus.unicode_text import storable, without_lone_surrogates

MAX_DESCRIPTION_CHARS = 100_000


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 (low) to 3 (critical): a task waiting for a running slot goes ahead of those of lower rank."""
        return _PRIORITY_RANKS[self]


def new_task_id() -> str:
    """16 hex digits (64 random bits) from the operating system: not the ``random`` module, whose shared state any
    code (a test framework, a library calling ``random.seed``) may reseed, which would repeat ids."""
    return os.urandom(8).hex()


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


@dataclass(frozen=True, kw_only=True, slots=True)
class Task:
    """One unit of work. ``type`` is a free hint ("code", "research", ...) that routing may use; it is stored
    stripped and lower-cased. Lone surrogates in ``type`` and ``description`` become U+FFFD. Building one with a bad
    field raises ``TaskError`` naming it."""

    id: str = field(default_factory=new_task_id)
    type: str = "general"
    description: str
    input: Any = None
    context: dict[str, Any] = field(default_factory=dict)
    priority: Priority = Priority.MEDIUM
    deadline: datetime | None = None

    def __post_init__(self) -> None:
        problems = _task_problems(self)
        if problems:
            raise TaskError("invalid task: " + "; ".join(problems))

    @classmethod
    def from_data(cls, data: Any) -> Task:
        """Build a task from user data (a JSON object), turning every problem into a TaskError naming the field."""
        if not isinstance(data, dict):
            raise TaskError(f"a task must be a JSON object, not {type(data).__name__}")
        unknown = [str(key) for key in data if key not in _TASK_FIELDS]
        if unknown:
            raise TaskError("invalid task: " + "; ".join(f"{key}: unknown field" for key in unknown))
        if "description" not in data:
            raise TaskError("invalid task: description: field required")
        return cls(**data)

    def with_changes(self, **changes: Any) -> Task:
        """A copy with some fields replaced (checked like a new task)."""
        return replace(self, **changes)

    def as_dict(self, *, include_input: bool = True) -> dict[str, Any]:
        """JSON-ready fields (``priority`` as its value, ``deadline`` as ISO 8601); ``from_data`` reads it back."""
        data: dict[str, Any] = {"id": self.id, "type": self.type, "description": self.description}
        if include_input:
            data["input"] = self.input
        data["context"] = self.context
        data["priority"] = self.priority.value
        data["deadline"] = None if self.deadline is None else self.deadline.isoformat()
        return data


_TASK_FIELDS = frozenset(f.name for f in fields(Task))
_PRIORITY_RANKS = {priority: rank for rank, priority in enumerate(Priority)}
_PRIORITIES = ", ".join(priority.value for priority in Priority)


def _task_problems(task: Task) -> list[str]:
    """What is wrong with a task's fields; normalises ``type``, ``priority``, ``deadline`` and the description's
    lone surrogates in place."""
    problems: list[str] = []
    if not isinstance(task.id, str) or not 1 <= len(task.id) <= 128:
        problems.append("id: must be text of 1 to 128 characters")
    elif storable(task.id) != task.id:  # no task store holds it in a key: it could never be looked up again
        problems.append("id: must not hold NUL or a lone surrogate (bytes that are not UTF-8)")
    kind = task.type
    if not isinstance(kind, str) or not 1 <= len(kind) <= 64:
        problems.append("type: must be text of 1 to 64 characters")
    elif (normalised := without_lone_surrogates(kind.strip().lower())) != kind:
        if not normalised:
            problems.append("type: must not be blank")
        object.__setattr__(task, "type", normalised)
    text = task.description
    if not isinstance(text, str):
        problems.append(f"description: must be text, not {type(text).__name__}")
    elif not text.strip():
        problems.append("description: must not be empty or blank")
    elif len(text) > MAX_DESCRIPTION_CHARS:
        problems.append(f"description: must be at most {MAX_DESCRIPTION_CHARS:,} characters, not {len(text):,}")
    elif (readable := without_lone_surrogates(text)) is not text:
        object.__setattr__(task, "description", readable)
    if not isinstance(task.context, dict):
        problems.append(f"context: must be an object, not {type(task.context).__name__}")
    if type(task.priority) is not Priority:
        try:
            object.__setattr__(task, "priority", Priority(task.priority))
        except ValueError:
            problems.append(f"priority: must be one of {_PRIORITIES}, not {task.priority!r}")
    if task.deadline is not None and not isinstance(task.deadline, datetime):
        deadline = _parse_deadline(task.deadline)
        if deadline is None:
            problems.append(f"deadline: must be an ISO 8601 date-time, not {task.deadline!r}")
        else:
            object.__setattr__(task, "deadline", deadline)
    return problems


def _parse_deadline(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


@dataclass(frozen=True, kw_only=True, slots=True)
class RoutingDecision:
    """Which experts should handle a task, how confident the router is in each, and why.

    ``candidates``: the strategy's best scores (up to 5), chosen or not: the margin, the why. ``out_of_scope``: the
    strategy had no candidate at all (nothing it knows matched), so the fallback expert took it; a fallback whose
    candidates only fell short of the threshold is not out of scope.
    """

    task_id: str
    expert_ids: list[str]
    confidences: dict[str, float]
    strategy: str
    reason: str
    capabilities: list[str] = field(default_factory=list)
    candidates: dict[str, float] = field(default_factory=dict)
    fallback: bool = False
    out_of_scope: bool = False
    cache_hit: bool = False
    latency_ms: float = 0.0

    @property
    def confidence(self) -> float:
        """Confidence in the top choice."""
        return self.confidences.get(self.expert_ids[0], 0.0) if self.expert_ids else 0.0

    def with_changes(self, **changes: Any) -> RoutingDecision:
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields; ``from_dict`` reads them back. Spelled out: the store renders it for every task, and a
        loop over the fields took 2.5 times as long."""
        return {
            "task_id": self.task_id,
            "expert_ids": list(self.expert_ids),
            "confidences": dict(self.confidences),
            "strategy": self.strategy,
            "reason": self.reason,
            "capabilities": list(self.capabilities),
            "candidates": dict(self.candidates),
            "fallback": self.fallback,
            "out_of_scope": self.out_of_scope,
            "cache_hit": self.cache_hit,
            "latency_ms": self.latency_ms,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoutingDecision:
        """A decision from ``as_dict``'s JSON (a server's reply, the task store); unknown keys are ignored."""
        return cls(**_known(data, _DECISION_FIELDS, "routing decision"))


@dataclass(kw_only=True, slots=True)
class ExpertResult:
    """What one expert produced for one task (or the error that stopped it). ``error_kind``: timeout, invalid,
    reasoning (the LLM backend failed), error, unknown or cancelled. ``confidence`` is between 0 and 1."""

    task_id: str
    expert_id: str
    output: Any = None
    confidence: float = 0.0
    duration_ms: float = 0.0
    error: str | None = None
    error_kind: str | None = None
    attempts: int = 1
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        """The fields as a mapping (the output as the expert gave it); ``from_dict`` reads it back."""
        return {
            "task_id": self.task_id,
            "expert_id": self.expert_id,
            "output": self.output,
            "confidence": self.confidence,
            "duration_ms": self.duration_ms,
            "error": self.error,
            "error_kind": self.error_kind,
            "attempts": self.attempts,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExpertResult:
        """A result from ``as_dict``'s JSON (a worker's reply, the task store); unknown keys are ignored."""
        return cls(**_known(data, _RESULT_FIELDS, "expert result"))


@dataclass(kw_only=True, slots=True)
class AggregatedResult:
    """The final answer for a task, with the experts that contributed and how it was combined."""

    task_id: str
    output: Any
    experts: list[str]
    method: str
    confidence: float
    results: list[ExpertResult] = field(default_factory=list)
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

    def as_dict(self) -> dict[str, Any]:
        """The fields as a mapping, nested results and decision included."""
        return {
            "task_id": self.task_id,
            "output": self.output,
            "experts": list(self.experts),
            "method": self.method,
            "confidence": self.confidence,
            "results": [result.as_dict() for result in self.results],
            "decision": None if self.decision is None else self.decision.as_dict(),
            "duration_ms": self.duration_ms,
        }


_DECISION_FIELDS = frozenset(f.name for f in fields(RoutingDecision))
_RESULT_FIELDS = frozenset(f.name for f in fields(ExpertResult))


def _known(data: Any, names: frozenset[str], what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TaskError(f"{what}: expected a JSON object, not {type(data).__name__}")
    return {key: value for key, value in data.items() if key in names}
