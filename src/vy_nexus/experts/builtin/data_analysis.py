"""The data-analysis expert: exact numbers from CSV, JSON or SQLite data, explained by the reasoning core on request.

Every number is computed, never generated: column statistics for the whole table, then the query the task asks for
(filters, group-by, aggregates: read from words by table_question.py, run by table_query.py) or an SQL ``SELECT``
(payload or context ``sql``; CSV/JSON rows are queryable as the table ``data``). When the task asks to explain or
interpret, the reasoning core gets the computed results and is told to use only those numbers.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from decimal import Decimal
from pathlib import Path
from typing import Any

from vy_nexus.errors import TaskError
from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.experts.builtin.table_query import (
    Query,
    numeric_columns,
    query_from_spec,
    result_name,
    run_query,
)
from vy_nexus.experts.builtin.table_question import parse_query
from vy_nexus.experts.builtin.tabular import (
    Row,
    Table,
    as_number,
    identifier_columns,
    is_missing,
    load_table,
    numbers_of,
    sql_over_rows,
    to_decimal,
)
from vy_nexus.experts.builtin.thinking import mentions, think
from vy_nexus.routing.pasted import pasted_table, split_pasted
from vy_nexus.tasks import Task

EXPLAIN_WORDS = ("explain", "interpret", "insight", "insights", "why", "meaning", "describe", "tell me about")
EXPLAIN_SYSTEM = (
    "You explain data analysis results to a non-expert in a few sentences. Use only the numbers given; "
    "never invent or recompute numbers."
)
MAX_RESULT_ROWS = 200
UNANSWERED_CONFIDENCE = 0.3
NOT_UNDERSTOOD_CONFIDENCE = 0.5
"""A question the words do not map to a query: the column statistics answer part of it at best."""
BEYOND_RANGE_CONFIDENCE = 0.6
"""An answer with a number beyond a float's range reported as null: right, but short of a number."""
NAMED_BEYOND_RANGE = 5
"""How many of those numbers the note names (``beyond_range`` lists them all)."""
DESCRIBE_WORDS = re.compile(
    r"\b(?:describe|summar(?:y|ies|i[sz]e)|overview|profile|explore|statistics|stats|columns?|analy[sz](?:e|is)"
    r"|what(?:'s| is) in|look at|inspect|eda)\b"
)
"""Requests that the column statistics themselves answer ("summarise this csv")."""
"""When the question names what the table does not have: the columns are described, the question is not answered."""


def describe_column(values: list[Any]) -> dict[str, Any]:
    """Exact statistics of one column: numeric (sum, mean, median, min, max, stdev) or categorical (top values).
    In a numeric column, markers such as ``n/a`` count as missing."""
    numbers = numbers_of(values)
    if numbers is not None:
        total = sum(numbers, Decimal(0))
        return dict(
            count=len(numbers),
            missing=len(values) - len(numbers),
            type="numeric",
            sum=as_number(total),
            mean=as_number(total / len(numbers)),
            median=as_number(statistics.median(numbers)),
            min=as_number(min(numbers)),
            max=as_number(max(numbers)),
            stdev=as_number(statistics.stdev(numbers)) if len(numbers) > 1 else 0,
        )
    present = [v for v in values if v not in (None, "")]
    counts: dict[str, int] = {}
    for value in present:
        counts[str(value)] = counts.get(str(value), 0) + 1
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:5]
    return {
        "count": len(present),
        "missing": len(values) - len(present),
        "type": "categorical",
        "unique": len(counts),
        "top": [{"value": v, "count": c} for v, c in top],
    }


def describe_identifier(values: list[Any]) -> dict[str, Any]:
    """An identifier column (``order_id``): how many values, how many different, the range; never a sum or a mean,
    which would read as quantities."""
    numbers = numbers_of(values) or []
    return {
        "count": len(numbers),
        "missing": len(values) - len(numbers),
        "type": "identifier",
        "unique": len({n.normalize() for n in numbers}),
        "min": as_number(min(numbers)) if numbers else None,
        "max": as_number(max(numbers)) if numbers else None,
    }


def describe(rows: list[Row], columns: list[str] | None = None, identifiers: list[str] | None = None) -> dict[str, Any]:
    names = columns if columns is not None else list(dict.fromkeys(key for row in rows for key in row))
    labels = set(identifiers or [])
    return {
        "rows": len(rows),
        "columns": {
            c: (describe_identifier if c in labels else describe_column)([row.get(c) for row in rows]) for c in names
        },
    }


def _sql_of(task: Task) -> str | None:
    for holder in (task.input if isinstance(task.input, dict) else {}, task.context):
        sql = holder.get("sql")
        if isinstance(sql, str) and sql.strip():
            return sql
    return None


def _payload_of(task: Task) -> Any:
    """The input payload, else a table pasted into the task text (rows), else ``None``."""
    return task.input if task.input is not None else pasted_table(task.description)


def _query_of(task: Task, table: Table) -> Query:
    for holder in (task.input if isinstance(task.input, dict) else {}, task.context):
        if "query" in holder:
            return query_from_spec(holder["query"], table)
    return parse_query(request_of(task), table)


def request_of(task: Task) -> str:
    """What the task asks, without a table pasted into its text."""
    return task.description if task.input is not None else split_pasted(task.description).request


def analyse(task: Task, base: Path | None) -> dict[str, Any] | None:
    """The exact part of the work (parse, describe, query): blocking, so the expert runs it in a worker thread.
    ``None`` when the data has no rows."""
    payload = _payload_of(task)
    sql = _sql_of(task)
    if isinstance(payload, dict) and "sqlite" in payload and sql is not None:
        payload = {**payload, "sql": sql}
    table = load_table(payload, base=base)
    if not table.rows:
        return None
    report: dict[str, Any] = describe(table.rows, table.columns, identifier_columns(table))
    beyond = [f"{name} of column '{column}'" for column, stats in report["columns"].items() for name in _nulled(stats)]
    numeric = numeric_columns(table)
    numeric_part = f"{len(numeric)} numeric: {', '.join(numeric)}" if numeric else "none numeric"
    report["summary"] = f"{report['rows']} rows, {len(table.columns)} columns ({numeric_part})"
    if table.sql is not None:
        report["sql"] = table.sql
    elif sql is not None:
        result = sql_over_rows(table, sql)
        for index, row in enumerate(result.rows[:MAX_RESULT_ROWS], start=1):
            beyond.extend(f"{name} of result row {index}" for name in _nulled(row))
        report.update(sql=sql, result=result.rows[:MAX_RESULT_ROWS], result_rows=len(result.rows))
        report["summary"] += f"; SQL returned {len(result.rows)} rows"
    else:
        query = _query_of(task, table)
        problems = _problems(query, table)
        if problems:
            report["problems"] = problems
            report["summary"] += "; cannot answer: " + "; ".join(problems)
        elif query.unclear:
            report["query"] = query.as_dict()  # what was understood, not run: it would answer another question
            report["not_understood"] = (
                "; ".join(query.unclear) + ": the column statistics are shown instead of a query that leaves it out"
            )
            report["summary"] += "; question not understood as a query: column statistics only"
        elif query.empty and not DESCRIBE_WORDS.search(request_of(task).lower()):
            report["not_understood"] = (
                "the question names no filter, group or aggregate this expert computes (sum, mean, count, distinct,"
                " share, min, max, median, stdev, ranking): the column statistics are shown instead"
            )
            report["summary"] += "; question not understood as a query: column statistics only"
        elif not query.empty:
            rows, matched, groups = run_query(table, query)
            for row in rows:
                beyond.extend(f"{name}{_group_label(row, query.group_by)}" for name in _nulled(row))
            report.update(query=query.as_dict(), matched_rows=matched, result=rows[:MAX_RESULT_ROWS])
            report["summary"] += f"; {_describe_query(query, matched, groups)}"
            report["summary"] += _ranked(query, rows) + _missing(query, report["columns"])
            _add_notes(report, query.notes)
    if table.nested:
        names = ", ".join(f"'{column}'" for column in table.nested)
        _add_notes(report, [f"lists and objects in {names} are read as their JSON text"])
    if beyond:
        report["beyond_range"] = beyond
        _add_notes(report, [_beyond_range_note(beyond)])
    return report


def _beyond_range_note(beyond: list[str]) -> str:
    named = ", ".join(beyond[:NAMED_BEYOND_RANGE])
    if len(beyond) > NAMED_BEYOND_RANGE:
        named += f" and {len(beyond) - NAMED_BEYOND_RANGE} more"
    return f"{named}: beyond the largest number JSON can carry (about 1.8e308), shown as null"


def _add_notes(report: dict[str, Any], notes: list[str]) -> None:
    if notes:
        report.setdefault("notes", []).extend(notes)
        report["summary"] += "".join(f"; {note}" for note in notes)


def _nulled(values: dict[str, Any]) -> list[str]:
    """The keys of ``values`` whose numbers went beyond a float's range (a total of ``1e308`` and ``1e308``), each
    set to ``None``: JSON cannot carry them, and infinity would be a wrong answer."""
    infinite = [key for key, value in values.items() if isinstance(value, float) and not math.isfinite(value)]
    for key in infinite:
        values[key] = None
    return infinite


def _group_label(row: Row, group_by: list[str]) -> str:
    return f" for {', '.join(f'{column} = {row[column]}' for column in group_by)}" if group_by else ""


def _problems(query: Query, table: Table) -> list[str]:
    """What the question names that the table cannot answer: answering something else instead would mislead."""
    problems = []
    if query.unknown:
        names = ", ".join(f"'{name}'" for name in query.unknown)
        problems.append(f"the table has no column {names} (columns: {', '.join(table.columns)})")
    for condition in query.filters:
        if condition.orders_text:
            problems.append(
                f"the filter {condition.column} {condition.op} {condition.value!r} compares text: give a number or"
                " a date (YYYY-MM-DD)"
            )
    for column in query.not_quantities:
        problems.append(
            f"column '{column}' holds identifiers, not quantities: their mean, median or deviation means nothing"
            f" (ask how many different {column} there are)"
        )
    for column in query.not_numeric:
        sample = next(
            (v for v in (row.get(column) for row in table.rows) if not is_missing(v) and to_decimal(v) is None), None
        )
        why = "beyond the range of numbers that can be reported" if _too_large(sample) else "not a number"
        problems.append(f"column '{column}' does not hold numbers ({sample!r} is {why})")
    return problems


def _too_large(value: Any) -> bool:
    try:
        return Decimal(str(value).strip().replace(",", "")).is_finite()
    except ArithmeticError:
        return False


def _ranked(query: Query, rows: list[Row]) -> str:
    if query.order is None or query.sort_by is not None or not rows or not query.aggregates:
        return ""
    function, column = query.aggregates[0]
    name = result_name(function, column)
    best = rows[0][name]
    if best is None:
        return ""
    winners = [" / ".join(str(row[c]) for c in query.group_by) for row in rows if row[name] == best]
    word = "highest" if query.order == "desc" else "lowest"
    return f"; {word} {function}({column or '*'}): {', '.join(winners)} ({best})"


def _missing(query: Query, columns: dict[str, Any]) -> str:
    counts = {c: columns[c]["missing"] for _, c in query.aggregates if c is not None and columns[c]["missing"]}
    return "".join(f"; {n} missing {c} value(s) left out" for c, n in counts.items())


class DataAnalysisExpert(BaseExpert):
    id = "data-analysis"
    name = "Data Analysis Expert"
    version = "0.2.0"
    description = (
        "Exact statistics, filters and group-by over CSV, JSON or SQLite data; the reasoning core explains on request."
    )
    capabilities = (
        "data",
        "dataset",
        "csv",
        "json",
        "statistics",
        "average",
        "mean",
        "median",
        "sum",
        "analyze",
        "analyse",
        "analysis",
        "table",
        "column",
        "aggregate",
        "group by",
        "chart",
        "spreadsheet",
    )
    task_types = ("data", "data-analysis", "analysis")
    examples = ("compute the average price per category in this csv", "summarise the columns of this dataset")
    priority = 10

    def validate(self, task: Task) -> None:
        if _payload_of(task) is None:
            raise TaskError(
                "data-analysis needs an input payload (CSV text, JSON rows or a SQLite file); use --input FILE"
                " or paste the table into the task",
                task_id=task.id,
            )

    async def execute(self, task: Task) -> ExpertOutput:
        settings = self.context.settings
        base = settings.home if settings is not None else None
        report = await self.run_blocking(analyse, task, base)
        if report is None:
            return ExpertOutput({"rows": 0, "columns": {}, "summary": "The data has no rows."}, confidence=0.6)
        if report.get("problems"):
            return ExpertOutput(report, confidence=UNANSWERED_CONFIDENCE)
        confidence = NOT_UNDERSTOOD_CONFIDENCE if "not_understood" in report else 0.95
        if "beyond_range" in report:
            confidence = min(confidence, BEYOND_RANGE_CONFIDENCE)
        if task.context.get("explain") or mentions(task.description, EXPLAIN_WORDS):
            findings = {k: report[k] for k in ("summary", "query", "result", "columns") if k in report}
            thought = await think(
                self.context,
                expert_id=self.id,
                system=EXPLAIN_SYSTEM,
                prompt=f"Question: {task.description}\n\nComputed results (exact):\n"
                + json.dumps(findings, default=str)[:6000],
                temperature=0.2,
            )
            if thought.response is not None:
                report["explanation"] = thought.text
            report.update(thought.provenance())
        return ExpertOutput(report, confidence=confidence)


def _describe_query(query: Query, matched: int, groups: int) -> str:
    parts = []
    if query.filters:
        parts.append(" and ".join(f"{f.column} {f.op} {f.value}" for f in query.filters) + f" matched {matched} rows")
    if query.group_by:
        kept = ""
        if query.limit is not None and query.limit < groups:
            kept = f" ({'top' if query.order != 'asc' else 'bottom'} {query.limit} shown)"
        parts.append(f"{groups} groups by {', '.join(query.group_by)}{kept}")
    if query.aggregates:
        parts.append(", ".join(f"{fn}({col or '*'}){' %' if fn == 'share' else ''}" for fn, col in query.aggregates))
    if query.sort_by is not None:
        parts.append(f"sorted by {query.sort_by} ({'descending' if query.order == 'desc' else 'ascending'})")
    return "; ".join(parts)
