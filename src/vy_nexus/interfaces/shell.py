"""``vy-nexus shell``: an interactive shell (prompt ``moie-os>``) over the same commands, with history (kept in the
home) and tab completion, on prompt_toolkit. Each line is one ``vy-nexus`` command run in this process, so the shell
holds no logic of its own: ``run ...``, ``status``, ``query tasks``, ``start``, ``stop --yes``, ``help``, ``exit``."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import typer
from prompt_toolkit import PromptSession
from prompt_toolkit.completion import NestedCompleter
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output

PROMPT = "moie-os> "
EXIT_WORDS = frozenset({"exit", "quit"})

COMMANDS: dict[str, str] = {
    "status": "the system (or, with --server, the server) and whether a background server runs",
    "start": "start the API server in the background",
    "stop": "the kill switch: stop every running vy-nexus of this home (needs --yes or an approval)",
    "configure": "read or change a config key: configure KEY [VALUE --yes]",
    "query": "query tasks | experts | metrics",
    "experts": "the registered experts",
    "route": 'the routing decision for a task: route "TEXT"',
    "run": 'run a task: run "TEXT" [--input FILE]',
    "tasks": "tasks list | show ID | cancel ID",
    "approvals": "approvals list | approve ID | deny ID",
    "help": "this list; `COMMAND --help` for a command's options",
    "exit": "leave the shell (also: quit, Ctrl-D)",
}

_COMPLETIONS: dict[str, object] = {
    **{name: None for name in COMMANDS},
    "query": {"tasks": None, "experts": None, "metrics": None},
    "tasks": {"list": None, "show": None, "cancel": None},
    "approvals": {"list": None, "approve": None, "deny": None},
}


class Command(Protocol):
    """The Typer app as a click-style command (``typer.main.get_command(app)``)."""

    def main(
        self, args: Sequence[str] | None = ..., prog_name: str | None = ..., *, standalone_mode: bool = ...
    ) -> Any: ...


def help_text() -> str:
    width = max(len(name) for name in COMMANDS)
    return "\n".join(f"  {name.ljust(width)}  {meaning}" for name, meaning in COMMANDS.items())


class Shell:
    """Reads lines, runs each as a command of ``command`` (the Typer app's click group) with ``global_args``."""

    def __init__(
        self,
        command: Command,
        global_args: Sequence[str] = (),
        *,
        history_file: Path | None = None,
        input: Input | None = None,
        output: Output | None = None,
        echo: Callable[[str], None] = typer.echo,
    ) -> None:
        self.command = command
        self.global_args = list(global_args)
        self.echo = echo
        history: History = InMemoryHistory()
        if history_file is not None:
            history_file.parent.mkdir(parents=True, exist_ok=True)
            history = FileHistory(str(history_file))
        self.session: PromptSession[str] = PromptSession(
            history=history,
            completer=NestedCompleter.from_nested_dict(_COMPLETIONS),
            input=input,
            output=output,
        )

    def run(self) -> None:
        self.echo("vy-nexus shell: type help for the commands, exit to leave.")
        while True:
            try:
                line = self.session.prompt(PROMPT)
            except KeyboardInterrupt:
                continue
            except EOFError:
                return
            if not self.execute(line):
                return

    def execute(self, line: str) -> bool:
        """Run one line; ``False`` when the shell should end."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            self.echo(f"error: {exc}")
            return True
        if not words:
            return True
        if words[0] in EXIT_WORDS:
            return False
        if words[0] == "help":
            self.echo(help_text())
            return True
        if words[0] == "shell":
            self.echo("already in the shell")
            return True
        try:
            self.command.main([*self.global_args, *words], prog_name="vy-nexus", standalone_mode=False)
        except typer.Exit:
            pass
        except typer.Abort:
            self.echo("aborted")
        except typer.TyperException as exc:  # usage errors: an unknown command or option, a missing argument
            self.echo(f"error: {exc.format_message()}")
        return True
