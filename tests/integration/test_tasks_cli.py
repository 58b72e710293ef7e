"""`vy-nexus tasks list|show|cancel` over tasks that `vy-nexus run` recorded in a real home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vy_nexus.config import load_settings
from vy_nexus.interfaces.cli import app
from vy_nexus.store import SqlTaskStore, TaskState
from vy_nexus.tasks import Task

runner = CliRunner()


def invoke(home: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--home", str(home), *args], env={"COLUMNS": "120"})
    return result.exit_code, result.stdout, result.stderr


def test_run_records_the_task_and_tasks_commands_show_it(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "sales.csv"
    data.write_text("region,units\nnorth,3\nsouth,4\nnorth,2\n")
    code, out, _ = invoke(home, "run", "total units by region in this csv", "--input", str(data), "--json")
    assert code == 0
    task_id = json.loads(out)["task_id"]

    code, out, _ = invoke(home, "tasks", "list", "--json")
    page = json.loads(out)
    assert code == 0 and page["total"] == 1
    assert page["items"][0]["id"] == task_id and page["items"][0]["state"] == "succeeded"
    assert page["items"][0]["experts"] == ["data-analysis"]

    code, out, _ = invoke(home, "tasks", "list", "--state", "failed")
    assert code == 0 and "no tasks match" in out
    code, out, _ = invoke(home, "tasks", "list", "--expert", "data-analysis")
    assert code == 0 and task_id in out and "succeeded" in out and "1-1 of 1" in out

    code, out, _ = invoke(home, "tasks", "show", task_id)
    assert code == 0
    for expected in ("succeeded", "data-analysis", "keyword", "allowed", "total units by region"):
        assert expected in out
    code, out, _ = invoke(home, "tasks", "show", task_id, "--json")
    record = json.loads(out)
    assert record["results"][0]["expert_id"] == "data-analysis" and record["ruling"]["verdict"] == "allowed"

    code, out, _ = invoke(home, "tasks", "cancel", task_id)
    assert code == 0 and "already ended: succeeded" in out


def test_show_names_the_priority_deadline_and_context_as_given(home: Path) -> None:
    context = '{"note": "[red]x[/red]"}'
    args = ("--priority", "high", "--deadline", "2999-01-01T00:00", "--context", context, "--json")
    code, out, err = invoke(home, "run", "count the words in this sentence", "--expert", "writing", *args)
    assert code == 0, err
    code, out, _ = invoke(home, "tasks", "show", json.loads(out)["task_id"])
    assert code == 0
    lines = {line.split(None, 1)[0]: line.split(None, 1)[1].strip() for line in out.splitlines() if line.strip()}
    assert lines["priority"] == "high" and lines["deadline"] == "2999-01-01T00:00:00+00:00"
    assert lines["context"] == '{"note": "[red]x[/red]", "experts": ["writing"]}'  # markup shown literally


def test_cancel_marks_a_live_task_for_its_owner(home: Path) -> None:
    settings = load_settings(home)
    server = SqlTaskStore(settings.store_url, owner_id="another-host:1:1")  # a server elsewhere, alive
    server.open()
    task = Task(description="a long job [with brackets]")
    server.accept(task)
    server.started(task.id)
    server.flush()
    code, out, _ = invoke(home, "tasks", "cancel", task.id)
    assert code == 0 and f"cancel requested for task {task.id} (running)" in out
    code, out, _ = invoke(home, "tasks", "list")
    assert "cancelling" in out and "[with brackets]" in out  # user text printed literally
    record = server.get(task.id)
    server.close()
    assert record.state is TaskState.RUNNING and record.cancel_requested


def test_bad_state_unknown_id_and_bad_time_are_clear_errors(home: Path) -> None:
    code, _, err = invoke(home, "tasks", "list", "--state", "sleeping")
    assert code == 2 and "unknown task state 'sleeping'" in err
    code, _, err = invoke(home, "tasks", "show", "nope")
    assert code == 2 and "no task with id 'nope'" in err
    code, _, err = invoke(home, "tasks", "list", "--since", "yesterday-ish")
    assert code == 2 and "cannot read the time" in err


def test_a_damaged_task_store_is_moved_aside_with_a_warning_the_user_sees(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`tasks list` dropped the store's warning: the file was moved aside without a word. Store warnings go to the
    ``vy_nexus.store`` logger, which a CLI command (no logging configured) prints to stderr."""
    (home / "tasks").mkdir()
    (home / "tasks" / "tasks.db").write_bytes(b"\x00this is not a database" * 8)
    with caplog.at_level("WARNING", logger="vy_nexus.store"):
        code, out, _ = invoke(home, "tasks", "list")
    assert code == 0 and "no tasks match" in out
    assert [r.getMessage() for r in caplog.records if "was damaged; moved it to tasks.db.damaged-" in r.getMessage()]
    assert len(list((home / "tasks").glob("tasks.db.damaged-*"))) == 1


def test_at_80_columns_each_task_keeps_its_text_on_a_line_of_its_own(home: Path) -> None:
    # Before: five fixed columns left the task text 8 characters ("please do"), cut without an ellipsis.
    store = SqlTaskStore(load_settings(home).store_url)
    store.open()
    short, long = Task(description="total units by region [north]"), Task(description="summarise " + "word " * 40)
    for task in (short, long):
        store.accept(task)
        store.finished(task.id, TaskState.FAILED, error="x")
    store.close()
    result = runner.invoke(app, ["--home", str(home), "tasks", "list"], env={"COLUMNS": "80"})
    lines = result.stdout.splitlines()
    assert result.exit_code == 0 and max(len(line) for line in lines) <= 80
    first = next(i for i, line in enumerate(lines) if line.startswith(short.id))
    assert "failed" in lines[first] and lines[first + 1].strip() == "total units by region [north]"
    assert any(line.startswith("  summarise word word") and line.rstrip().endswith("…") for line in lines)
