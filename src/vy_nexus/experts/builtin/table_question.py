"""A table question in plain words read as a ``Query`` (table_query.py runs it).

Plain words: "average price per category where region = north", "total sales by region for year >= 2023",
"how many orders by status", "max price where category is fruit", "which product has the highest total qty"
(groups ranked by their aggregate), "top 3 regions by units" (ranked by the total of a numeric column, three kept),
"how many different products per region" (distinct values). Column names are matched as whole words
(``unit_price`` also as "unit price"; "categories" finds ``category``). A name the question uses as a column that
the table does not have ("average weight", "per category") is reported in ``Query.unknown`` instead of being
dropped or guessed. A yes/no column named as a qualifier filters on its true value ("how many paid orders":
``paid = yes``; "unpaid orders": ``paid = no``); averaged, it gives the share of yes ("average paid").

Several groups: "units by region and product", "average price per category, month" (a row per combination).
Counting reads the same after "how many", "number of" and "count (of)": a numeric quantity column is totalled
("count of items"), an identifier column (``order_id``, or unique whole numbers in ``order`` counted as "orders")
has its different values counted, never its numbers added; otherwise rows are counted. Sorting: "sorted by amount",
"in descending order". What the query would leave out ("or", two breakdowns, a ranking within groups) goes to
``Query.unclear`` instead of being answered as another question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vy_nexus.experts.builtin.table_query import (
    FLAG_AGGREGATES,
    Filter,
    Query,
    flag_notes,
    flag_values,
    numeric_columns,
)
from vy_nexus.experts.builtin.tabular import (
    Table,
    identifier_columns,
    identifier_stem,
    to_decimal,
    whole_numbers,
)

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


LIST_SEPARATOR = r"(?:\s*,\s*(?:and\s+|then\s+)?|\s+and\s+|\s*&\s*|\s+then\s+)(?:(?:by|per)\s+)?(?:the\s+)?"
"""Between the columns of a list: "by region and product", "per category, month", "by region and by product"."""
FILTER_AHEAD = re.compile(
    r"\s*(?:[<>=!]|\b(?:is|are|was|were|between|contains|equals|at\s+least|at\s+most|greater|less|more|above|below"
    r"|over|under|after|before|since|on\s+or)\b)"
)
"""What follows a column that a filter compares ("units > 3", "region is north"): such a column ends a list."""
SORT_WORDS = re.compile(
    r"\b(?:sort(?:ed)?|order(?:ed)?|rank(?:ed)?|arranged)\s+(?:them\s+|it\s+|(?:the\s+)?(?:results?|rows)\s+)?by\s+"
    rf"(?:the\s+)?(?:(?P<function>{'|'.join(AGGREGATE_WORDS)})\b\s*(?:of\s+)?(?:the\s+)?)?"
)
"""Words that sort the answer by a column or an aggregate ("sorted by amount", "ordered by the total amount")."""
DIRECTION_WORDS = re.compile(
    r"(?:,\s*)?\b(?:in\s+)?(?:(?P<desc>descending|decreasing|(?:largest|highest|biggest|most)\s+first)"
    r"|(?P<asc>ascending|increasing|(?:smallest|lowest|least|fewest)\s+first))\b(?:\s+order\b)?"
)
"""Words that say which way to sort ("in descending order", "largest first")."""
ANY_QUANTITY = ("sum", "mean", "median", "stdev")
"""Aggregates that treat a column's values as quantities: meaningless over identifiers."""


@dataclass(slots=True)
class _Reading:
    """What a question's words say so far, shared by the steps that read its aggregates."""

    text: str
    table: Table
    numeric: list[str]
    identifiers: list[str]
    group_by: list[str]
    unknown: list[str] = field(default_factory=list)
    not_numeric: list[str] = field(default_factory=list)
    not_quantities: list[str] = field(default_factory=list)
    unclear: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def is_flag(self, column: str) -> bool:
        return column not in self.numeric and flag_values([row.get(column) for row in self.table.rows]) is not None


def parse_query(text: str, table: Table) -> Query:
    """A query from plain words. Names it cannot place as columns go to ``unknown``; words it does not understand
    otherwise are left out (the summary shows what was understood)."""
    lowered = _normalised(text)
    columns = table.columns
    numeric = numeric_columns(table)
    filters = [_whole_value(f, lowered, table) for f in _parse_filters(lowered, columns)]
    flags, lowered = _flag_filters(lowered, table, {f.column for f in filters})
    filters.extend(flags)
    unclear: list[str] = []
    implied = _implied_filters(lowered, table, numeric, {f.column for f in filters}, unclear)
    filters.extend(implied)
    lowered = _without_values(lowered, implied)  # "model 3" named a value: its "model" names no column any more
    unclear.extend(_alternatives(lowered, table, filters[: len(filters) - len(flags) - len(implied)]))
    lowered, sort = _sorting(lowered, columns)
    order, ranked, limit, unknown = _ranking(lowered, columns)
    group_by = _group_by(lowered, columns, numeric, ranked, unknown, unclear)
    extra = [c for c in group_by if c not in ranked]
    if order is not None and ranked and extra:  # "top 2 products per region"
        unclear.append(
            f"ranking {', '.join(ranked)} within each {', '.join(extra)} is not computed (every combination would be"
            " ranked together): ask for one ranking at a time"
        )
    reading = _Reading(lowered, table, numeric, _identifiers(lowered, table, numeric), group_by, unknown)
    reading.unclear.extend(unclear)
    asked = _asked(reading, order)
    filter_columns = {f.column for f in filters}
    aggregated = {column for _, named in asked for column in named}
    mentioned = [c for _, c in find_columns(lowered, columns)]
    # A column filtered on is aggregated only when an aggregate names it ("sum of units where units > 3").
    named = [
        c
        for c in numeric
        if c in mentioned and c not in group_by and (c not in filter_columns or c in aggregated)
        and c not in reading.identifiers
    ]  # fmt: skip
    flag_columns = {f.column for f in flags}
    unnamed = [c for c in numeric if c not in group_by and c not in flag_columns and c not in reading.identifiers]
    fallback = named or ([] if reading.not_numeric else unnamed)
    distinct = _distinct_columns(lowered, columns)
    aggregates: list[tuple[str, str | None]] = [("distinct", column) for column in distinct]
    if distinct:  # "how many different regions": the count asked for is the distinct one
        asked = [(function, named) for function, named in asked if (function, named) != ("count", [])]
    counted_ids = [c for c in _identifiers_named(reading) if c not in group_by and c not in aggregated]
    if order is not None and not asked and not distinct:
        # "which region has the most units" / "top 3 regions by units": the total of the column named; "which region
        # has the most orders": the different order ids, else the row count.
        asked = [("sum", [c]) for c in named] or [("distinct", [c]) for c in counted_ids] or [("count", [])]
        for column in named:
            _unless_ambiguous(reading, column)
    if _asks_share(lowered, filters) and (filters or group_by):
        # "what percentage of units are from north": that part of the column's total (of the row count when no
        # numeric column is named), the rest of the question's aggregates aside.
        asked = [("share", [column]) for column in named] or [("share", [])]
    aggregates.extend(_resolved(reading, asked, fallback))
    if group_by and not aggregates:
        # "units broken down by region": the total of the numeric column named (the summary says "sum(units)");
        # "orders by region": the different order ids; with none named ("rows by status"), the row count.
        aggregates = [("sum", c) for c in named] or [("distinct", c) for c in counted_ids] or [("count", None)]
        for column in named:
            _unless_ambiguous(reading, column)
    aggregates = list(dict.fromkeys(aggregates))
    sort_by = None
    if sort is not None:
        aggregates, order, sort_by = _sorted(reading, sort, aggregates, order)
    reading.notes.extend(flag_notes(aggregates, table))
    reading.unclear.extend(_left_out(lowered, columns, filters, limit))
    return Query(
        filters,
        group_by,
        aggregates,
        order,
        list(dict.fromkeys(reading.unknown)),
        reading.not_numeric,
        limit,
        reading.unclear,
        reading.not_quantities,
        list(dict.fromkeys(reading.notes)),
        sort_by,
    )


@dataclass(frozen=True, slots=True)
class _Sort:
    """How the words sort the answer: by an aggregate (``function``, ``column``), by a column, or only a direction
    ("in descending order": both ``None``)."""

    function: str | None
    column: str | None
    descending: bool


def _sorting(text: str, columns: list[str]) -> tuple[str, _Sort | None]:
    """The sort the words ask for ("sorted by amount", "in descending order"), and ``text`` without those words: their
    "by" names no group and their "highest first" no aggregate."""
    direction = DIRECTION_WORDS.search(text)
    descending = direction is not None and direction["desc"] is not None
    if direction is not None:
        text = _blanked(text, direction.start(), direction.end())
    match = SORT_WORDS.search(text)
    if match is None:
        return text, None if direction is None else _Sort(None, None, descending)
    function = AGGREGATE_WORDS.get(match["function"] or "")
    found = _column_at(text, match.end(), columns)
    end = found[1] if found is not None else match.end()
    if found is None and function is None:
        return text, None  # "sorted by colour": the group markers report the name the table lacks
    return _blanked(text, match.start(), end), _Sort(function, found[0] if found else None, descending)


def _blanked(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def _sorted(
    reading: _Reading, sort: _Sort, aggregates: list[tuple[str, str | None]], order: str | None
) -> tuple[list[tuple[str, str | None]], str | None, str | None]:
    """The aggregates with the one the sort names first, the order, and the column to sort by when the sort names
    a group (or, rows listed, any column); a sort by something the answer does not hold goes to ``unclear``."""
    direction = "desc" if sort.descending else "asc"
    if sort.function is None and sort.column is None:
        if aggregates:
            return aggregates, direction, None
        reading.unclear.append("the question asks for an order but names nothing to sort by")
        return aggregates, order, None
    counts = ("count", "distinct") if sort.function == "count" else (sort.function,)
    named = [
        (function, column)
        for function, column in aggregates
        if (sort.column is None or column == sort.column) and (sort.function is None or function in counts)
    ]
    if named:
        return [named[0]] + [a for a in aggregates if a != named[0]], direction, None
    listed = not aggregates and not reading.group_by
    if sort.function is None and (sort.column in reading.group_by or listed):
        return aggregates, direction, sort.column
    what = f"{sort.function or ''}({sort.column or '*'})" if sort.function else str(sort.column)
    reading.unclear.append(
        f"sorting by {what} is not computed: sort by a group or by an aggregate the question asks for"
    )
    return aggregates, order, None


def _alternatives(text: str, table: Table, explicit: list[Filter]) -> list[str]:
    """Conditions the words join by "or" ("category is books or toys", "amount > 20 or items < 2"), or values of one
    column listed after a filter ("category is books and toys"): filters all hold at once, so such a question
    would be answered as another."""
    found = []
    for match in re.finditer(r"\bor\s+(?:the\s+)?([\w'.-]+)", text):
        word = match.group(1).rstrip(".?!")
        if find_columns(word, table.columns) or to_decimal(word) is not None or _is_a_cell(_singulars(word), table):
            found.append(f"'or {word}'")
    for condition in explicit:
        if condition.op not in ("=", "!="):
            continue
        cells = {" ".join(str(row.get(condition.column)).lower().split()) for row in table.rows}
        value = re.escape(str(condition.value).lower())
        for match in re.finditer(rf"\b{value}\s*(?:,|\band\b|&)\s*(?:the\s+)?([\w'.-]+)", text):
            if _singulars(match.group(1)) & (cells - {str(condition.value).lower()}):
                found.append(f"'{condition.value}' and '{match.group(1)}' of column '{condition.column}'")
    if not found:
        return []
    return [f"the question names alternatives ({', '.join(found)}): only conditions that all hold are computed"]


def _is_a_cell(words: set[str], table: Table) -> bool:
    """Whether some cell of ``table`` holds one of ``words`` (compared lower-cased, spaces collapsed)."""
    return any(
        isinstance(cell, str) and " ".join(cell.lower().split()) in words for row in table.rows for cell in row.values()
    )


def _singulars(word: str) -> set[str]:
    """``word`` and what it may be the plural of ("toys": ``toy``; "categories": ``category``)."""
    forms = {word}
    if word.endswith("ies"):
        forms.add(word[:-3] + "y")
    elif word.endswith("es"):
        forms.update((word[:-2], word[:-1]))
    elif word.endswith("s"):
        forms.add(word[:-1])
    return forms


def _normalised(text: str) -> str:
    """``text`` lower-cased; "total number of" reads as "number of", "average number of" as "average"."""
    lowered = re.sub(r"\b(?:total|overall)\s+number\s+of\b", "number of", text.lower())
    return re.sub(rf"\b({AGGREGATE_OF})\s+number\s+of\b", r"\1", lowered)


def _asks_share(text: str, filters: list[Filter]) -> bool:
    values = {str(f.value) for f in filters}  # "units >= 5%" compares; it asks for no share
    return any(word in SHARE_WORDS for word in _words(text)) or any(
        "%" in word and word.rstrip(".?!") not in values for word in text.split()
    )


def _asked(reading: _Reading, order: str | None) -> list[tuple[str, list[str]]]:
    """Each aggregate the words ask for, in their order, with the columns its phrase names (``[]``: none named;
    for a count, the rows)."""
    text, columns = reading.text, reading.table.columns
    asked: list[tuple[str, list[str]]] = []
    for match in re.finditer(r"[a-z]+", text):
        function = _aggregate_word(text, match)
        if function == "count":
            asked.extend(_counted_list(reading, match.end()))
        elif function is not None:
            phrase, end = _phrase_after(text, match.end())
            named = [c for _, c in find_columns(phrase, columns) if c not in reading.group_by]
            if not named:  # "average units and price" without a column ``units``: named, not dropped
                reading.unknown.extend(_unplaced(phrase, columns, first_word_only=False))
            listed, end = _column_list(text, end, columns, continued=True)
            named.extend(c for c in listed if c not in reading.group_by)
            reading.unknown.extend(_unnamed_after(text, end, columns))  # "average amount and weight by region"
            asked.append((function, list(dict.fromkeys(named))))
    if order is not None and len(asked) > 1:  # "highest total qty": the superlative ranks, "total" aggregates
        asked = [(function, named) for function, named in asked if function not in ("max", "min")]
    return asked


def _aggregate_word(text: str, match: re.Match[str]) -> str | None:
    """The aggregate a word asks for: "many" only in "how many", "number" only in "number of"."""
    word = match.group()
    if word == "many" and not re.search(r"\bhow\s+$", text[: match.start()]):
        return None
    if word == "number" and not re.match(r"\s+of\b", text[match.end() :]):
        return None
    return AGGREGATE_WORDS.get(word)


COUNTED_NOUN = re.compile(r"[a-z][a-z0-9_'-]*")
FRAMING_WORDS = NOT_A_COLUMN | PHRASE_END | SHARE_WORDS | frozenset(AGGREGATE_WORDS) | frozenset(RANK_WORDS)
"""Words after "and" that start another part of the question ("how many orders and what ...", "by region and
the total"), never a name of what is counted or grouped."""


def _counted_list(reading: _Reading, start: int) -> list[tuple[str, list[str]]]:
    """What a count word counts, for each noun of a list ("how many items and orders")."""
    text = reading.text
    begin = re.compile(r"\s*(?:of\s+)?(?:the\s+|all\s+)?").match(text, start)
    position = begin.end() if begin is not None else start
    counted: list[tuple[str, list[str]]] = []
    while True:
        found = _column_at(text, position, reading.table.columns)
        noun = COUNTED_NOUN.match(text, position)
        counted.append(_counted(reading, found, text[position : found[1]] if found is not None else ""))
        end = found[1] if found is not None else noun.end() if noun is not None else position
        separator = re.compile(LIST_SEPARATOR).match(text, end)
        following = COUNTED_NOUN.match(text, separator.end()) if separator is not None else None
        if separator is None or following is None or following.group() in FRAMING_WORDS:
            return counted
        position = separator.end()


def _counted(reading: _Reading, found: tuple[str, int] | None, words: str) -> tuple[str, list[str]]:
    """What a count word counts, read the same after "how many", "number of" and "count (of)": a numeric column is
    totalled ("how many items": the items, not the rows), an identifier column has its different values counted
    ("how many orders" with a column ``order`` or ``order_id``), a text column too when not grouped ("how many
    regions are there"); anything else counts rows."""
    if found is None or found[0] in reading.group_by:
        return "count", []
    column, words = found[0], " ".join(words.split())
    if column in reading.identifiers:
        reading.notes.append(f"'{words}' counted as the different values of identifier column '{column}'")
        return "distinct", [column]
    if column in reading.numeric:
        _unless_ambiguous(reading, column)
        reading.notes.append(f"'{words}' counted as the total of column '{column}'")
        return "sum", [column]
    if not reading.group_by:  # "how many regions": the regions; per group the words may mean rows: rows, as before
        return "distinct", [column]
    return "count", []


def _identifiers(text: str, table: Table, numeric: list[str]) -> list[str]:
    """Identifier columns: named as such (``order_id``), or unique whole numbers in a column the question names in
    the plural (column ``order``, "how many orders"): a count of orders, not a quantity."""
    named = identifier_columns(table)
    for column in numeric:
        if column in named or not _named_in_plural(text, column):
            continue
        numbers = whole_numbers([row.get(column) for row in table.rows])
        if numbers is not None and len({n.normalize() for n in numbers}) == len(numbers):
            named.append(column)
    return named


def _unless_ambiguous(reading: _Reading, column: str) -> None:
    """A column of repeated whole numbers named in its plural and counted ("how many orders", "orders by region" with
    ``order`` repeated over order lines): the rows, the different orders and their total are each a reading, so the
    question goes to ``unclear``."""
    if column in reading.identifiers or not _named_in_plural(reading.text, column):
        return
    if whole_numbers([row.get(column) for row in reading.table.rows]) is not None:
        reading.unclear.append(
            f"'{column}' in the plural may count the rows, the different values of column '{column}' or total it:"
            f" ask for the number of rows, the number of different {column} or the total {column}"
        )


def _named_in_plural(text: str, column: str) -> bool:
    """Whether ``text`` names ``column`` in a plural it does not itself end with ("orders" for ``order``)."""
    name = column.lower()
    return any(
        match.group().replace(" ", "_") != name for match in re.finditer(_column_pattern(column), text)
    ) and not name.endswith("s")


def _identifiers_named(reading: _Reading) -> list[str]:
    """Identifier columns the question names, by name or stem ("orders" for ``order_id``)."""
    named = []
    for column in reading.identifiers:
        stem = identifier_stem(column)
        patterns = [_column_pattern(column)] + ([_column_pattern(stem)] if stem else [])
        if any(re.search(pattern, reading.text) for pattern in patterns):
            named.append(column)
    return named


def _resolved(
    reading: _Reading, asked: list[tuple[str, list[str]]], fallback: list[str]
) -> list[tuple[str, str | None]]:
    """The aggregates asked for, each over the columns its phrase names, else those of the next phrase naming some
    ("minimum and maximum price"), else ``fallback``. Identifiers are never quantities: their total counts their
    different values, their mean is refused. A yes/no column may be totalled or averaged (how many say yes, their
    share); other text columns go to ``not_numeric``."""
    aggregates: list[tuple[str, str | None]] = []
    for index, (function, named) in enumerate(asked):
        if function in ("count", "share") and not named:
            aggregates.append((function, None))
            continue
        later = [n for f, n in asked[index + 1 :] if n and f not in ("count", "distinct")]
        targets = named or (later[0] if later else fallback)
        if function in ("count", "distinct", "share"):
            aggregates.extend((function, column) for column in targets)
            continue
        quantities = [c for c in targets if c in reading.numeric or c in reading.identifiers]
        flags = [c for c in targets if function in FLAG_AGGREGATES and reading.is_flag(c)]
        if not quantities and not flags:
            reading.not_numeric.extend(c for c in targets if c not in reading.not_numeric)
        aggregates.extend(_over_quantities(reading, function, quantities) + [(function, c) for c in flags])
    return aggregates


def _over_quantities(reading: _Reading, function: str, columns: list[str]) -> list[tuple[str, str | None]]:
    aggregates: list[tuple[str, str | None]] = []
    for column in columns:
        if column not in reading.identifiers or function not in ANY_QUANTITY:
            aggregates.append((function, column))
        elif function == "sum":  # "total orders": how many different orders, never the sum of their numbers
            reading.notes.append(f"the total of identifier column '{column}' counted as its different values")
            aggregates.append(("distinct", column))
        elif column not in reading.not_quantities:
            reading.not_quantities.append(column)
    return aggregates


def _column_at(text: str, start: int, columns: list[str]) -> tuple[str, int] | None:
    """The column named at ``start`` of ``text`` (the longest name wins), else the identifier column whose stem is
    named there ("per order" for ``order_id``), and where the name ends."""
    for column in sorted(columns, key=len, reverse=True):
        match = re.compile(_column_pattern(column)).match(text, start)
        if match is not None:
            return column, match.end()
    for column in columns:
        stem = identifier_stem(column)
        if stem is not None and stem not in (c.lower() for c in columns):
            match = re.compile(_column_pattern(stem)).match(text, start)
            if match is not None:
                return column, match.end()
    return None


def _column_list(text: str, start: int, columns: list[str], *, continued: bool = False) -> tuple[list[str], int]:
    """The columns named one after another from ``start`` ("region and product", "region, product and month"), or
    with ``continued`` those after a list separator at ``start`` ("[price] and units"), and where the last one
    ends. A column a filter compares ("and units > 3") ends the list."""
    listed: list[str] = []
    position = start
    while True:
        at = position
        if listed or continued:
            separator = re.compile(LIST_SEPARATOR).match(text, position)
            if separator is None:
                return listed, position
            at = separator.end()
        found = _column_at(text, at, columns)
        if found is None or ((listed or continued) and FILTER_AHEAD.match(text, found[1])):
            return listed, position
        listed.append(found[0])
        position = found[1]


def _group_by(
    text: str, columns: list[str], numeric: list[str], ranked: list[str], unknown: list[str], unclear: list[str]
) -> list[str]:
    """The columns named after "by", "per", "for each"... ("by region and product"); names that are no column go
    to ``unknown``. In a ranking, "by" a numeric column names what ranks the groups ("top 3 regions by units").
    Two breakdowns with an aggregate between them ("total units per region and average price per category") ask
    two questions: ``unclear``."""
    group_by: list[str] = []
    last_end = None
    for marker in re.finditer(rf"\b{GROUP_MARKERS}\s+(?:the\s+)?", text):
        listed, end = _column_list(text, marker.end(), columns)
        if not listed:
            unknown.extend(_unplaced(text[marker.end() :], columns, first_word_only=True))
            continue
        between = text[last_end : marker.start()] if last_end is not None else ""
        if re.search(rf"\b(?:{'|'.join(AGGREGATE_WORDS)})\b", between):
            unclear.append("the question asks for two breakdowns with their own aggregates: ask one at a time")
        group_by.extend(c for c in listed if c not in group_by and (not ranked or c in ranked or c not in numeric))
        unknown.extend(_unnamed_after(text, end, columns))
        alternative = re.compile(r"\s+or\s+(?:by\s+|per\s+)?(?:the\s+)?").match(text, end)
        if alternative is not None and _column_at(text, alternative.end(), columns) is not None:
            unclear.append("the question names alternative groups ('or'): ask for one grouping")
        last_end = end
    return [c for c in ranked if c not in group_by] + group_by


LIST_FOLLOWERS = frozenset((
    "where", "with", "whose", "when", "if", "for", "in", "from", "during", "since", "by", "per", "across", "grouped",
))  # fmt: skip
"""Words that may follow a list of columns ("by region and colour where ...", "average amount and weight by ...")."""


def _unnamed_after(text: str, end: int, columns: list[str]) -> list[str]:
    """A word that continues a list of columns without naming one and ends the phrase ("by region and colour",
    "by region and colour where ..."): the table has no such column."""
    rest = re.compile(rf"{LIST_SEPARATOR}([a-z][a-z0-9_]*)\s*(?:([a-z]+)|[^\sa-z0-9_]|$)").match(text, end)
    if rest is None or (rest.group(2) is not None and rest.group(2) not in LIST_FOLLOWERS):
        return []
    word = rest.group(1)
    return [] if word in FRAMING_WORDS or find_columns(word, columns) else [word]


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


def _phrase_after(text: str, start: int) -> tuple[str, int]:
    """The words after an aggregate word, up to the next word that starts another part of the question, and where
    the last of them ends."""
    words = []
    end = start
    for match in re.compile(r"[a-z0-9_]+|[^\sa-z0-9_]").finditer(text, start):
        word = match.group()
        if word in PHRASE_END or not word[0].isalnum():
            break
        words.append(word)
        end = match.end()
    return " ".join(words), end


def _unplaced(text: str, columns: list[str], *, first_word_only: bool) -> list[str]:
    """The word of ``text`` the question uses as a column name, when it names no column of the table."""
    for word in _words(text):
        if word in NOT_A_COLUMN or word in RANK_WORDS or word in AGGREGATE_WORDS:
            if first_word_only and word not in ("the", "all", "each"):
                return []
            continue
        return [] if find_columns(word, columns) else [word]
    return []


def _ranking(text: str, columns: list[str]) -> tuple[str | None, list[str], int | None, list[str]]:
    """For "which product has the highest ..." or "top 3 products by ...": the order (``desc``), the columns whose
    groups are ranked (``product``; "which region and product": both), how many to keep (3; ``None``: all), and
    the name used when the table has no such column."""
    order = next((RANK_WORDS[w] for w in _words(text) if w in RANK_WORDS), None)
    which = re.search(r"\b(?:which|what)\s+(?:the\s+)?|\b(top|bottom)\s+(?:(\d{1,6})\s+)?(?:the\s+)?", text)
    if order is None or which is None:
        return None, [], None, []
    if which.group(1) is not None:  # "top"/"bottom" decides the order, whatever comes later
        order = RANK_WORDS[which.group(1)]
    limit = int(which.group(2)) if which.group(2) else None
    rest = text[which.end() :]
    ranked, _ = _column_list(text, which.end(), columns)
    if not ranked:
        if which.group(1) is None and not rest.startswith(("is ", "are ", "was ", "were ")):
            return None, [], None, _unplaced(rest, columns, first_word_only=True)
        return None, [], None, []
    return order, ranked, limit or None, []


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


FLAG_NEGATION = rf"(?:\b(?:{NEGATIONS}|never)|n't)\s+(?:(?:been|be|yet)\s+)*$"
"""Words before a yes/no column's name that ask for its false value ("orders that were not paid")."""


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
    names = "|".join(_column_pattern(c).removeprefix(r"\b").removesuffix(r"\b") for c in columns)
    grouped = re.compile(rf"\b{GROUP_MARKERS}\s+(?:the\s+)?(?:(?:{names}){LIST_SEPARATOR})*$")
    for match in re.finditer(rf"\b(?P<negation>un|non-?)?{name}", text):
        before, after = text[: match.start()], text[match.end() :]
        names_next = any(position == 0 for position, _ in find_columns(after.lstrip(), columns))
        if grouped.search(before) and not names_next:  # "by paid", "by region and paid"
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
