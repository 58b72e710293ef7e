"""The data-analysis expert: exact statistics of a CSV or JSON payload."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from typing import Any

from vy_nexus.errors import TaskError
from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.tasks import Task

Row = dict[str, Any]


def _to_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip().replace(",", "")) if value.strip() else None
        except ValueError:
            return None
        return number if number is not None and math.isfinite(number) else None
    return None


def parse_rows(payload: Any) -> list[Row]:
    """Rows from a list of objects, ``{"rows": [...]}``, ``{"csv": "..."}``/CSV text, or JSON text."""
    if isinstance(payload, dict):
        if "rows" in payload:
            payload = payload["rows"]
        elif "csv" in payload:
            payload = payload["csv"]
    if isinstance(payload, str):
        text = payload.strip()
        if text.startswith(("[", "{")):
            try:
                return parse_rows(json.loads(text))
            except json.JSONDecodeError as exc:
                raise TaskError(f"the input looks like JSON but is not valid: {exc.msg} at line {exc.lineno}") from exc
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames:
            raise TaskError("the CSV input has no header row")
        return [dict(row) for row in reader]
    if isinstance(payload, list):
        if not all(isinstance(row, dict) for row in payload):
            raise TaskError("JSON data must be a list of objects (one object per row)")
        return [dict(row) for row in payload]
    raise TaskError("data-analysis needs a CSV or JSON payload: a list of objects, CSV text, or {'rows': [...]}")


def describe_column(values: list[Any]) -> dict[str, Any]:
    numbers = [n for n in (_to_number(v) for v in values) if n is not None]
    present = [v for v in values if v not in (None, "")]
    stats: dict[str, Any] = {"count": len(present), "missing": len(values) - len(present)}
    if numbers and len(numbers) == len(present):
        stats.update(
            type="numeric",
            sum=math.fsum(numbers),
            mean=statistics.fmean(numbers),
            median=statistics.median(numbers),
            min=min(numbers),
            max=max(numbers),
            stdev=statistics.stdev(numbers) if len(numbers) > 1 else 0.0,
        )
    else:
        counts: dict[str, int] = {}
        for value in present:
            counts[str(value)] = counts.get(str(value), 0) + 1
        top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:5]
        stats.update(type="categorical", unique=len(counts), top=[{"value": v, "count": c} for v, c in top])
    return stats


def describe(rows: list[Row]) -> dict[str, Any]:
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    return {
        "rows": len(rows),
        "columns": {column: describe_column([row.get(column) for row in rows]) for column in columns},
    }


class DataAnalysisExpert(BaseExpert):
    id = "data-analysis"
    name = "Data Analysis Expert"
    version = "0.1.0"
    description = "Computes exact statistics of CSV/JSON data: counts, sums, means, medians, spread, top values."
    capabilities = (
        "data", "dataset", "csv", "json", "statistics", "average", "mean", "median", "sum", "analyze", "analyse",
        "analysis", "table", "column", "aggregate", "group by", "chart", "spreadsheet",
    )
    task_types = ("data", "data-analysis", "analysis")
    examples = ("compute the average price per category in this csv", "summarise the columns of this dataset")
    priority = 10

    def validate(self, task: Task) -> None:
        if task.input is None:
            raise TaskError("data-analysis needs an input payload (CSV text or JSON rows); use --input FILE",
                            task_id=task.id)

    async def execute(self, task: Task) -> ExpertOutput:
        rows = parse_rows(task.input)
        if not rows:
            return ExpertOutput({"rows": 0, "columns": {}, "summary": "The data has no rows."}, confidence=0.6)
        report = describe(rows)
        numeric = [c for c, s in report["columns"].items() if s["type"] == "numeric"]
        report["summary"] = (
            f"{report['rows']} rows, {len(report['columns'])} columns ({len(numeric)} numeric: {', '.join(numeric)})"
        )
        return ExpertOutput(report, confidence=0.95)
