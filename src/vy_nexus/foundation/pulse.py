"""The heartbeat: one beat takes the current phase's first pending job, runs its verification, marks it completed on
success and advances the phase once every job in it is completed or cyclic.

Verification commands run as argument lists (``shell=False``) in the home directory, with
``heartbeat.verification_timeout_seconds`` as the limit (the whole process group is killed on timeout) and
``VY_NEXUS_HOME`` set to the home, so ``{vy-nexus}`` commands check this home. Their output is published as a
``pulse.verified`` event for the journal; ``pulse.advanced`` marks a phase change.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vy_nexus.config import HOME_ENV
from vy_nexus.errors import VyNexusError
from vy_nexus.events import EventBus
from vy_nexus.foundation.state import SovereignState, StateStore, utc_now

OUTPUT_TAIL_CHARS = 2000

_CLI_SNIPPET = "from vy_nexus.interfaces.cli import app; app(prog_name='vy-nexus')"
_SQLITE_SNIPPET = (
    "import sqlite3, sys\n"
    "db = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n"
    "for row in db.execute(sys.argv[2]):\n"
    "    print('|'.join(str(value) for value in row))\n"
)


def expand_command(argv: Sequence[str], *, which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """Expand a leading program variable: ``{python}``, ``{vy-nexus}``, ``{sqlite3}``. Other arguments stay literal."""
    if not argv:
        return []
    head, rest = argv[0], list(argv[1:])
    if head == "{python}":
        return [sys.executable, *rest]
    if head == "{vy-nexus}":
        return [sys.executable, "-c", _CLI_SNIPPET, *rest]
    if head == "{sqlite3}":
        found = which("sqlite3")
        return [found, *rest] if found else [sys.executable, "-c", _SQLITE_SNIPPET, *rest]
    return [head, *rest]


def _tail(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace")
    return text if len(text) <= OUTPUT_TAIL_CHARS else "…" + text[-OUTPUT_TAIL_CHARS:]


@dataclass(frozen=True, slots=True)
class VerificationResult:
    command: list[str]
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    duration_ms: float = 0.0
    timed_out: bool = False
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and not self.timed_out and self.error is None

    def summary(self) -> str:
        if self.passed:
            return "passed"
        if self.timed_out:
            return f"timed out after {self.duration_ms / 1e3:.1f} s"
        if self.error is not None:
            return f"failed: {self.error}"
        return f"failed: exit code {self.returncode}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


class VerificationRunner:
    """Runs one verification command: no shell, fixed working directory, a timeout, captured output."""

    def __init__(self, cwd: Path, *, timeout: float = 30.0, env: Mapping[str, str] | None = None) -> None:
        self.cwd = cwd
        self.timeout = timeout
        self.env = dict(os.environ if env is None else env)
        self.env[HOME_ENV] = str(cwd)

    def run(self, argv: Sequence[str]) -> VerificationResult:
        command = expand_command(argv)
        started = time.perf_counter()
        if not command:
            return VerificationResult(command=[], returncode=None, error="empty verification command")
        try:
            process = subprocess.Popen(
                command,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group, so a timeout kills its children too
            )
        except FileNotFoundError:
            return VerificationResult(command=command, returncode=None, error=f"command not found: {command[0]}")
        except OSError as exc:
            return VerificationResult(command=command, returncode=None, error=f"cannot run {command[0]}: {exc}")
        try:
            stdout, stderr = process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            return VerificationResult(
                command=command,
                returncode=process.returncode,
                stdout=_tail(stdout),
                stderr=_tail(stderr),
                duration_ms=(time.perf_counter() - started) * 1e3,
                timed_out=True,
            )
        return VerificationResult(
            command=command,
            returncode=process.returncode,
            stdout=_tail(stdout),
            stderr=_tail(stderr),
            duration_ms=(time.perf_counter() - started) * 1e3,
        )


@dataclass(frozen=True, slots=True)
class BeatResult:
    """What one beat did: ``action`` is ``verified``, ``advanced`` (no pending job, phase moved on) or ``complete``."""

    action: str
    phase: int
    job_id: str | None = None
    verification: VerificationResult | None = None
    advanced_to: int | None = None

    @property
    def passed(self) -> bool | None:
        return None if self.verification is None else self.verification.passed

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "phase": self.phase,
            "job_id": self.job_id,
            "passed": self.passed,
            "advanced_to": self.advanced_to,
            "verification": None if self.verification is None else self.verification.as_dict(),
        }


def _advance(state: SovereignState) -> int | None:
    """Move ``current_phase`` past finished phases; the new phase id, or ``None`` when it did not move."""
    start = state.meta.current_phase
    phase = state.current()
    while phase.done:
        following = state.next_phase(phase.id)
        if following is None:
            break
        phase = following
    state.meta.current_phase = phase.id
    return phase.id if phase.id != start else None


class Heartbeat:
    """The heartbeat over one state store."""

    def __init__(
        self,
        store: StateStore,
        runner: VerificationRunner,
        *,
        events: EventBus | None = None,
        before_verify: Callable[[], object] | None = None,
    ) -> None:
        """``before_verify`` runs before each verification command: checks read what the system wrote (the journal,
        the metrics), so the system passes its observers' flush here."""
        self.store = store
        self.runner = runner
        self._events = events or EventBus()
        self._before_verify = before_verify

    def beat(self) -> BeatResult:
        state = self.store.load()
        phase = state.current()
        job = phase.first_pending()
        if job is None:
            return self._advance_only(phase.id)
        if self._before_verify is not None:
            self._before_verify()
        result = self.runner.run(job.verification)
        self._events.publish(
            "pulse.verified",
            "heartbeat",
            f"job {job.id} ({job.task}) {result.summary()}",
            level="info" if result.passed else "warn",
            category="observation",
            phase="heartbeat",
            metadata={"job_id": job.id, "phase": phase.id, **result.as_dict()},
        )
        advanced: list[int | None] = [None]

        def record(current: SovereignState) -> None:
            now = utc_now()
            current.meta.last_heartbeat = now
            target = current.job(job.id)
            target.last_checked = now
            target.last_result = result.summary()
            if result.passed and target.status == "pending":
                target.status = "completed"
            advanced[0] = _advance(current)

        self.store.update(record)
        self._announce(phase.id, advanced[0])
        return BeatResult("verified", phase.id, job.id, result, advanced[0])

    def _advance_only(self, phase_id: int) -> BeatResult:
        advanced: list[int | None] = [None]

        def record(current: SovereignState) -> None:
            current.meta.last_heartbeat = utc_now()
            advanced[0] = _advance(current)

        self.store.update(record)
        self._announce(phase_id, advanced[0])
        return BeatResult("advanced" if advanced[0] is not None else "complete", phase_id, advanced_to=advanced[0])

    def _announce(self, phase_id: int, advanced_to: int | None) -> None:
        if advanced_to is None:
            return
        self._events.publish(
            "pulse.advanced",
            "heartbeat",
            f"phase {phase_id} holds; now in phase {advanced_to}",
            category="milestone",
            phase="heartbeat",
            metadata={"from_phase": phase_id, "to_phase": advanced_to},
        )

    def run(
        self,
        interval_seconds: float,
        wait_for_stop: Callable[[float], bool],
        *,
        max_beats: int | None = None,
        on_error: Callable[[VyNexusError], object] | None = None,
        on_beat: Callable[[BeatResult], object] | None = None,
    ) -> int:
        """Beat, then wait ``interval_seconds`` (``wait_for_stop`` returns ``True`` to end early), until stopped or
        ``max_beats`` beats are done. A failed beat goes to ``on_error`` and the loop goes on (without ``on_error``
        it propagates). Returns the number of beats."""
        beats = 0
        while max_beats is None or beats < max_beats:
            try:
                result = self.beat()
                if on_beat is not None:
                    on_beat(result)
            except VyNexusError as exc:
                if on_error is None:
                    raise
                on_error(exc)
            beats += 1
            if (max_beats is not None and beats >= max_beats) or wait_for_stop(interval_seconds):
                break
        return beats


def describe(state: SovereignState) -> dict[str, Any]:
    """The state for ``vy-nexus pulse --status``: phases with their jobs and whether each phase holds."""
    return {
        "meta": state.meta.model_dump(mode="json"),
        "phases": [
            {
                "id": phase.id,
                "name": phase.name,
                "holds": phase.done,
                "current": phase.id == state.meta.current_phase,
                "jobs": [job.model_dump(mode="json") for job in phase.jobs],
            }
            for phase in state.phases
        ],
    }
