"""The heartbeat on sample states: passing, failing and timing-out verifications, phase advance, no shell ever."""

from __future__ import annotations

import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vy_nexus.errors import StateError, VyNexusError
from vy_nexus.events import Event, EventBus
from vy_nexus.foundation.pulse import (
    BeatResult,
    Heartbeat,
    VerificationRunner,
    describe,
    expand_command,
)
from vy_nexus.foundation.state import Job, Meta, Phase, SovereignState, StateStore

PY = sys.executable
PASS = [PY, "-c", "print('ok')"]
FAIL = [PY, "-c", "import sys; print('bad', file=sys.stderr); sys.exit(3)"]
SLOW = [PY, "-c", "import time; time.sleep(30)"]


def sample_state() -> SovereignState:
    return SovereignState(
        meta=Meta(current_phase=1),
        phases=[
            Phase(
                id=1,
                name="first",
                jobs=[
                    Job(id="1.1", task="passes", verification=PASS),
                    Job(id="1.2", task="fails", verification=FAIL),
                    Job(id="1.3", task="recurring", verification=FAIL, status="cyclic"),
                ],
            ),
            Phase(id=2, name="second", jobs=[Job(id="2.1", task="hangs", verification=SLOW)]),
            Phase(id=3, name="third", jobs=[Job(id="3.1", task="done", verification=PASS, status="completed")]),
        ],
    )


@pytest.fixture
def seen() -> list[Event]:
    return []


@pytest.fixture
def heartbeat(tmp_path: Path, seen: list[Event]) -> Heartbeat:
    events = EventBus()
    events.subscribe(seen.append)
    store = StateStore(tmp_path / "sovereign_state.json", default=sample_state)
    return Heartbeat(store, VerificationRunner(tmp_path, timeout=0.3), events=events)


def test_placeholders_expand_and_nothing_else_does() -> None:
    assert expand_command(["{python}", "-V"]) == [PY, "-V"]
    assert expand_command(["{vy-nexus}", "pulse"])[:2] == [PY, "-c"]
    assert expand_command(["{vy-nexus}", "pulse"])[-1] == "pulse"
    assert expand_command(["{sqlite3}", "db", "q"], which=lambda _name: "/usr/bin/sqlite3") == [
        "/usr/bin/sqlite3",
        "db",
        "q",
    ]
    assert expand_command(["echo", "{python}"]) == ["echo", "{python}"]
    assert expand_command([]) == []


def test_sqlite_fallback_answers_like_the_cli_without_creating_files(tmp_path: Path) -> None:
    db = tmp_path / "metrics.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE metrics (value REAL)")
        connection.executemany("INSERT INTO metrics VALUES (?)", [(1.0,), (2.0,)])
    connection.close()
    command = expand_command(["{sqlite3}", "metrics.db", "SELECT COUNT(*) FROM metrics;"], which=lambda _n: None)
    runner = VerificationRunner(tmp_path, timeout=10)
    result = runner.run(command)
    assert result.passed and result.stdout.strip() == "2"
    missing = runner.run(expand_command(["{sqlite3}", "absent.db", "SELECT 1;"], which=lambda _n: None))
    assert not missing.passed and not (tmp_path / "absent.db").exists()


def test_hostile_command_never_reaches_a_shell(tmp_path: Path) -> None:
    runner = VerificationRunner(tmp_path, timeout=5)
    as_one_word = runner.run(["true; touch pwned"])
    assert not as_one_word.passed and as_one_word.error == "command not found: true; touch pwned"
    as_an_argument = runner.run(["echo", "true; touch pwned"])
    assert as_an_argument.passed and as_an_argument.stdout.strip() == "true; touch pwned"
    assert not (tmp_path / "pwned").exists()
    assert list(tmp_path.iterdir()) == []


def test_runner_reports_exit_codes_output_and_home(tmp_path: Path) -> None:
    runner = VerificationRunner(tmp_path, timeout=5, env={"PATH": "/usr/bin:/bin"})
    result = runner.run([PY, "-c", "import os; print(os.getcwd()); print(os.environ['VY_NEXUS_HOME'])"])
    assert result.passed and result.stdout.split() == [str(tmp_path), str(tmp_path)]
    failed = runner.run(FAIL)
    assert not failed.passed and failed.returncode == 3 and "bad" in failed.stderr
    assert failed.summary() == "failed: exit code 3"
    assert runner.run([]).summary() == "failed: empty verification command"
    assert runner.run([str(tmp_path)]).error is not None  # a directory is not a program


def test_runner_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    runner = VerificationRunner(tmp_path, timeout=0.2)
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']);"
    started = time.perf_counter()
    result = runner.run([PY, "-c", script + " time.sleep(30)"])
    assert time.perf_counter() - started < 5  # the grandchild holding the pipes was killed too
    assert result.timed_out and not result.passed and result.summary().startswith("timed out after")


def test_beats_follow_the_seed_algorithm(heartbeat: Heartbeat, seen: list[Event]) -> None:
    first = heartbeat.beat()
    assert (first.action, first.job_id, first.passed) == ("verified", "1.1", True)
    state = heartbeat.store.load()
    assert state.job("1.1").status == "completed" and state.job("1.1").last_result == "passed"
    assert state.meta.last_heartbeat is not None

    failing = heartbeat.beat()
    assert (failing.job_id, failing.passed, failing.advanced_to) == ("1.2", False, None)
    job = heartbeat.store.load().job("1.2")
    assert job.status == "pending" and job.last_result == "failed: exit code 3"
    assert heartbeat.beat().job_id == "1.2"  # a failing job keeps the phase where it is

    def repair(state: SovereignState) -> None:
        state.job("1.2").verification = PASS

    heartbeat.store.update(repair)
    fixed = heartbeat.beat()
    assert fixed.passed and fixed.advanced_to == 2  # 1.3 is cyclic, so phase 1 holds
    assert heartbeat.store.load().meta.current_phase == 2

    hung = heartbeat.beat()
    assert hung.job_id == "2.1" and hung.verification is not None and hung.verification.timed_out
    assert heartbeat.store.load().job("2.1").last_result is not None

    verified = [e for e in seen if e.kind == "pulse.verified"]
    assert [e.metadata["job_id"] for e in verified] == ["1.1", "1.2", "1.2", "1.2", "2.1"]
    assert verified[1].level == "warn" and verified[1].metadata["returncode"] == 3
    assert "bad" in verified[1].metadata["stderr"] and verified[0].metadata["stdout"].strip() == "ok"
    assert verified[-1].metadata["timed_out"] is True
    assert [e.metadata for e in seen if e.kind == "pulse.advanced"] == [{"from_phase": 1, "to_phase": 2}]


def test_phases_without_pending_jobs_advance_then_complete(tmp_path: Path) -> None:
    def finished() -> SovereignState:
        state = sample_state()
        for phase in state.phases:
            for job in phase.jobs:
                job.status = "completed"
        return state

    heartbeat = Heartbeat(StateStore(tmp_path / "s.json", default=finished), VerificationRunner(tmp_path))
    advanced = heartbeat.beat()
    assert (advanced.action, advanced.advanced_to) == ("advanced", 3)
    complete = heartbeat.beat()
    assert complete.action == "complete" and complete.as_dict()["passed"] is None


def test_the_loop_stops_when_asked_and_survives_failed_beats(heartbeat: Heartbeat) -> None:
    waits: list[float] = []
    beats: list[BeatResult] = []

    def stop_after_two(interval: float) -> bool:
        waits.append(interval)
        return len(waits) >= 2

    assert heartbeat.run(0.01, stop_after_two, on_beat=beats.append) == 2
    assert waits == [0.01, 0.01] and [b.job_id for b in beats] == ["1.1", "1.2"]
    assert heartbeat.run(0.0, lambda _s: False, max_beats=1) == 1

    heartbeat.store.path.write_text("{not json")
    errors: list[VyNexusError] = []
    assert heartbeat.run(0.0, lambda _s: False, max_beats=2, on_error=errors.append) == 2
    assert len(errors) == 1 and isinstance(errors[0], StateError)  # the next beat starts from a fresh state
    heartbeat.store.path.write_text("{not json")
    with pytest.raises(StateError):
        heartbeat.run(0.0, lambda _s: False, max_beats=1)


def test_describe_marks_holding_and_current_phases() -> None:
    state = sample_state()
    state.meta.last_heartbeat = datetime(2026, 1, 1, tzinfo=UTC)
    info = describe(state)
    assert [(p["id"], p["holds"], p["current"]) for p in info["phases"]] == [
        (1, False, True),
        (2, False, False),
        (3, True, False),
    ]
    assert info["meta"]["last_heartbeat"].startswith("2026-01-01")
    assert info["phases"][0]["jobs"][0]["verification"] == PASS
