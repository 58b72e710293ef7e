"""Regressions from trying vy-nexus as a new user and as an adversary (issue 16): hostile or broken input at the
command line gives a clear message and the right exit code, never a traceback; user text is printed literally."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from vy_nexus.interfaces.cli import app

runner = CliRunner()


def invoke(home: Path, *args: str, input: str | bytes | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--home", str(home), *args], input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_a_stale_malformed_stop_file_does_not_break_run(home: Path) -> None:
    (home / "STOP").write_bytes(b"\xff\xfe")
    code, _, err = invoke(home, "run", "sum this data", "--input", "-", "--json", input='[{"v": 2}]')
    assert code == 0, err
    assert not (home / "STOP").exists()
