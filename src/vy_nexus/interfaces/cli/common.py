"""What every CLI command shares: the home directory, building the system, printing, error mapping."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from vy_nexus.errors import VyNexusError
from vy_nexus.interfaces.cli.cli_state import state
from vy_nexus.interfaces.cli.next_steps import worded

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
            err_console.print(Text.assemble(("error:", "bold red"), " ", worded(exc)), soft_wrap=True)
            raise typer.Exit(exc.exit_code) from exc

    return wrapper


def print_json(data: Any) -> None:
    """Machine-readable output: plain JSON on stdout, no colour, no wrapping. NaN and infinities (an expert's
    output may hold them) are not JSON, and a strict reader (jq, JavaScript) refuses the whole document: they
    print as null, as the task store keeps them."""
    try:
        text = json.dumps(data, indent=2, default=str, ensure_ascii=False, allow_nan=False)
    except ValueError:
        text = json.dumps(_finite(data, frozenset()), indent=2, default=str, ensure_ascii=False)
    typer.echo(text)


def _finite(value: Any, path: frozenset[int]) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict | list | tuple):
        if id(value) in path:
            return "<circular reference>"
        inner = path | {id(value)}
        if isinstance(value, dict):
            return {key: _finite(item, inner) for key, item in value.items()}
        return [_finite(item, inner) for item in value]
    return value
