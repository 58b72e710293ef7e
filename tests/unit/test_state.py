"""sovereign_state.json: default state, locked atomic updates, corruption handling."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import filelock
import pytest

from vy_nexus.errors import StateError
from vy_nexus.foundation.default_state import default_state
from vy_nexus.foundation.state import Job, Phase, SovereignState, StateStore, record_shutdown


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "sovereign_state.json"


@pytest.fixture
def store(path: Path) -> StateStore:
    return StateStore(path, default=default_state, clock=lambda: datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))


def test_a_new_home_gets_the_systems_own_phases(store: StateStore, path: Path) -> None:
    assert not store.exists()
    state = store.load()
    assert store.exists()
    assert [phase.name for phase in state.phases] == [
        "Nervous system",
        "Reasoning core",
        "MoIE architecture",
        "Command & control",
        "Intelligence & optimization",
    ]
    assert state.meta.current_phase == 1 and state.meta.project == "vy-nexus"
    jobs = {job.id: job for phase in state.phases for job in phase.jobs}
    assert jobs["1.1"].verification == ["grep", "-c", '"level":', "research_logs/structured.jsonl"]
    assert jobs["5.1"].verification == ["{sqlite3}", "metrics/performance.db", "SELECT COUNT(*) FROM metrics;"]
    assert jobs["3.3"].verification == ["{vy-nexus}", "create-expert", "--help"]
    assert jobs["5.2"].status == "cyclic"
    assert all(isinstance(arg, str) for job in jobs.values() for arg in job.verification)
    on_disk = json.loads(path.read_text())
    assert on_disk["meta"]["current_phase"] == 1 and len(on_disk["phases"]) == 5


def test_update_is_validated_and_persisted(store: StateStore) -> None:
    def complete(state: SovereignState) -> None:
        state.job("1.1").status = "completed"
        state.meta.error_counts = {"critical": 1}

    store.update(complete)
    again = store.load()
    assert again.job("1.1").status == "completed" and again.meta.error_counts == {"critical": 1}


def test_an_update_that_breaks_the_state_writes_nothing(store: StateStore, path: Path) -> None:
    store.load()
    before = path.read_text()

    def break_it(state: SovereignState) -> None:
        state.meta.current_phase = 42

    with pytest.raises(StateError, match=r"refusing to write an invalid state.*current_phase 42"):
        store.update(break_it)
    assert path.read_text() == before


def test_corrupt_json_is_moved_aside_never_overwritten(store: StateStore, path: Path) -> None:
    path.write_text('{"meta": {"project": "mine"}, "phases": [')
    with pytest.raises(StateError, match="is corrupt: not valid JSON") as info:
        store.load()
    aside = path.with_name("sovereign_state.json.corrupt-20260102T030405000000Z")
    assert str(aside) in str(info.value)
    assert aside.read_text() == '{"meta": {"project": "mine"}, "phases": ['
    assert not path.exists()
    assert store.load().meta.current_phase == 1  # the next run starts fresh; the corrupt copy stays
    assert aside.exists()


def test_a_file_that_does_not_match_the_layout_is_corrupt(store: StateStore, path: Path) -> None:
    path.write_text(json.dumps({"meta": {"current_phase": 1}, "phases": [{"id": 1, "name": "x", "jobs": [{}]}]}))
    with pytest.raises(StateError, match=r"invalid at 'phases\.0\.jobs\.0\.id'"):
        store.load()
    assert list(path.parent.glob("sovereign_state.json.corrupt-*"))


def test_consistency_rules() -> None:
    job = Job(id="1", task="t", verification=["true"])
    with pytest.raises(ValueError, match="phase ids must be unique"):
        SovereignState(phases=[Phase(id=1, name="a"), Phase(id=1, name="b")])
    with pytest.raises(ValueError, match="job ids must be unique"):
        SovereignState(phases=[Phase(id=1, name="a", jobs=[job]), Phase(id=2, name="b", jobs=[job])])
    with pytest.raises(ValueError):
        Job(id="1", task="t", verification=[])  # a job always has a command to check it
    state = SovereignState(phases=[Phase(id=1, name="a", jobs=[job])])
    with pytest.raises(StateError, match="no job 'x'"):
        state.job("x")
    with pytest.raises(StateError, match="no phase 9"):
        state.phase(9)


def test_a_held_lock_is_a_clear_error(path: Path) -> None:
    store = StateStore(path, default=default_state, lock_timeout=0.05)
    other = filelock.FileLock(str(path.with_name(path.name + ".lock")))
    with other, pytest.raises(StateError, match="locked by another vy-nexus process"):
        store.load()
    store.load()  # free again


def test_record_shutdown_keeps_the_reason_and_adds_the_counts(store: StateStore) -> None:
    record_shutdown(store, "maintenance", {"critical": 2, "low": 1})
    state = record_shutdown(store, "threshold", {"critical": 3})
    assert state.meta.last_shutdown_reason == "threshold"
    assert state.meta.last_shutdown_at is not None
    assert state.meta.error_counts == {"critical": 5, "low": 1}
    assert store.load().meta.last_shutdown_reason == "threshold"


def test_unreadable_state_is_a_state_error(path: Path) -> None:
    path.mkdir()  # a directory where the file should be
    with pytest.raises(StateError, match="cannot read"):
        StateStore(path, default=default_state).load()
