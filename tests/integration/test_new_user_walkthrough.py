"""A new user's first hour, as README.md and docs/experts.md tell it: what they type, copied the way they would copy
it (options where people put them, the commands vy-nexus itself prints as "next:"), works or says what to do."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from vy_nexus.experts.loader import load_module_from_file
from vy_nexus.interfaces.cli import app
from vy_nexus.interfaces.shell import Shell
from vy_nexus.tasks import Task


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "example"),
    [
        (["run", "hello", "--server", "http://127.0.0.1:8000"], "vy-nexus --server URL run ..."),
        (["tasks", "list", "--server=http://127.0.0.1:8000"], "vy-nexus --server URL tasks list ..."),
        (["status", "--home", "/tmp/elsewhere"], "vy-nexus --home DIR status ..."),
    ],
)
def test_a_global_option_after_the_command_says_it_goes_before(args: list[str], example: str) -> None:
    code, _, err = cli(*args)
    message = " ".join(err.replace("│", " ").split())
    assert code == 2
    assert f"is a global option: put it before the command, as in `{example}`" in message
    assert "Possible options" not in message  # click's guesses named the command's own options


def test_an_unknown_option_of_the_command_itself_gets_no_global_hint() -> None:
    code, _, err = cli("run", "hello", "--bogus")
    assert code == 2
    assert "No such option: --bogus" in err and "global option" not in err


def test_the_shell_says_where_a_global_option_goes(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shell = Shell(typer.main.get_command(app), ["--home", str(home)], history_file=None)
    assert shell.execute("tasks list --server http://127.0.0.1:8000")
    out = capsys.readouterr().out
    assert "--server is a global option: put it before the command" in out


def create_expert_in(home: Path) -> str:
    code, out, err = cli("--home", str(home), "create-expert", "--name", "InvoiceChecker", "--capabilities", "invoice")
    assert code == 0, err
    return out


def next_steps(out: str) -> list[list[str]]:
    lines = out.split("next:\n", 1)[1].splitlines()
    return [shlex.split(line, comments=True) for line in lines if line.startswith("  ")]


def test_the_next_hint_names_this_interpreter_and_this_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user who runs `.venv/bin/vy-nexus --home "my home" create-expert ...` without activating the venv: a bare
    `python` is another interpreter (without vy-nexus), and a bare `vy-nexus route` reads another home."""
    home = tmp_path / "my home"
    monkeypatch.delenv("VY_NEXUS_HOME")
    monkeypatch.setattr("shutil.which", lambda name, *a, **k: "/usr/bin/python" if name == "python" else None)
    pytest_step, route_step = next_steps(create_expert_in(home))
    test_file = home.resolve() / "experts" / "tests" / "test_invoice_checker.py"
    assert pytest_step == [sys.executable, "-m", "pytest", str(test_file)]
    assert route_step[:3] == ["vy-nexus", "--home", str(home.resolve())]

    code, out, err = cli(*route_step[1:], "--json")  # the hint, as copied into a shell with no $VY_NEXUS_HOME
    assert code == 0, err
    assert '"invoice-checker"' in out.split('"expert_ids"', 1)[1].split("]", 1)[0]


def test_the_next_hint_keeps_python_when_it_is_this_interpreter(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An activated venv (the README's `. .venv/bin/activate`), and a home from $VY_NEXUS_HOME: the short forms."""
    monkeypatch.setenv("VY_NEXUS_HOME", str(home))
    monkeypatch.setattr("shutil.which", lambda name, *a, **k: sys.executable if name == "python" else None)
    code, out, err = cli("create-expert", "--name", "InvoiceChecker", "--capabilities", "invoice")
    assert code == 0, err
    pytest_step, route_step = next_steps(out)
    assert pytest_step[:3] == ["python", "-m", "pytest"]
    assert route_step == ["vy-nexus", "route", "Work on this invoice"]


def test_the_next_hint_says_to_install_pytest_when_it_is_missing(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """vy-nexus installed with pip (no dev extra): the generated tests need pytest, which is not there."""
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pytest" else find_spec(name, *a))
    steps = next_steps(create_expert_in(home))
    assert steps[0][1:5] == ["-m", "pip", "install", "pytest"]
    assert steps[1][1:3] == ["-m", "pytest"]


@pytest.mark.parametrize(
    ("payload", "received"),
    [
        (None, "received no input;"),
        ("some text", "received a text input;"),
        ({"total": 3}, "received an object input;"),
        ([1, 2], "received a list input;"),
    ],
)
def test_the_generated_expert_names_its_input_in_plain_english(home: Path, payload: object, received: str) -> None:
    create_expert_in(home)
    module = load_module_from_file(home / "experts" / "invoice_checker.py")
    expert = module.InvoiceCheckerExpert()
    profile = module.profile_input(payload)
    summary = expert.analyse(Task(description="check this invoice", input=payload), ["invoice"], profile)["summary"]
    assert summary == f"Invoice Checker {received} the task mentions invoice."
