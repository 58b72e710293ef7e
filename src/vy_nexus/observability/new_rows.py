"""Which rows of an append-only table a reader has not seen yet, by the table's growing integer id.

"Every id above the last one I read" is not enough on PostgreSQL: ids come from a sequence when a row is inserted,
but transactions commit in any order, so a batch holding ids 100-199 may become visible after one holding 200-299
was read. ``NewRows`` reads up to a bound (the largest id when the read starts), remembers the ids below it that
were missing as gaps, and looks in those gaps again on the next reads until they fill or ``horizon_seconds`` pass
(ids of a rolled-back batch never appear). On SQLite, where writers take turns, gaps stay empty.

A table whose largest id went down was emptied (retention, then SQLite reuses ids from 1): reading starts over.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa

MAX_GAPS = 256


class NewRows:
    def __init__(self, *, horizon_seconds: float = 120.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.horizon_seconds = horizon_seconds
        self._clock = clock
        self.seen = 0
        """Every id at or below this was read, or is a gap."""
        self._gaps: list[tuple[int, int, float]] = []
        """(first id, last id, since when) of ranges below ``seen`` that held no row when read."""
        self._bound = 0

    def skip_to(self, largest: int) -> None:
        """Treat everything up to ``largest`` as read (a reader that starts now)."""
        self.seen, self._gaps, self._bound = largest, [], largest

    def where(self, id_column: sa.ColumnElement[Any], largest: int) -> sa.ColumnElement[bool]:
        """The condition for the next read, given the table's largest id now."""
        if largest < self.seen:
            self.seen, self._gaps = 0, []
        self._bound = largest
        now = self._clock()
        self._gaps = [gap for gap in self._gaps if now - gap[2] < self.horizon_seconds]
        conditions = [sa.and_(id_column > self.seen, id_column <= largest)]
        conditions += [id_column.between(first, last) for first, last, _ in self._gaps]
        return sa.or_(*conditions)

    def saw(self, ids: Iterable[int]) -> None:
        """The ids the read returned; what is missing below the bound becomes a gap."""
        now = self._clock()
        found = sorted(ids)
        gaps: list[tuple[int, int, float]] = []
        for first, last, since in self._gaps:
            inside = [i for i in found if first <= i <= last]
            gaps.extend((a, b, since) for a, b in _holes(first, last, inside))
        fresh = [i for i in found if self.seen < i <= self._bound]
        gaps.extend((a, b, now) for a, b in _holes(self.seen + 1, self._bound, fresh))
        self._gaps = sorted(gaps)[-MAX_GAPS:]
        self.seen = max(self.seen, self._bound)


def _holes(first: int, last: int, present: list[int]) -> list[tuple[int, int]]:
    """The ranges of ``first..last`` that ``present`` (sorted) leaves out."""
    holes: list[tuple[int, int]] = []
    cursor = first
    for value in present:
        if value > cursor:
            holes.append((cursor, value - 1))
        cursor = max(cursor, value + 1)
    if cursor <= last:
        holes.append((cursor, last))
    return holes
