"""The base class every expert derives from.

Lifecycle, driven by the coordinator: ``initialize`` once (lazily, before the first task), then per task
``validate`` → ``pre_process`` → ``execute`` (async) → ``post_process``; ``shutdown`` once at the end.
Only ``execute`` is required.
"""

from __future__ import annotations

import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from vy_nexus.errors import ExpertRegistrationError, TaskError
from vy_nexus.tasks import Task

T = TypeVar("T")
Offload = Callable[[Callable[[], Any]], Awaitable[Any]]

EXPERT_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
CAPABILITY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9 .+#_/-]{0,63}$")


@dataclass(frozen=True, slots=True)
class ExpertOutput:
    """What ``execute`` returns: the output and how confident the expert is in it (0..1)."""

    output: Any
    confidence: float = 0.8
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExpertContext:
    """Services an expert may use, handed over by the system at ``initialize`` time."""

    llm: Any = None
    settings: Any = None
    file_system: Any = None
    offload: Offload | None = None
    """Runs a blocking function in the system's bounded worker pool (see ``BaseExpert.run_blocking``)."""
    extras: dict[str, Any] = field(default_factory=dict)


class BaseExpert(ABC):
    """Subclass, set the class attributes, implement ``execute``.

    ``capabilities`` are the words and phrases the keyword router matches (whole words, case-insensitive);
    ``task_types`` are task types this expert handles outright; ``examples`` are sample requests for semantic
    routing; ``priority`` breaks ties (higher wins).

    Where it runs: an ``async def execute`` runs on the event loop and must not block it — send blocking steps
    (file reads, parsing, SQLite) through ``await self.run_blocking(fn, *args)``. An expert whose whole work
    blocks sets ``blocking = True`` (or defines a plain ``def execute``) and runs in a worker thread instead.
    """

    id: ClassVar[str]
    name: ClassVar[str]
    version: ClassVar[str] = "0.1.0"
    description: ClassVar[str] = ""
    capabilities: ClassVar[tuple[str, ...]] = ()
    task_types: ClassVar[tuple[str, ...]] = ()
    examples: ClassVar[tuple[str, ...]] = ()
    priority: ClassVar[int] = 0
    blocking: ClassVar[bool] = False

    def __init__(self) -> None:
        self.context = ExpertContext()
        self.initialized = False

    async def initialize(self, context: ExpertContext) -> None:
        """Acquire resources. Called once before the first task."""
        self.context = context
        self.initialized = True

    def validate(self, task: Task) -> None:
        """Raise ``TaskError`` when this expert cannot take the task. The default accepts every task."""

    async def pre_process(self, task: Task) -> Task:
        return task

    @abstractmethod
    async def execute(self, task: Task) -> ExpertOutput:
        """Do the work. Raise ``ExpertExecutionError(retryable=True)`` for transient failures."""

    async def post_process(self, task: Task, output: ExpertOutput) -> ExpertOutput:
        return output

    async def shutdown(self) -> None:
        """Release resources. Called once when the system stops."""
        self.initialized = False

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking function off the event loop; cancelling the caller abandons it (see execution/blocking.py)."""
        call = functools.partial(fn, *args)
        if self.context.offload is not None:
            result: T = await self.context.offload(call)
            return result
        import asyncio  # here: registering experts (``vy-nexus route``) never loads asyncio (issue 16, cold start)

        return await asyncio.to_thread(call)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "capabilities": list(self.capabilities),
            "task_types": list(self.task_types),
            "priority": self.priority,
            "blocking": self.blocking,
        }

    @staticmethod
    def require_input(task: Task, *types: type) -> None:
        """Helper for ``validate``: the task's input must be one of ``types``."""
        if not isinstance(task.input, types):
            names = " or ".join(t.__name__ for t in types)
            raise TaskError(f"this expert needs an input payload of type {names}", task_id=task.id)


def check_declaration(expert: BaseExpert) -> None:
    """Raise ``ExpertRegistrationError`` naming what is wrong with an expert's declaration."""
    cls = type(expert)
    expert_id = getattr(cls, "id", None)
    if not isinstance(expert_id, str) or not EXPERT_ID_PATTERN.match(expert_id):
        raise ExpertRegistrationError(
            f"expert {cls.__name__} has an invalid id {expert_id!r}: use lowercase letters, digits, '-' or '_',"
            " starting with a letter",
            expert_id=expert_id if isinstance(expert_id, str) else None,
        )
    if not isinstance(getattr(cls, "name", None), str) or not cls.name.strip():
        raise ExpertRegistrationError(f"expert '{expert_id}' has no name", expert_id=expert_id)
    for field_name in ("capabilities", "task_types", "examples"):
        declared = getattr(cls, field_name, ())
        if not isinstance(declared, tuple | list) or not all(isinstance(item, str) for item in declared):
            # A bare string would be read one character at a time.
            raise ExpertRegistrationError(
                f"expert '{expert_id}' {field_name} must be a tuple of strings, not {declared!r}"
                + (f": write ({declared!r},)" if isinstance(declared, str) else ""),
                expert_id=expert_id,
            )
    if not isinstance(getattr(cls, "description", ""), str):
        raise ExpertRegistrationError(f"expert '{expert_id}' description must be a string", expert_id=expert_id)
    caps = cls.capabilities
    if not caps:
        raise ExpertRegistrationError(f"expert '{expert_id}' declares no capabilities", expert_id=expert_id)
    for cap in caps:
        if not isinstance(cap, str) or not CAPABILITY_PATTERN.match(cap):
            raise ExpertRegistrationError(
                f"expert '{expert_id}' has an invalid capability {cap!r} (lowercase words, 1-64 characters)",
                expert_id=expert_id,
            )
    if not isinstance(cls.priority, int):
        raise ExpertRegistrationError(f"expert '{expert_id}' priority must be an integer", expert_id=expert_id)
