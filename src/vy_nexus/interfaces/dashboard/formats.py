"""How the pages print numbers and times (Jinja2 filters). ``None`` (no data) prints as a dash."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

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


def compact(value: Any) -> str:
    """JSON on one line, as the user sent it (escaped for HTML by the template, like any text)."""
    return json.dumps(value, ensure_ascii=False, default=str)


FILTERS: dict[str, Callable[..., str]] = {
    "compact": compact,
    "duration": duration,
    "percent": percent,
    "ms": ms,
    "clock": clock,
    "moment": moment,
    "pretty": pretty,
}
