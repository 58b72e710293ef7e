"""How the pages print numbers and times (Jinja2 filters). ``None`` (no data) prints as a dash."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from vy_nexus.interfaces.output_view import ANSWER_KEYS, cell_text, columns, numeric, records, view

DASH = "—"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{seconds:.0f}s"


def percent(value: float | None) -> str:
    return DASH if value is None else f"{value * 100:.1f}%"


def ms(value: float | None) -> str:
    if value is None:
        return DASH
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.1f} ms"


def clock(epoch: float | None) -> str:
    if epoch is None:
        return DASH
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def moment(iso: str | None) -> str:
    """An ISO 8601 time (a task's deadline) as ``clock`` prints times: local, to the second. Text that does not
    parse is shown as it is."""
    if not iso:
        return DASH
    try:
        parsed = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return str(iso)
    return clock(parsed.timestamp())


def pretty(value: Any) -> str:
    """Text as it is; anything else as indented JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


HEADLINE_KEYS = (*ANSWER_KEYS, "summary")
"""An output's fields that hold its answer in words, first found first: the answer, the text written, the review of
code, else the summary line (shown beside it otherwise)."""


def headline(value: Any) -> str:
    """An output's answer as text: a string as it is, a mapping's first text field in ``HEADLINE_KEYS``, anything
    else as indented JSON."""
    if isinstance(value, dict):
        for key in HEADLINE_KEYS:
            if isinstance(value.get(key), str):
                return str(value[key])
    return pretty(value)


def rest(value: Any) -> dict[str, Any]:
    """A mapping output's other fields (what ``headline`` did not show); empty for anything else."""
    if not isinstance(value, dict):
        return {}
    shown = next((key for key in HEADLINE_KEYS if isinstance(value.get(key), str)), None)
    return {key: item for key, item in value.items() if key != shown} if shown is not None else {}


def result_table(value: Any) -> tuple[list[str], list[list[Any]]] | None:
    """(columns, rows) of a mapping output's ``result`` rows (the data expert's answer), shown as a table; ``None``
    when it has none."""
    rows = records(value.get("result")) if isinstance(value, dict) else []
    if not rows:
        return None
    names = columns(rows)
    return names, [[row.get(column) for column in names] for row in rows]


def numeric_columns(rows: list[dict[str, Any]]) -> list[str]:
    """The columns of ``rows`` that hold numbers only: right-aligned, like figures in a report."""
    return [name for name in columns(rows) if numeric(rows, name)]


def marked(text: str, terms: Sequence[str]) -> list[tuple[str, bool]]:
    """``text`` cut into (piece, is one of ``terms``) pieces, a term matched as a whole word in any case: the page
    marks the terms an answer asserts that its source lacks where the answer says them."""
    wanted = sorted({term for term in terms if term.strip()}, key=len, reverse=True)
    if not wanted:
        return [(text, False)]
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, wanted)) + r")(?!\w)", re.IGNORECASE)
    pieces: list[tuple[str, bool]] = []
    start = 0
    for match in pattern.finditer(text):
        pieces.extend([(text[start : match.start()], False), (match.group(0), True)])
        start = match.end()
    pieces.append((text[start:], False))
    return [piece for piece in pieces if piece[0]]


def compact(value: Any) -> str:
    """JSON on one line, as the user sent it (escaped for HTML by the template, like any text)."""
    return json.dumps(value, ensure_ascii=False, default=str)


FILTERS: dict[str, Callable[..., Any]] = {
    "compact": compact,
    "headline": headline,
    "rest": rest,
    "result_table": result_table,
    "cell": cell_text,
    "columns": columns,
    "numeric_columns": numeric_columns,
    "marked": marked,
    "view": view,
    "duration": duration,
    "percent": percent,
    "ms": ms,
    "clock": clock,
    "moment": moment,
    "pretty": pretty,
}
