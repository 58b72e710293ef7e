"""What every CLI command shares: the home directory, building the system, printing, error mapping."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from vy_nexus.errors import VyNexusError
from vy_nexus.interfaces.cli.cli_state import state

__all__ = ["console", "err_console", "handle_errors", "print_json", "state"]

P = ParamSpec("P")
R = TypeVar("R")

# Markup off: every string printed is shown literally (user text such as "[/]" or "notes[draft].txt" included);
# styling is explicit, with Text objects.
console = Console(markup=False, emoji=False)
err_console = Console(stderr=True, markup=False, emoji=False)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn vy-nexus errors into a one-line message on stderr and the error's exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except VyNexusError as exc:
            err_console.print(Text.assemble(("error:", "bold red"), " ", str(exc)), soft_wrap=True)
            raise typer.Exit(exc.exit_code) from exc

    return wrapper


def print_json(data: Any) -> None:
    """Machine-readable output: plain JSON on stdout, no colour, no wrapping."""
    typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
