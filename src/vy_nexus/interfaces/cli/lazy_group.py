"""The root command group: it knows its commands from catalog.py and imports a command's module only when that
command runs (or its own ``--help`` is asked for).

``vy-nexus --version`` and ``vy-nexus --help`` therefore import no command module at all, and ``vy-nexus route``
imports core_commands only. Each module keeps its ``register(app)``; the group calls it on a Typer app of its own
the first time it needs one of that module's commands.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from vy_nexus.interfaces.cli.catalog import BY_NAME, COMMANDS

if TYPE_CHECKING:
    from collections.abc import MutableMapping

    from typer._click import Command, Context, HelpFormatter


def module_commands(module: str) -> MutableMapping[str, Command]:
    """The click commands ``module.register`` defines, by name."""
    holder = typer.Typer()
    importlib.import_module(module).register(holder)
    commands = typer.main.get_group(holder).commands
    for command in commands.values():
        reflow_help(command)
    return commands


def reflow_help(command: Command) -> None:
    """Join the lines of each help paragraph (and of its subcommands'), so the terminal wraps them: Typer keeps the
    line breaks of a docstring's later paragraphs, which at 80 columns cut lines in two."""
    if command.help:
        paragraphs = inspect.cleandoc(command.help).split("\n\n")
        command.help = "\n\n".join(p if p.startswith("\b") else " ".join(p.split("\n")) for p in paragraphs)
    for sub in getattr(command, "commands", {}).values():
        reflow_help(sub)


class LazyGroup(TyperGroup):
    """A TyperGroup whose commands are listed from the catalog and loaded module by module on first use."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._loaded: dict[str, MutableMapping[str, Command]] = {}

    def list_commands(self, ctx: Context) -> list[str]:
        return list(BY_NAME)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        entry = BY_NAME.get(cmd_name)
        if entry is None:
            return None
        if entry.module not in self._loaded:
            self._loaded[entry.module] = module_commands(entry.module)
        return self._loaded[entry.module].get(cmd_name)

    def resolve_command(self, ctx: Context, args: list[str]) -> tuple[str | None, Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and not ctx.resilient_parsing and self.get_command(ctx, name) is None:
            matches = difflib.get_close_matches(name, self.list_commands(ctx))
            hint = f" Did you mean {', '.join(repr(match) for match in matches)}?" if matches else ""
            ctx.fail(f"No such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except typer.TyperException as exc:  # click's NoSuchOption, told by its fields (click's module is private)
            if isinstance(getattr(exc, "option_name", None), str) and hasattr(exc, "possibilities"):
                exc.message += global_option_hint(self, exc)
            raise

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        from vy_nexus.interfaces.cli.help_page import print_group_help

        print_group_help(self, ctx, [(entry.name, entry.help) for entry in COMMANDS])


VALUE_PLACEHOLDERS = {"server": "URL", "home": "DIR"}
"""How the hint below writes a global option's value."""


def global_option_hint(group: TyperGroup, exc: Any) -> str:
    """What to add when a command was given one of ``group``'s own options that take a value (``--server URL``,
    ``--home DIR``): they are global options and go before the command, which the bare "No such option" does not
    tell. Clears click's guesses, which name the command's options instead."""
    for param in group.params:
        if exc.option_name in param.opts and not getattr(param, "is_flag", False):
            value = VALUE_PLACEHOLDERS.get(param.name or "", (param.name or "value").upper())
            command = exc.ctx.command_path.split(" ", 1)[-1] if exc.ctx is not None else "COMMAND"
            exc.possibilities = None
            example = f"vy-nexus {exc.option_name} {value} {command} ..."
            return f" ({exc.option_name} is a global option: put it before the command, as in `{example}`)"
    return ""
