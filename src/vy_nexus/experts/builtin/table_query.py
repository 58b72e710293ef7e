"""Filters, group-by and aggregates over a table, computed exactly (``Decimal``): the ``Query`` model, its spec and
its execution. ``table_question.py`` reads a ``Query`` from plain words; a spec (task context ``query`` or payload
``query``) says the same explicitly::

    {"filters": [["region", "=", "north"]], "group_by": ["category", "month"], "aggregates": [["mean", "price"]],
     "order": "desc", "limit": 3}

(``group_by`` may also be one column name; ``sort_by`` sorts by a group column instead of the first aggregate.) A
yes/no column averaged gives the share of yes; an identifier column is counted by its different values, never added
up.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from vy_nexus.errors import TaskError
from vy_nexus.experts.builtin.tabular import (
    Row,
    Table,
    as_number,
    is_missing,
    numbers_of,
    to_decimal,
    to_moment,
)

AGGREGATES = ("count", "distinct", "share", "sum", "mean", "median", "min", "max", "stdev")
OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "contains")


@dataclass(frozen=True, slots=True)
class Filter:
    column: str
    op: str
    value: Any

    def matches(self, row: Row) -> bool:
        cell = row.get(self.column)
        left, right = to_decimal(cell), to_decimal(self.value)
        if self.op == "contains":
            return str(self.value).lower() in str(cell if cell is not None else "").lower()
        if left is not None and right is not None:
            return _compare(left, right, self.op)
        when, than = to_moment(cell), to_moment(self.value)
        if when is not None and than is not None:  # "date >= 2026-02-01": as dates, not as text
            return _compare(when, than, self.op)
        if self.op in ("=", "!="):
            equal = str(cell if cell is not None else "").strip().lower() == str(self.value).strip().lower()
            return equal if self.op == "=" else not equal
        return False  # ordering between text and a number: no match

    def as_list(self) -> list[Any]:
        return [self.column, self.op, self.value]

    @property
    def orders_text(self) -> bool:
        """An ordering (``>``, ``<=``...) against a value that is neither a number nor a date: no cell can match."""
        ordering = self.op not in ("=", "!=", "contains")
        return ordering and to_decimal(self.value) is None and to_moment(self.value) is None


def _compare(left: Any, right: Any, op: str) -> bool:
    checks: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
    }
    return checks[op](left, right)


@dataclass(frozen=True, slots=True)
class Query:
    filters: list[Filter] = field(default_factory=list)
    group_by: list[str] = field(default_factory=list)
    aggregates: list[tuple[str, str | None]] = field(default_factory=list)
    order: str | None = None
    """``desc``/``asc``: rank the groups by the first aggregate ("which product has the highest total qty")."""
    unknown: list[str] = field(default_factory=list)
    """Names the question uses as columns that the table does not have; such a query must not be answered."""
    not_numeric: list[str] = field(default_factory=list)
    """Columns the question aggregates that do not hold numbers."""
    limit: int | None = None
    """Keep the first ``limit`` groups once ranked ("top 3 regions by units")."""
    unclear: list[str] = field(default_factory=list)
    """What the question asks that the query leaves out ("in 2026", "north and south"): answering the query alone
    would answer another question."""
    not_quantities: list[str] = field(default_factory=list)
    """Identifier columns the question averages (or takes the median or deviation of): labels, not quantities."""
    notes: list[str] = field(default_factory=list)
    """How words were read where they may mean more than one thing ("'orders' counted as the different values of
    identifier column 'order'"): the answer says so."""
    sort_by: str | None = None
    """Sort the result rows by this group column (or, when rows are listed, this column) in ``order``, instead of
    ranking them by the first aggregate ("list orders sorted by amount")."""

    @property
    def empty(self) -> bool:
        return not (self.filters or self.group_by or self.aggregates or self.sort_by)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "filters": [f.as_list() for f in self.filters],
            "group_by": list(self.group_by),
            "aggregates": [[func, column] for func, column in self.aggregates],
        }
        if self.order is not None:
            data["order"] = self.order
        if self.limit is not None:
            data["limit"] = self.limit
        if self.sort_by is not None:
            data["sort_by"] = self.sort_by
        return data


def numeric_columns(table: Table) -> list[str]:
    """Columns whose every value is a number or missing (blank, ``n/a``...), with at least one number."""
    return [c for c in table.columns if numbers_of([row.get(c) for row in table.rows]) is not None]


FLAG_AGGREGATES = ("sum", "mean")
"""Aggregates over a yes/no column: how many rows say yes, and their share."""


def flag_notes(aggregates: list[tuple[str, str | None]], table: Table) -> list[str]:
    """What a total or mean of a yes/no column means ("mean(paid) is the share of rows with paid = yes")."""
    notes = []
    for function, column in aggregates:
        if function not in FLAG_AGGREGATES or column is None:
            continue
        spellings = flag_values([row.get(column) for row in table.rows])
        if spellings is None:
            continue
        if function == "mean":
            notes.append(f"mean({column}) is the share of rows with {column} = {spellings[0]}, from 0 to 1")
        else:
            notes.append(f"sum({column}) is the number of rows with {column} = {spellings[0]}")
    return notes


FLAG_WORDS = (("yes", "no"), ("y", "n"), ("true", "false"), ("t", "f"), ("1", "0"))
"""The (true, false) spellings of a yes/no column, compared lower-cased."""


def flag_values(values: list[Any]) -> tuple[str, str] | None:
    """The (true, false) spelling of a yes/no column (``yes``/``no``, ``y``/``n``, ``true``/``false`` or JSON
    booleans, ``1``/``0`` with both present), missing values aside; ``None`` for any other column."""
    seen: set[str] = set()
    for value in values:
        if not is_missing(value):
            seen.add(_flag_word(value))
            if len(seen) > 2:  # a third spelling: no yes/no column, whatever the other rows hold
                return None
    for true, false in FLAG_WORDS:
        if seen and seen <= {true, false} and (true != "1" or len(seen) == 2):
            return true, false
    return None


def _flag_word(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    number = to_decimal(value)
    if number is not None and number in (0, 1):
        return str(int(number))
    return str(value).strip().lower()


def query_from_spec(spec: Any, table: Table) -> Query:
    """A query from an explicit spec, checking every column and operator against the table."""
    if not isinstance(spec, dict):
        raise TaskError("query must be an object with filters, group_by and aggregates")

    def column(name: Any) -> str:
        if name not in table.columns:
            raise TaskError(f"query names unknown column {name!r}; columns: {', '.join(table.columns)}")
        return str(name)

    filters = []
    for item in spec.get("filters", []):
        if not (isinstance(item, list | tuple) and len(item) == 3) or item[1] not in (*OPERATORS, "=="):
            raise TaskError(f"a filter is [column, operator, value] with operator one of {', '.join(OPERATORS)}")
        filters.append(Filter(column(item[0]), "=" if item[1] == "==" else item[1], item[2]))
    grouping = spec.get("group_by", [])
    group_by = [column(name) for name in ([grouping] if isinstance(grouping, str) else grouping)]
    aggregates: list[tuple[str, str | None]] = []
    for item in spec.get("aggregates", []):
        function, target = (item, None) if isinstance(item, str) else (item[0], item[1] if len(item) > 1 else None)
        if function not in AGGREGATES:
            raise TaskError(f"unknown aggregate {function!r}; use one of {', '.join(AGGREGATES)}")
        if function == "distinct" and target is None:
            raise TaskError('the aggregate \'distinct\' counts the values of a column: ["distinct", "<column>"]')
        aggregates.append((function, None if target is None else column(target)))
    order = spec.get("order")
    if order not in (None, "asc", "desc"):
        raise TaskError(f"query order must be 'asc' or 'desc', not {order!r}")
    limit = spec.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise TaskError(f"query limit must be a positive whole number, not {limit!r}")
    sort_by = spec.get("sort_by")
    if sort_by is not None and (column(sort_by) not in group_by and (group_by or aggregates)):
        raise TaskError(f"query sort_by must name a group_by column (or, without aggregates, any column): {sort_by!r}")
    if sort_by is not None and order is None:
        order = "asc"
    return Query(
        filters, group_by, aggregates, order, limit=limit, notes=flag_notes(aggregates, table), sort_by=sort_by
    )


def aggregate(function: str, values: list[Any]) -> int | float | None:
    """One aggregate over a column's values, exactly; ``None`` when it is undefined (no numbers)."""
    present = [v for v in values if v not in (None, "")]
    if function == "count":
        return len(present)
    if function == "distinct":
        return len({_distinct_key(v) for v in present if not is_missing(v)})
    if function == "share":
        raise ValueError("a share is computed against the whole table: run_query computes it")
    numbers = [n for n in (to_decimal(v) for v in present) if n is not None]
    if not numbers:
        return None
    if function == "sum":
        result = sum(numbers, Decimal(0))
    elif function == "mean":
        result = sum(numbers, Decimal(0)) / len(numbers)
    elif function == "median":
        result = statistics.median(numbers)
    elif function == "min":
        result = min(numbers)
    elif function == "max":
        result = max(numbers)
    else:
        result = statistics.stdev(numbers) if len(numbers) > 1 else Decimal(0)
    return as_number(result)


def _share(part: list[Row], whole: list[Row], column: str | None) -> int | float | None:
    """``part``'s total of ``column`` (its row count when ``None``) as per cent of ``whole``'s."""
    if column is None:
        numerator, denominator = Decimal(len(part)), Decimal(len(whole))
    else:
        numerator = sum((n for n in (to_decimal(r.get(column)) for r in part) if n is not None), Decimal(0))
        denominator = sum((n for n in (to_decimal(r.get(column)) for r in whole) if n is not None), Decimal(0))
    if denominator == 0:
        return None
    return as_number(round(numerator * 100 / denominator, 4))


def _distinct_key(value: Any) -> Any:
    """Equal values count once: ``"7"``, ``7`` and ``7.0`` are one number; text is compared as written."""
    number = to_decimal(value)
    if number is not None:
        return number.normalize()
    return value.strip() if isinstance(value, str) else repr(value)


def result_name(function: str, column: str | None) -> str:
    return function if column is None else f"{function}_{column}"


def run_query(table: Table, query: Query) -> tuple[list[Row], int, int]:
    """The query's result rows (sorted by group key, or ranked; at most ``limit``), how many input rows passed the
    filters, and how many groups there were before the limit. Without aggregates or groups, the rows that passed
    the filters. A share is per cent of the whole: of every row when not grouped ("what percentage of units are
    from north"), else of the rows that passed the filters ("share of units by region")."""
    rows = [row for row in table.rows if all(f.matches(row) for f in query.filters)]
    if not query.aggregates and not query.group_by:
        if query.sort_by is not None:
            rows = _sorted_by(rows, query.sort_by, descending=query.order == "desc")
        return rows[: query.limit], len(rows), len(rows)
    whole = rows if query.group_by else table.rows
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(c) for c in query.group_by), []).append(row)
    if not query.group_by:
        groups = {(): rows}
    flags = _flags_aggregated(table, query)
    result = []
    for key in sorted(groups, key=lambda k: tuple(_sort_key(v) for v in k)):
        members = groups[key]
        out: Row = dict(zip(query.group_by, key, strict=True))
        for function, column in query.aggregates:
            if function == "share":
                out[result_name(function, column)] = _share(members, whole, column)
                continue
            values = [1] * len(members) if column is None else [m.get(column) for m in members]
            if column in flags and function in FLAG_AGGREGATES:
                values = [_flag_number(value, flags[column]) for value in values]
            out[result_name(function, column)] = aggregate(function, values)
        result.append(out)
    if query.sort_by is not None:
        result = _sorted_by(result, query.sort_by, descending=query.order == "desc")
    elif query.order is not None and query.aggregates:
        name = result_name(*query.aggregates[0])
        present = [row for row in result if row[name] is not None]
        present.sort(key=lambda row: row[name], reverse=query.order == "desc")  # stable: ties keep group order
        result = present + [row for row in result if row[name] is None]
    return result[: query.limit], len(rows), len(result)


def _sorted_by(rows: list[Row], column: str, *, descending: bool) -> list[Row]:
    """``rows`` sorted by ``column`` (numbers as numbers, dates as dates), missing values last either way."""
    present = [row for row in rows if not is_missing(row.get(column))]
    present.sort(key=lambda row: _sort_key(row.get(column)), reverse=descending)
    return present + [row for row in rows if is_missing(row.get(column))]


def _flags_aggregated(table: Table, query: Query) -> dict[str, tuple[str, str]]:
    """The (true, false) spellings of each yes/no column the query totals or averages."""
    flags = {}
    for function, column in query.aggregates:
        if function in FLAG_AGGREGATES and column is not None:
            spellings = flag_values([row.get(column) for row in table.rows])
            if spellings is not None:
                flags[column] = spellings
    return flags


def _flag_number(value: Any, spellings: tuple[str, str]) -> int | None:
    """1 for a yes/no column's true value, 0 for its false one, ``None`` when missing."""
    if is_missing(value):
        return None
    return 1 if _flag_word(value) == spellings[0] else 0


def _sort_key(value: Any) -> tuple[int, Any]:
    number = to_decimal(value)
    return (0, number) if number is not None else (1, str(value))
