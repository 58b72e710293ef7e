"""Time stamps as the journal writes them, and the ``--since``/``--until``/``--deadline`` forms users type.

Journal time stamps are ISO 8601 UTC with a fixed width (``2026-11-25T05:21:27.123456Z``), so two of them compare
correctly as plain strings; the log query relies on that to filter without parsing every line.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from vy_nexus.errors import ConfigError

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def iso_utc(timestamp: float) -> str:
    """``2026-11-25T05:21:27.123456Z`` for a Unix time stamp (always 27 characters)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str, *, now: float | None = None) -> float:
    """A Unix time stamp from ``1h``/``30m``/``2d``/``45s``/``1w`` (that long ago) or an ISO 8601 date/time.

    ISO values without a zone are taken as UTC. Raises ``ConfigError`` naming the value when it is neither.
    """
    current = time.time() if now is None else now
    match = _RELATIVE.match(text)
    if match:
        moment = current - float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        try:
            datetime.fromtimestamp(moment, UTC)  # the journal's time stamps must be able to express it
        except (OverflowError, OSError, ValueError):
            raise ConfigError(f"the time {text!r} is too far back: use a shorter duration or an ISO time") from None
        return moment
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"cannot read the time {text!r}: use a duration such as 30m, 1h, 2d or an ISO time such as 2026-11-25T05:00"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def parse_deadline(text: str, *, now: float | None = None) -> datetime:
    """A deadline from ``30s``/``5m``/``2h`` (that long from now) or an ISO 8601 date/time (UTC without a zone)."""
    current = time.time() if now is None else now
    match = _RELATIVE.match(text)
    try:
        if match:
            seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
            return datetime.fromtimestamp(current + seconds, UTC)
        parsed = datetime.fromisoformat(text.strip())
    except (OverflowError, OSError, ValueError):
        raise ConfigError(
            f"cannot read the deadline {text!r}: use a duration from now such as 30s, 5m, 2h"
            " or an ISO time such as 2026-11-25T05:00"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def utc_day(timestamp: float) -> str:
    """``2026-11-25``: the UTC calendar day of a time stamp."""
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))
