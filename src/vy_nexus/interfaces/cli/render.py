"""Human-readable rendering of results for ``vy-nexus run``: headline, text sections, tables, then the rest.

Laid out for an 80-column terminal first: a dict of dicts (per-column statistics) is one line per key with
``name=value`` pairs that wrap between pairs, never inside a number; numeric table columns never wrap."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.pretty import Pretty
from rich.table import Table
from rich.text import Text

HEADLINE_KEYS = ("summary", "answer")
HIDDEN_KEYS = frozenset({"reasoning"})
"""Shown elsewhere: the backend that answered is printed under the result."""
LONG_TEXT = 80


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if _scalar(value):
        return "" if value is None else str(value)
    if isinstance(value, list) and all(_scalar(item) for item in value):
        return ", ".join(_cell(item) for item in value)
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return ", ".join(":".join(_cell(v) for v in item.values()) for item in value)
    if isinstance(value, dict) and all(_scalar(v) or isinstance(v, list) for v in value.values()):
        return "  ".join(f"{k}={_cell(v) or '-'}" for k, v in value.items())
    if isinstance(value, list | dict):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)  # what JSON has no type for (a set, bytes, a datetime): as Python shows it


def _numeric(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def rows_table(title: str, rows: list[dict[str, Any]]) -> Table:
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    table = Table(title=title, header_style="bold", title_justify="left")
    for column in columns:
        numbers = all(_numeric(row.get(column)) for row in rows)
        table.add_column(column, overflow="fold", no_wrap=numbers, justify="right" if numbers else "left")
    for row in rows:
        table.add_row(*(Text(_cell(row.get(column))) for column in columns))
    return table


def mapping_table(title: str, mapping: dict[str, dict[str, Any]]) -> Table:
    """A dict of dicts (e.g. per-column statistics) as one row per key: ``name=value`` pairs, wrapped between
    pairs (a pair holds no space, so a line break never falls inside one)."""
    table = Table(title=title, show_header=False, box=None, title_justify="left", pad_edge=False)
    table.add_column(style="bold", overflow="fold")
    table.add_column(overflow="fold", ratio=1)
    for key, value in mapping.items():
        pairs = [f"{k}={_cell(v).replace(', ', ',').replace(' ', '_')}" for k, v in value.items() if v is not None]
        table.add_row(Text(key), Text("  ".join(pairs)))
    return table


def details_table(items: Iterable[tuple[str, Any]]) -> Table | None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    count = 0
    for key, value in items:
        table.add_row(Text(key), Text(_cell(value)))
        count += 1
    return table if count else None


def render_output(output: Any, streamed: Iterable[str] = ()) -> RenderableType:
    """``streamed`` holds texts already shown live (LLM tokens); they are not printed twice."""
    already_shown = {text.strip() for text in streamed if text.strip()}
    if isinstance(output, str):
        return Text("(streamed above)", style="dim") if output.strip() in already_shown else Text(output)
    if not isinstance(output, dict):
        if isinstance(output, list) and output and all(isinstance(row, dict) for row in output):
            return rows_table("result", output)
        return Pretty(output)
    parts: list[RenderableType] = []
    for key in HEADLINE_KEYS:
        value = output.get(key)
        if isinstance(value, str):
            shown = value.strip() in already_shown
            parts.append(Text("(streamed above)", style="dim") if shown else Text(value, style="bold"))
            break
    details: list[tuple[str, Any]] = []
    # The direct answer to the question ("result") comes before supporting detail.
    ordered = sorted(output.items(), key=lambda item: item[0] != "result")
    for key, value in ordered:
        if key in HIDDEN_KEYS or (key in HEADLINE_KEYS and isinstance(value, str)):
            continue
        if isinstance(value, str) and (len(value) > LONG_TEXT or "\n" in value):
            # Also a part of a streamed answer: the code block the code expert took out of the answer it streamed.
            if value.strip() in already_shown or any(value.strip() in text for text in already_shown):
                parts.append(Text(f"{key}: (streamed above)", style="dim"))
            else:
                parts.append(Panel(Text(value), title=key, title_align="left", expand=False))
        elif isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
            parts.append(rows_table(key, value))
        elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            if all(all(_scalar(x) or isinstance(x, list) for x in v.values()) for v in value.values()):
                parts.append(mapping_table(key, value))
            else:
                parts.append(Panel(Pretty(value), title=key, title_align="left", expand=False))
        else:
            details.append((key, value))
    table = details_table(details)
    if table is not None:
        parts.append(table)
    return Group(*parts)
