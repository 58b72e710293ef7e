"""Filters, group-by and aggregates over a table, computed exactly (``Decimal``), from plain words or a spec.

Plain words: "average price per category where region = north", "total sales by region for year >= 2023",
"how many orders by status", "max price where category is fruit", "which product has the highest total qty"
(groups ranked by their aggregate), "top 3 regions by units" (ranked by the total of a numeric column, three kept),
"how many different products per region" (distinct values). Column names are matched as whole words
(``unit_price`` also as "unit price"; "categories" finds ``category``). A name the question uses as a column that
the table does not have ("average weight", "per category") is reported in ``Query.unknown`` instead of being
dropped or guessed. A yes/no column named as a qualifier filters on its true value ("how many paid orders":
``paid = yes``; "unpaid orders": ``paid = no``). A spec (task context
``query`` or payload ``query``) says the same explicitly::

    {"filters": [["region", "=", "north"]], "group_by": ["category"], "aggregates": [["mean", "price"]],
     "order": "desc", "limit": 3}
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from vy_nexus.errors import TaskError
from vy_nexus.experts.builtin.tabular import Row, Table, as_number, is_missing, numbers_of, to_decimal, to_moment

AGGREGATES = ("count", "distinct", "share", "sum", "mean", "median", "min", "max", "stdev")
OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "contains")
AGGREGATE_WORDS: dict[str, str] = {
    "average": "mean", "avg": "mean", "mean": "mean", "sum": "sum", "total": "sum", "median": "median",
    "min": "min", "minimum": "min", "lowest": "min", "smallest": "min", "max": "max", "maximum": "max",
    "highest": "max", "largest": "max", "stdev": "stdev", "deviation": "stdev", "count": "count", "many": "count",
    "number": "count",
}  # fmt: skip
WORD_OPERATORS: tuple[tuple[str, str], ...] = (
    ("is not", "!="), ("is on or after", ">="), ("is on or before", "<="), ("on or after", ">="),
    ("on or before", "<="), ("is after", ">"), ("is before", "<"), ("after", ">"), ("before", "<"), ("since", ">="),
    ("greater than or equal to", ">="), ("less than or equal to", "<="), ("at least", ">="),
    ("at most", "<="), ("greater than", ">"), ("more than", ">"), ("above", ">"), ("over", ">"),
    ("less than", "<"), ("below", "<"), ("under", "<"), ("equals", "="), ("is", "="), ("contains", "contains"),
)  # fmt: skip
GROUP_MARKERS = r"(?:per|by|for each|each|grouped by|group by|across)"
RANK_WORDS: dict[str, str] = {
    "highest": "desc", "largest": "desc", "most": "desc", "biggest": "desc", "greatest": "desc", "top": "desc",
    "lowest": "asc", "smallest": "asc", "least": "asc", "fewest": "asc", "bottom": "asc",
}  # fmt: skip
DISTINCT_WORDS = r"(?:distinct|different|unique)"
NEGATIONS = r"(?:not|excluding|exclude|except(?:\s+for)?|other\s+than|without|besides|apart\s+from|but\s+not)"
"""Words that turn a value named without its column into ``column != value`` ("total units excluding north")."""
MONTHS = (
    "january", "february", "march", "april", "june", "july", "august", "september", "october", "november", "december",
)  # fmt: skip
"""Month names a question may filter by ("total units in february"); "may" only after "in", "for"...."""
SHARE_WORDS = frozenset(("percentage", "percent", "share", "proportion", "fraction"))
LONGEST_VALUE_WORDS = 3
"""A cell value the question names without its column ("how many widgets") is matched up to this many words."""
PHRASE_END = frozenset((
    "by", "per", "for", "where", "in", "from", "across", "grouped", "group", "each", "with", "whose", "when", "if",
    "has", "have", "had", "is", "are", "was", "were", "and", "or", "than", "to", "at", "on",
))  # fmt: skip
"""Words that end the phrase naming what an aggregate applies to ("average price | per category")."""
NOT_A_COLUMN = frozenset((
    "the", "of", "a", "an", "all", "this", "that", "these", "those", "its", "their", "my", "our", "value", "values",
    "overall", "total", "column", "columns", "field", "fields", "csv", "data", "dataset", "table", "tables", "file",
    "json", "sheet", "spreadsheet", "row", "rows", "record", "records", "line", "lines", "entry", "entries",
    "everything", "numbers", "number", "numeric", "it", "them", "here", "above", "below", "please", "given",
    "following", "me", "us",
))  # fmt: skip
"""Words that may follow an aggregate or a group marker without naming a column ("the mean of this csv")."""


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

    @property
    def empty(self) -> bool:
        return not (self.filters or self.group_by or self.aggregates)

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
        return data


def numeric_columns(table: Table) -> list[str]:
    """Columns whose every value is a number or missing (blank, ``n/a``...), with at least one number."""
    return [c for c in table.columns if numbers_of([row.get(c) for row in table.rows]) is not None]


def _column_pattern(column: str) -> str:
    words = re.escape(column.lower()).replace("_", "[ _]").replace(r"\ ", "[ _]")
    plural = r"(?:s|es)?" if not column.lower().endswith("y") else ""
    if column.lower().endswith("y"):
        words = words[:-1] + "(?:y|ies)"
    return rf"\b{words}{plural}\b"


def find_columns(text: str, columns: list[str]) -> list[tuple[int, str]]:
    """(position, column) for each column named in ``text``, longest names first so ``unit_price`` beats ``price``."""
    found: list[tuple[int, str]] = []
    taken: list[range] = []
    for column in sorted(columns, key=len, reverse=True):
        for match in re.finditer(_column_pattern(column), text.lower()):
            span = range(match.start(), match.end())
            if not any(span.start < t.stop and t.start < span.stop for t in taken):
                found.append((match.start(), column))
                taken.append(span)
    return sorted(found)


def parse_query(text: str, table: Table) -> Query:
    """A query from plain words. Names it cannot place as columns go to ``unknown``; words it does not understand
    otherwise are left out (the summary shows what was understood)."""
    lowered = text.lower()
    columns = table.columns
    numeric = numeric_columns(table)
    filters = [_whole_value(f, lowered, table) for f in _parse_filters(lowered, columns)]
    flags, lowered = _flag_filters(lowered, table, {f.column for f in filters})
    filters.extend(flags)
    unclear: list[str] = []
    implied = _implied_filters(lowered, table, numeric, {f.column for f in filters}, unclear)
    filters.extend(implied)
    lowered = _without_values(lowered, implied)  # "model 3" named a value: its "model" names no column any more
    filter_columns = {f.column for f in filters}
    flag_columns = {f.column for f in flags}
    order, ranked_by, limit, unnamed = _ranking(lowered, columns)
    unknown: list[str] = list(unnamed)
    group_by: list[str] = []
    for marker in re.finditer(rf"\b{GROUP_MARKERS}\s+(?:the\s+)?", lowered):
        rest = lowered[marker.end() :]
        found = [column for position, column in find_columns(rest, columns) if position == 0]
        for column in found:
            # In a ranking, "by" a numeric column names what ranks the groups ("top 3 regions by units"), not a group.
            ranks = ranked_by is not None and column != ranked_by and column in numeric
            if not ranks and column not in group_by:
                group_by.append(column)
        if not found:
            unknown.extend(_unplaced(rest, columns, first_word_only=True))
    if ranked_by is not None and ranked_by not in group_by:
        group_by.insert(0, ranked_by)
    distinct = _distinct_columns(lowered, columns)
    counted = _counted_column(lowered, columns, numeric)
    if counted is not None and not group_by and counted not in distinct:
        # "how many regions are there": the regions, not the rows. Per group ("how many items per category") the
        # words may mean either; the row count stays, as before.
        distinct.append(counted)
    values = {str(f.value) for f in filters}  # "units >= 5%" compares; it asks for no share
    share = any(word in SHARE_WORDS for word in _words(lowered)) or any(
        "%" in word and word.rstrip(".?!") not in values for word in lowered.split()
    )
    functions: list[str] = []
    phrases: list[str] = []
    for match in re.finditer(r"[a-z]+", lowered):
        word = match.group()
        function = AGGREGATE_WORDS.get(word)
        if function and (word not in ("many", "number") or "how many" in lowered):
            if word == "number" and "number of" not in lowered:
                continue
            if function != "count":
                phrases.append(_phrase_after(lowered, match.end()))
            if function not in functions:
                functions.append(function)
    if order is not None and len(functions) > 1:  # "highest total qty": the superlative ranks, "total" aggregates
        functions = [f for f in functions if f not in ("max", "min")]
    not_numeric: list[str] = []
    aggregated: set[str] = set()
    for phrase in phrases:
        named = [c for _, c in find_columns(phrase, columns) if c not in group_by]
        aggregated.update(named)
        if not named:
            unknown.extend(_unplaced(phrase, columns, first_word_only=False))
        elif not any(c in numeric for c in named):
            not_numeric.extend(c for c in named if c not in not_numeric)
    mentioned = [c for _, c in find_columns(lowered, columns)]
    # A column filtered on is aggregated only when an aggregate names it ("sum of units where units > 3").
    named = [
        c for c in numeric if c in mentioned and c not in group_by and (c not in filter_columns or c in aggregated)
    ]
    quantity = _counted_quantity(lowered, columns, numeric)
    if quantity is not None and "count" in functions:  # "how many units were sold": the units, not the rows
        functions = ["sum" if f == "count" else f for f in functions]
        named = [quantity]
    targets = named or ([] if not_numeric else [c for c in numeric if c not in group_by and c not in flag_columns])
    aggregates: list[tuple[str, str | None]] = [("distinct", column) for column in distinct]
    if distinct:  # "how many different regions": the count asked for is the distinct one
        functions = [f for f in functions if f != "count"]
    if order is not None and not functions and not distinct:
        # "which region has the most units" / "top 3 regions by units": the total of the column named; with none
        # named ("which region has the most orders"), the row count.
        functions = ["sum"] if named else ["count"]
    if share and (filters or group_by):
        # "what percentage of units are from north": that part of the column's total (of the row count when no
        # numeric column is named), the rest of the question's aggregates aside.
        functions = []
        aggregates = [("share", column) for column in named] or [("share", None)]
    for function in functions:
        if function == "count":
            aggregates.append(("count", None))
        else:
            aggregates.extend((function, column) for column in targets)
    if group_by and not aggregates:
        # "units broken down by region": the total of the numeric column named (the summary says "sum(units)");
        # with none named ("orders by status"), the row count.
        aggregates.extend([("sum", column) for column in named] or [("count", None)])
    unclear.extend(_left_out(lowered, columns, filters, limit))
    return Query(filters, group_by, aggregates, order, list(dict.fromkeys(unknown)), not_numeric, limit, unclear)


def _counted_column(text: str, columns: list[str], numeric: list[str]) -> str | None:
    """The text column right after "how many" ("how many regions are there"): its distinct values are counted."""
    for marker in re.finditer(r"\bhow many\s+(?:the\s+)?", text):
        found = [c for position, c in find_columns(text[marker.end() :], columns) if position == 0]
        if found and found[0] not in numeric:
            return found[0]
    return None


def _counted_quantity(text: str, columns: list[str], numeric: list[str]) -> str | None:
    """The numeric column right after "how many" ("how many units were sold"): its total is what is counted."""
    for marker in re.finditer(r"\bhow many\s+(?:the\s+)?", text):
        found = [c for position, c in find_columns(text[marker.end() :], columns) if position == 0]
        if found and found[0] in numeric:
            return found[0]
    return None


def _left_out(text: str, columns: list[str], filters: list[Filter], limit: int | None) -> list[str]:
    """Numbers and month names the question states that no filter or limit uses ("total units in 2026", "units
    is 5 or 7"): the query would silently answer without them."""
    rest = text
    for value in sorted((str(f.value).lower() for f in filters), key=len, reverse=True):  # "model 3" before "model"
        rest = re.sub(rf"(?<![\w.]){re.escape(value)}(?![\w])", " ", rest, count=1)
    for column in columns:
        rest = re.sub(_column_pattern(column), " ", rest)
    if limit is not None:
        rest = re.sub(rf"\b(?:top|bottom)\s+{limit}\b", " ", rest, count=1)
    numbers = re.findall(r"(?<![\w.])[-+$€£]?\d[\d,]*(?:\.\d+)?%?(?![\w-])|\b\d{4}-\d{2}(?:-\d{2})?\b", rest)
    month = re.compile(rf"\b(?:{'|'.join(MONTHS)})\b|\b(?:in|for|during|since|until)\s+(may)\b")
    left = [*numbers, *(m.group(1) or m.group() for m in month.finditer(rest))]
    if not left:
        return []
    return [f"the question names {', '.join(repr(w) for w in dict.fromkeys(left))} but no filter uses it"]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z][a-z0-9_]*", text)


def _phrase_after(text: str, start: int) -> str:
    """The words after an aggregate word, up to the next word that starts another part of the question."""
    words = []
    for word in re.findall(r"[a-z0-9_]+|[^\sa-z0-9_]", text[start:]):
        if word in PHRASE_END or not word[0].isalnum():
            break
        words.append(word)
    return " ".join(words)


def _unplaced(text: str, columns: list[str], *, first_word_only: bool) -> list[str]:
    """The word of ``text`` the question uses as a column name, when it names no column of the table."""
    for word in _words(text):
        if word in NOT_A_COLUMN or word in RANK_WORDS or word in AGGREGATE_WORDS:
            if first_word_only and word not in ("the", "all", "each"):
                return []
            continue
        return [] if find_columns(word, columns) else [word]
    return []


def _ranking(text: str, columns: list[str]) -> tuple[str | None, str | None, int | None, list[str]]:
    """For "which product has the highest ..." or "top 3 products by ...": the order (``desc``), the column whose
    groups are ranked (``product``), how many to keep (3; ``None``: all), and the name used when the table has no
    such column."""
    order = next((RANK_WORDS[w] for w in _words(text) if w in RANK_WORDS), None)
    which = re.search(r"\b(?:which|what)\s+(?:the\s+)?|\b(top|bottom)\s+(?:(\d{1,6})\s+)?(?:the\s+)?", text)
    if order is None or which is None:
        return None, None, None, []
    if which.group(1) is not None:  # "top"/"bottom" decides the order, whatever comes later
        order = RANK_WORDS[which.group(1)]
    limit = int(which.group(2)) if which.group(2) else None
    rest = text[which.end() :]
    found = [column for position, column in find_columns(rest, columns) if position == 0]
    if not found:
        if which.group(1) is None and not rest.startswith(("is ", "are ", "was ", "were ")):
            return None, None, None, _unplaced(rest, columns, first_word_only=True)
        return None, None, None, []
    return order, found[0], limit or None, []


def _implied_filters(
    text: str, table: Table, numeric: list[str], explicit: set[str], unclear: list[str]
) -> list[Filter]:
    """``column = value`` for each value of a text column the question names without naming the column ("how many
    widgets", "average units for the north"), ``column != value`` after a negation ("excluding north"): one value
    per column; a column with two values named gets no filter and goes to ``unclear`` (which of them was meant, or
    both, the words do not say)."""
    phrases = _phrases(text)
    filters = []
    for column in table.columns:
        if column in numeric or column in explicit:
            continue
        named: dict[str, str] = {}
        for row in table.rows:
            cell = row.get(column)
            if isinstance(cell, str) and cell.strip():
                key = " ".join(cell.lower().split())
                if key in phrases and key not in named and _may_be_a_value(key, table.columns):
                    named[key] = cell.strip()
        if len(named) == 1:
            key, value = next(iter(named.items()))
            filters.append(Filter(column, "!=" if _negated(text, key) else "=", value))
        elif named:
            values = ", ".join(repr(v) for v in named.values())
            unclear.append(f"the question names {values} of column '{column}': which rows are meant is not clear")
    return filters


def _negated(text: str, key: str) -> bool:
    """Whether ``key`` (a cell's text) follows a negation in ``text`` ("not north", "excluding the widgets")."""
    stem = re.escape(key)[:-1] + "(?:y|ies)" if key.endswith("y") else re.escape(key) + "(?:s|es)?"
    return re.search(rf"\b{NEGATIONS}\s+(?:(?:the|in|from|for|any)\s+)*{stem}\b", text) is not None


def _phrases(text: str) -> set[str]:
    """Runs of one to ``LONGEST_VALUE_WORDS`` words of ``text``, each also without a plural ending."""
    words = re.findall(r"[\w'-]+", text)
    phrases: set[str] = set()
    for size in range(1, LONGEST_VALUE_WORDS + 1):
        for start in range(len(words) - size + 1):
            phrase = " ".join(words[start : start + size])
            phrases.add(phrase)
            if phrase.endswith("ies"):
                phrases.add(phrase[:-3] + "y")
            elif phrase.endswith("es"):
                phrases.update((phrase[:-2], phrase[:-1]))
            elif phrase.endswith("s"):
                phrases.add(phrase[:-1])
    return phrases


def _may_be_a_value(key: str, columns: list[str]) -> bool:
    """Whether a cell's text, found among the question's words, is taken as naming that cell's value: not a word
    that also frames questions, a number or a column name (a value holding a column's name and more, "model 3" in
    column ``model``, is a value)."""
    if key in NOT_A_COLUMN or key in PHRASE_END or key in AGGREGATE_WORDS or key in RANK_WORDS or key in SHARE_WORDS:
        return False
    if len(key) < 2 or to_decimal(key) is not None:
        return False
    return not any(re.fullmatch(_column_pattern(column), key) for column in columns)


def _value_pattern(key: str) -> str:
    """A cell's text as the question may name it: whole words, with a plural ending ("widgets", "categories")."""
    stem = re.escape(key)[:-1] + "(?:y|ies)" if key.endswith("y") else re.escape(key) + "(?:s|es)?"
    return rf"(?<![\w'-]){stem}(?![\w'-])"


def _without_values(text: str, filters: list[Filter]) -> str:
    """``text`` with the values the filters name blanked out, so that their words name no column or aggregate."""
    for condition in filters:
        key = " ".join(str(condition.value).lower().split())
        text = re.sub(_value_pattern(key), lambda match: " " * len(match.group()), text)
    return text


def _whole_value(condition: Filter, text: str, table: Table) -> Filter:
    """An explicit filter whose value is the first word of a longer cell value the question names in full
    ("where model is model 3" reads the value ``model``): that cell value."""
    if condition.op not in ("=", "!="):
        return condition
    value = str(condition.value).lower()
    cells = {" ".join(str(row.get(condition.column)).lower().split()): row.get(condition.column) for row in table.rows}
    if value in cells:
        return condition
    longer = [key for key in cells if key.startswith(value + " ") and re.search(_value_pattern(key), text)]
    if not longer:
        return condition
    return Filter(condition.column, condition.op, str(cells[max(longer, key=len)]).strip())


FLAG_WORDS = (("yes", "no"), ("y", "n"), ("true", "false"), ("t", "f"), ("1", "0"))
"""The (true, false) spellings of a yes/no column, compared lower-cased."""
FLAG_NEGATION = rf"(?:\b(?:{NEGATIONS}|never)|n't)\s+(?:(?:been|be|yet)\s+)*$"
"""Words before a yes/no column's name that ask for its false value ("orders that were not paid")."""


def flag_values(values: list[Any]) -> tuple[str, str] | None:
    """The (true, false) spelling of a yes/no column (``yes``/``no``, ``y``/``n``, ``true``/``false`` or JSON
    booleans, ``1``/``0`` with both present), missing values aside; ``None`` for any other column."""
    seen = {_flag_word(value) for value in values if not is_missing(value)}
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


def _flag_filters(text: str, table: Table, explicit: set[str]) -> tuple[list[Filter], str]:
    """``column = true`` for each yes/no column the question names as a qualifier ("how many paid orders",
    "orders that were paid"; ``= false`` for "not paid", "unpaid"), and the text with those words blanked out: they
    name a filter, not a column to count, total or group by."""
    filters = []
    for column in table.columns:
        spellings = None if column in explicit else flag_values([row.get(column) for row in table.rows])
        mention = _qualifier(text, column, table.columns) if spellings is not None else None
        if spellings is None or mention is None:
            continue
        start, end, negated = mention
        filters.append(Filter(column, "=", spellings[1] if negated else spellings[0]))
        text = text[:start] + " " * (end - start) + text[end:]
    return filters, text


AGGREGATE_OF = "|".join(word for word, function in AGGREGATE_WORDS.items() if function != "count")


def _qualifier(text: str, column: str, columns: list[str]) -> tuple[int, int, bool] | None:
    """(start, end, negated) of the first mention of a yes/no column as a qualifier; ``None`` when the question
    names it only as a group ("by paid"; "by paid amount" qualifies the amount) or as what an aggregate applies to
    ("average paid", "total paid by region"; "total paid amount" qualifies the amount)."""
    name = _column_pattern(column).removeprefix(r"\b")
    for match in re.finditer(rf"\b(?P<negation>un|non-?)?{name}", text):
        before, after = text[: match.start()], text[match.end() :]
        names_next = any(position == 0 for position, _ in find_columns(after.lstrip(), columns))
        if re.search(rf"\b{GROUP_MARKERS}\s+(?:the\s+)?$", before) and not names_next:
            continue
        following = re.match(r"\s*([a-z0-9_]*)", after)
        ends_phrase = following is None or not following.group(1) or following.group(1) in PHRASE_END
        if ends_phrase and re.search(rf"\b(?:{AGGREGATE_OF})\s+(?:of\s+)?(?:the\s+)?$", before):
            continue
        negated = bool(match["negation"]) or re.search(FLAG_NEGATION, before) is not None
        return match.start(), match.end(), negated
    return None


def _distinct_columns(text: str, columns: list[str]) -> list[str]:
    """Columns named right after "distinct", "different" or "unique" ("how many different regions")."""
    named: list[str] = []
    for marker in re.finditer(rf"\b{DISTINCT_WORDS}\s+(?:the\s+)?", text):
        found = [c for position, c in find_columns(text[marker.end() :], columns) if position == 0]
        named.extend(c for c in found if c not in named)
    return named


def _parse_filters(text: str, columns: list[str]) -> list[Filter]:
    if not columns:
        return []
    names = "|".join(_column_pattern(c).removeprefix(r"\b").removesuffix(r"\b") for c in sorted(columns, key=len)[::-1])
    words = "|".join(re.escape(w) for w, _ in WORD_OPERATORS)
    value = r"('[^']*'|\"[^\"]*\"|[^\s,;]+)"
    pattern = re.compile(rf"\b({names})\s*(>=|<=|!=|==|=|>|<|\b(?:{words})\b)\s*{value}")
    filters: list[Filter] = []
    between = re.compile(rf"\b({names})\s+(?:(?:is|are|was|were)\s+)?between\s+{value}\s+and\s+{value}")
    ranges: list[range] = []
    for match in between.finditer(text):  # "units between 3 and 6": both ends included
        ranges.append(range(match.start(), match.end()))
        column = next(c for _, c in find_columns(match.group(1), columns))
        low, high = (raw.strip("'\"").rstrip(".?!") for raw in (match.group(2), match.group(3)))
        filters.extend((Filter(column, ">=", low), Filter(column, "<=", high)))
    for match in pattern.finditer(text):
        if any(match.start() in span for span in ranges):  # "date is between ...": not "date = between"
            continue
        column = next(c for _, c in find_columns(match.group(1), columns))
        raw_op = match.group(2)
        op = "=" if raw_op == "==" else dict(WORD_OPERATORS).get(raw_op, raw_op)
        raw = match.group(3).strip("'\"").rstrip(".?!")
        if match.group(3)[0] not in "'\"" and (raw in PHRASE_END or raw in NOT_A_COLUMN):
            continue  # "what share of qty is from the north": "is from" compares nothing
        filters.append(Filter(column, op, raw))
    return filters


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
    group_by = [column(name) for name in spec.get("group_by", [])]
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
    return Query(filters, group_by, aggregates, order, limit=limit)


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
        return rows[: query.limit], len(rows), len(rows)
    whole = rows if query.group_by else table.rows
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(c) for c in query.group_by), []).append(row)
    if not query.group_by:
        groups = {(): rows}
    result = []
    for key in sorted(groups, key=lambda k: tuple(_sort_key(v) for v in k)):
        members = groups[key]
        out: Row = dict(zip(query.group_by, key, strict=True))
        for function, column in query.aggregates:
            if function == "share":
                out[result_name(function, column)] = _share(members, whole, column)
                continue
            values = [1] * len(members) if column is None else [m.get(column) for m in members]
            out[result_name(function, column)] = aggregate(function, values)
        result.append(out)
    if query.order is not None and query.aggregates:
        name = result_name(*query.aggregates[0])
        present = [row for row in result if row[name] is not None]
        present.sort(key=lambda row: row[name], reverse=query.order == "desc")  # stable: ties keep group order
        result = present + [row for row in result if row[name] is None]
    return result[: query.limit], len(rows), len(result)


def _sort_key(value: Any) -> tuple[int, Any]:
    number = to_decimal(value)
    return (0, number) if number is not None else (1, str(value))
