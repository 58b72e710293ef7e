"""``sovereign_state.json``: the system's own plan (phases of jobs with verification commands) and its vital signs.

Layout::

    {"meta": {"project", "schema_version", "boot_time", "current_phase", "last_heartbeat",
              "last_shutdown_reason", "last_shutdown_at", "error_counts"},
     "phases": [{"id", "name", "description",
                 "jobs": [{"id", "task", "description", "status", "verification", "last_checked", "last_result"}]}]}

``status`` is ``pending`` (verify it next), ``completed`` (its verification passed) or ``cyclic`` (recurring work
that never completes and never blocks a phase). ``verification`` is an argument list, never a shell line.

``StateStore`` reads and writes the file under a file lock (``sovereign_state.json.lock``), atomically. A file that
is not valid JSON or does not match the layout is moved aside to ``sovereign_state.json.corrupt-<timestamp>`` and a
``StateError`` names both paths; it is never overwritten silently.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vy_nexus import json_text
from vy_nexus.errors import StateError
from vy_nexus.foundation.atomic import atomic_write_text
from vy_nexus.foundation.file_lock import FileGuard

SCHEMA_VERSION = 1
JobStatus = Literal["pending", "completed", "cyclic"]


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)  # built on first use


class Job(_Model):
    id: str = Field(min_length=1, max_length=64)
    task: str = Field(min_length=1)
    description: str = ""
    status: JobStatus = "pending"
    verification: list[str] = Field(min_length=1, description="argument list run without a shell, cwd = home")
    last_checked: datetime | None = None
    last_result: str | None = None


class Phase(_Model):
    id: int = Field(ge=1)
    name: str = Field(min_length=1)
    description: str = ""
    jobs: list[Job] = Field(default_factory=list)

    @property
    def done(self) -> bool:
        """Every job is completed or cyclic."""
        return all(job.status != "pending" for job in self.jobs)

    def first_pending(self) -> Job | None:
        return next((job for job in self.jobs if job.status == "pending"), None)


class Meta(_Model):
    project: str = "vy-nexus"
    schema_version: int = SCHEMA_VERSION
    boot_time: datetime = Field(default_factory=utc_now)
    current_phase: int = Field(default=1, ge=1)
    last_heartbeat: datetime | None = None
    last_shutdown_reason: str | None = None
    last_shutdown_at: datetime | None = None
    error_counts: dict[str, int] = Field(default_factory=dict)


class SovereignState(_Model):
    meta: Meta = Field(default_factory=Meta)
    phases: list[Phase] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> SovereignState:
        ids = [phase.id for phase in self.phases]
        if len(set(ids)) != len(ids):
            raise ValueError(f"phase ids must be unique, got {ids}")
        if self.meta.current_phase not in ids:
            raise ValueError(f"meta.current_phase {self.meta.current_phase} is not one of the phase ids {ids}")
        job_ids = [job.id for phase in self.phases for job in phase.jobs]
        duplicates = sorted({job_id for job_id in job_ids if job_ids.count(job_id) > 1})
        if duplicates:
            raise ValueError(f"job ids must be unique, duplicated: {', '.join(duplicates)}")
        return self

    def phase(self, phase_id: int) -> Phase:
        for phase in self.phases:
            if phase.id == phase_id:
                return phase
        raise StateError(f"no phase {phase_id} in the sovereign state")

    def current(self) -> Phase:
        return self.phase(self.meta.current_phase)

    def next_phase(self, phase_id: int) -> Phase | None:
        later = sorted((phase for phase in self.phases if phase.id > phase_id), key=lambda phase: phase.id)
        return later[0] if later else None

    def job(self, job_id: str) -> Job:
        for phase in self.phases:
            for job in phase.jobs:
                if job.id == job_id:
                    return job
        raise StateError(f"no job '{job_id}' in the sovereign state")


def _problem(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte {exc.start})"
    if isinstance(exc, RecursionError):
        return "JSON nested too deeply"
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(root)"
        more = f" and {exc.error_count() - 1} more problem(s)" if exc.error_count() > 1 else ""
        return f"invalid at '{where}': {first['msg']}{more}"
    return str(exc)


class StateStore:
    """Locked, atomic, validated access to one state file. A missing file is created from ``default``."""

    def __init__(
        self,
        path: Path,
        *,
        default: Callable[[], SovereignState],
        lock_timeout: float = 10.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.path = path
        self._default = default
        self._guard = FileGuard(path, lock_timeout)
        self._clock = clock

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> SovereignState:
        """The current state (creating the default state for a new home)."""
        with self._locked():
            return self._read_or_create()

    def save(self, state: SovereignState) -> None:
        with self._locked():
            self._write(state)

    def update(self, change: Callable[[SovereignState], None]) -> SovereignState:
        """Read, let ``change`` modify the state in place, validate and write it back, all under the lock."""
        with self._locked():
            state = self._read_or_create()
            change(state)
            try:
                checked = SovereignState.model_validate(state.model_dump())
            except ValidationError as exc:
                raise StateError(f"refusing to write an invalid state to {self.path}: {_problem(exc)}") from exc
            self._write(checked)
            return checked

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return self._guard.locked()

    def _read_or_create(self) -> SovereignState:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            state = self._default()
            self._write(state)
            return state
        except OSError as exc:
            raise StateError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        try:
            return SovereignState.model_validate(json_text.loads(data.decode("utf-8")))
        except (UnicodeDecodeError, RecursionError, json.JSONDecodeError, ValidationError) as exc:
            aside = self._move_aside()
            raise StateError(
                f"{self.path} is corrupt: {_problem(exc)}. It was moved to {aside}; the next run starts from a"
                " fresh default state (copy jobs back from the corrupt file if you need them)."
            ) from exc

    def _move_aside(self) -> Path:
        stamp = self._clock().strftime("%Y%m%dT%H%M%S%fZ")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        self.path.replace(aside)
        return aside

    def _write(self, state: SovereignState) -> None:
        try:
            atomic_write_text(self.path, state.model_dump_json(indent=2) + "\n")
        except OSError as exc:
            raise StateError(f"cannot write {self.path}: {exc.strerror or exc}") from exc


def record_shutdown(store: StateStore, reason: str, error_counts: dict[str, int]) -> SovereignState:
    """Persist why the system stopped, and add this run's error counts to the totals."""

    def change(state: SovereignState) -> None:
        state.meta.last_shutdown_reason = reason
        state.meta.last_shutdown_at = utc_now()
        totals = dict(state.meta.error_counts)
        for severity, count in error_counts.items():
            totals[severity] = totals.get(severity, 0) + count
        state.meta.error_counts = totals

    return store.update(change)
