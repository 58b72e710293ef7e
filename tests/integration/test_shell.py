"""``vy-nexus shell``: lines typed at ``moie-os>`` run the same commands; history and completion come from
prompt_toolkit. Driven through prompt_toolkit's pipe input here, and in a real pseudo-terminal (pexpect, slow)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import typer
from prompt_toolkit.application import create_app_session
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from vy_nexus.interfaces.cli import app
from vy_nexus.interfaces.shell import Shell


def drive(home: Path, text: str, capsys: pytest.CaptureFixture[str], *, close: bool = False) -> str:
    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        pipe.send_text(text)
        if close:
            pipe.close()
        history = home / "cache" / "shell_history"
        Shell(typer.main.get_command(app), ["--home", str(home)], history_file=history).run()
    return capsys.readouterr().out


def test_typed_commands_run_and_answer(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = drive(home, 'help\nroute "fix the bug in this python function" --json\nbogus\n"unclosed\nexit\n', capsys)
    assert "query tasks | experts | metrics" in out
    assert '"expert_ids": [\n    "code"\n  ]' in out
    assert "error: No such command 'bogus'" in out
    assert "error: No closing quotation" in out
    assert (home / "cache" / "shell_history").read_text(encoding="utf-8").count("+route") == 1


def test_end_of_input_leaves_the_shell(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = drive(home, "query experts --json\n", capsys, close=True)  # the input ends, as with Ctrl-D
    assert '"id": "data-analysis"' in out


def test_completion_offers_the_seed_commands() -> None:
    shell = Shell(typer.main.get_command(app), history_file=None)
    completer = shell.session.completer
    assert completer is not None
    words = {c.text for c in completer.get_completions(Document("st"), None)}  # type: ignore[arg-type]
    assert words == {"status", "start", "stop"}
    nested = {c.text for c in completer.get_completions(Document("query "), None)}  # type: ignore[arg-type]
    assert nested == {"tasks", "experts", "metrics"}


@pytest.mark.slow
def test_the_shell_in_a_pseudo_terminal(home: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    env = {**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm"}  # pexpect answers no cursor queries
    args = ["-m", "vy_nexus.interfaces.cli", "--home", str(home), "shell"]
    child = pexpect.spawn(sys.executable, args, env=env, encoding="utf-8", timeout=60, dimensions=(40, 120))
    try:
        child.expect("moie-os>")
        child.sendline("experts --json")
        child.expect('"id": "writing"')
        child.expect("moie-os>")
        child.sendline("query tasks")
        child.expect("no tasks match")
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
