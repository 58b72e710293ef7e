"""``vy-nexus --help``: usage, the root options and every command with its one-line help, in panels like Typer's own
help, drawn with the standard library.

Typer's help renderer (typer.rich_utils) imports rich's Markdown, syntax and traceback support, and laying panels
out with rich costs as much again: more than everything else ``vy-nexus --help`` does. This page needs plain
wrapped text in two panels. Colours go through ``typer.style``; ``typer.echo`` drops them when the output is not
a terminal. A command's own ``--help`` stays Typer's.
"""

from __future__ import annotations

import inspect
import os
import shutil
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from typer._click import Command, Context

Row = tuple[str, str, str]
"""(name, metavar, help): the name and metavar columns never wrap, the help wraps under itself."""


def page_width() -> int:
    """``$TERMINAL_WIDTH`` (as Typer's help), else the terminal's width (``$COLUMNS`` first), else 80."""
    fixed = os.environ.get("TERMINAL_WIDTH", "")
    return int(fixed) if fixed.isdigit() else shutil.get_terminal_size((80, 24)).columns


def _dim(text: str) -> str:
    return typer.style(text, dim=True)


def _panel(title: str, rows: Sequence[Row], width: int) -> list[str]:
    """A rounded box titled ``title``: one row per entry, help wrapped within the box."""
    inner = max(width - 4, 20)  # "│ " ... " │"
    name_width = max(len(name) for name, _, _ in rows)
    metavar_width = max(len(metavar) for _, metavar, _ in rows)
    left = name_width + 1 + (metavar_width + 1 if metavar_width else 0)
    help_width = max(inner - left, 10)
    lines = [_dim("╭─ ") + title + _dim(" " + "─" * max(inner - len(title) - 1, 0) + "╮")]
    for name, metavar, help_text in rows:
        wrapped: list[str] = []
        for paragraph in help_text.split("\n"):
            wrapped.extend(textwrap.wrap(paragraph, help_width) or [""])
        for index, line in enumerate(wrapped):
            if index == 0:
                cells = typer.style(name.ljust(name_width), fg="cyan", bold=True) + " "
                if metavar_width:
                    cells += typer.style(metavar.ljust(metavar_width), fg="yellow", bold=True) + " "
            else:
                cells = " " * left
            padding = " " * (help_width - len(line))
            lines.append(_dim("│ ") + cells + line + padding + _dim(" │"))
    lines.append(_dim("╰" + "─" * (inner + 2) + "╯"))
    return lines


def _option_rows(command: Command, ctx: Context) -> list[Row]:
    rows: list[Row] = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        is_flag = getattr(param, "is_flag", False) or getattr(param, "count", False)
        metavar = "" if is_flag else param.make_metavar(ctx=ctx)
        help_text = " ".join((getattr(param, "help", None) or "").split())
        if getattr(param, "show_envvar", False) and isinstance(param.envvar, str):
            help_text += f"\n[env var: {param.envvar}]"
        rows.append((",".join(param.opts), metavar, help_text))
    return rows


def group_help(group: Command, ctx: Context, commands: Sequence[tuple[str, str]], width: int) -> str:
    """Usage, the group's help text, its options, then ``commands`` as (name, one-line help)."""
    usage = group.get_usage(ctx).removeprefix("Usage: ")
    lines = ["", " " + typer.style("Usage: ", fg="yellow") + typer.style(usage, bold=True), ""]
    if group.help:
        first_paragraph = " ".join(inspect.cleandoc(group.help).split("\n\n")[0].split())
        lines.extend(" " + line for line in textwrap.wrap(first_paragraph, max(width - 2, 20)))
        lines.append("")
    options = _option_rows(group, ctx)
    if options:
        lines.extend(_panel("Options", options, width))
    if commands:
        lines.extend(_panel("Commands", [(name, "", help_text) for name, help_text in commands], width))
    return "\n".join(lines)


def print_group_help(group: Command, ctx: Context, commands: Sequence[tuple[str, str]]) -> None:
    typer.echo(group_help(group, ctx, commands, page_width()))
