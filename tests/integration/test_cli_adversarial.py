"""Regressions from attacking the CLI and the files of its home: numbers past what the interpreter, a thread or
orjson can hold, and directories where the journal's files belong, give a clear message and the documented exit
code, never a traceback."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vy_nexus.interfaces.cli import app

runner = CliRunner()

TOO_MANY_DIGITS = "1" * (sys.get_int_max_str_digits() + 700)
"""A number int() refuses to read (4300 digits by default): json and PyYAML raise a bare ValueError on it."""


def invoke(home: Path, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--home", str(home), *args], input=input, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("value", ["inf", "nan", "1e400", ".inf"])
def test_configure_refuses_a_number_that_is_not_finite(home: Path, value: str) -> None:
    code, _, err = invoke(home, "configure", "routing.cache.ttl_seconds", value, "--yes")
    assert code == 2 and "key 'routing.cache.ttl_seconds': Input should be a finite number" in err, err
    assert not (home / "config.yaml").exists()


def test_a_number_that_is_not_finite_in_the_file_or_environment_is_refused(home: Path) -> None:
    code, _, err = invoke(home, "status", env={"VY_NEXUS_SAFETY__STOP_POLL_SECONDS": "inf"})
    assert code == 2 and "VY_NEXUS_SAFETY__STOP_POLL_SECONDS" in err and "finite number" in err, err
    (home / "config.yaml").write_text("safety:\n  window_seconds: .nan\n")
    code, _, err = invoke(home, "status")
    assert code == 2 and "key 'safety.window_seconds': Input should be a finite number" in err, err


@pytest.mark.parametrize(
    "key", ["safety.stop_poll_seconds", "logging.flush_interval_seconds", "metrics.system_sample_seconds"]
)
def test_an_interval_longer_than_a_thread_can_wait_is_refused(home: Path, key: str) -> None:
    code, _, err = invoke(home, "configure", key, "1e12", "--yes")
    assert code == 2 and f"key '{key}': Input should be less than or equal to" in err, err
    code, _, err = invoke(home, "configure", "heartbeat.interval_minutes", "1e12", "--yes")
    assert code == 2 and "key 'heartbeat.interval_minutes': Input should be less than or equal to" in err, err


@pytest.mark.parametrize("every", ["nan", "inf", "1e12"])
def test_pulse_every_refuses_nan_and_endless_intervals(home: Path, every: str) -> None:
    result = runner.invoke(app, ["--home", str(home), "pulse", "--every", every], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "Invalid value for '--every'" in result.stderr, result.stderr


def test_json_input_with_a_number_too_long_to_read_is_bad_input(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "rows.json"
    data.write_text(f'[{{"a": {TOO_MANY_DIGITS}}}]')
    message = f"a number has {len(TOO_MANY_DIGITS)} digits, more than the {sys.get_int_max_str_digits()}"
    code, _, err = invoke(home, "run", "sum of a", "--input", str(data))
    assert code == 2 and f"{data} is not valid JSON: {message}" in err and "(line 1, column 8)" in err, err
    code, _, err = invoke(home, "route", "sum of a", "--input", "-", input=data.read_text())
    assert code == 2 and "stdin is not valid JSON" in err, err
    code, _, err = invoke(home, "route", "sum of a", "--context", f'{{"n": {TOO_MANY_DIGITS}}}')
    assert code == 2 and f"the task context is not valid JSON: {message}" in err, err


def test_json_text_in_a_text_file_with_a_number_too_long_is_refused_by_the_data_expert(
    home: Path, tmp_path: Path
) -> None:
    data = tmp_path / "rows.txt"
    data.write_text(f'[{{"a": {TOO_MANY_DIGITS}, "b": 1}}]')
    code, out, err = invoke(
        home, "run", "sum of a", "--input", str(data), "--expert", "data-analysis", env={"COLUMNS": "300"}
    )
    assert code == 2 and "the input looks like JSON but is not valid: a number has" in out, (out, err)
    assert "ValueError" not in out


def test_a_config_file_with_a_number_too_long_names_its_line(home: Path) -> None:
    (home / "config.yaml").write_text(f"# limits\ngovernance:\n  max_concurrent_tasks: {TOO_MANY_DIGITS}\n")
    code, _, err = invoke(home, "status")
    assert code == 2 and "is not valid YAML: a number has" in err and "at line 3, column 25" in err, err
    code, _, err = invoke(home, "configure", "routing.top_k", "2", "--yes")
    assert code == 2 and "at line 3, column 25" in err, err


def test_routes_data_with_a_number_too_long_names_the_line(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    long_number = f'{{"text": "hi", "label": "a", "n": {TOO_MANY_DIGITS}}}'
    data.write_text('{"text": "hello there", "label": "a"}\n' + long_number + "\n")
    code, _, err = invoke(home, "routes", "fit", "--data", str(data), "--label-field", "label")
    assert code == 2 and f"{data}:2: not valid JSON: a number has" in err, err


def test_a_journal_line_with_a_number_too_long_is_skipped_as_malformed(home: Path) -> None:
    (home / "research_logs").mkdir()
    good = {"timestamp": "2026-01-01T00:00:00.000000Z", "level": "info", "component": "c", "message": "kept"}
    bad = f'{{"timestamp": "2026-01-01T00:00:01.000000Z", "level": "info", "message": "x", "n": {TOO_MANY_DIGITS}}}'
    (home / "research_logs" / "structured.jsonl").write_text(json.dumps(good) + "\n" + bad + "\n")
    code, out, err = invoke(home, "logs")
    assert code == 0 and out.split()[-1] == "kept" and "skipped 1 malformed line(s)" in err, (out, err)


@pytest.mark.parametrize("name", ["structured.jsonl", "daily.md"])
def test_a_directory_in_place_of_a_journal_file_is_named_without_a_traceback(
    home: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    (home / "research_logs" / name).mkdir(parents=True)
    with caplog.at_level(logging.ERROR):
        code, _, err = invoke(home, "run", "sum of v", "--input", "-", "--json", input='[{"v": 2}]')
    assert code == 0, err
    failures = [record for record in caplog.records if "journal: writing a batch" in record.getMessage()]
    assert failures and all(record.exc_info is None for record in failures)
    assert f"Is a directory: '{home / 'research_logs' / name}'" in failures[0].getMessage()


@pytest.mark.parametrize("follow", [[], ["--follow"]])
def test_logs_names_a_journal_that_is_a_directory(home: Path, follow: list[str]) -> None:
    (home / "research_logs" / "structured.jsonl").mkdir(parents=True)
    code, _, err = invoke(home, "logs", *follow)
    assert code == 6 and "cannot read the journal" in err and "Is a directory" in err, err


def test_a_config_value_beyond_64_bits_is_journaled(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    wide = str(10**22)
    with caplog.at_level(logging.ERROR):
        code, _, err = invoke(home, "configure", "governance.max_concurrent_tasks", wide, "--yes")
    assert code == 0, err
    assert not [record for record in caplog.records if "journal" in record.getMessage()]
    lines = (home / "research_logs" / "structured.jsonl").read_text().splitlines()
    (changed,) = [json.loads(line) for line in lines if '"kind":"config.changed"' in line]
    assert changed["metadata"]["value"] == wide and wide in changed["message"]
