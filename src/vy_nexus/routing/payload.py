"""What kind of input payload a task carries, as routing evidence: a table, code, or nothing telling.

Cheap by design (it runs for every routed task, cached or not): only the first KiB of text are looked at, with
line-based heuristics instead of a parser.
"""

from __future__ import annotations

import csv
import re
from typing import Any

TABLE = "table"
CODE = "code"
SAMPLE_CHARS = 1024
CODE_LINE = re.compile(
    r"^\s*(?:def |class |import |from \S+ import |return\b|async def |@\w|#include\b|function\b|const |let |"
    r"public |private |fn |func |package |SELECT\b|CREATE TABLE\b)",
    re.MULTILINE,
)
TABLE_KEYS = frozenset({"rows", "csv", "sqlite"})


def _looks_like_csv(text: str) -> bool:
    lines = [line for line in text.splitlines()[:8] if line.strip()][:6]
    if len(lines) < 2:
        return False
    complete = lines[:-1] if len(lines) > 2 else lines  # the sample may cut the last line short
    for delimiter in (",", "\t", ";", "|"):
        counts = {len(row) for row in csv.reader(complete, delimiter=delimiter)}  # quoted "1,200" is one cell
        if len(counts) == 1 and counts != {1}:
            return True
    return False


def payload_kind(payload: Any) -> str | None:
    """``"table"`` for rows (list of objects, ``{"rows"|"csv"|"sqlite": ...}``, CSV/TSV text), ``"code"`` for
    source text, else ``None``."""
    if isinstance(payload, list):
        return TABLE if payload and all(isinstance(row, dict) for row in payload[:20]) else None
    if isinstance(payload, dict):
        if TABLE_KEYS & payload.keys():
            return TABLE
        code = payload.get("code")
        return CODE if isinstance(code, str) and code.strip() else None
    if isinstance(payload, str):
        sample = payload[:SAMPLE_CHARS]
        if CODE_LINE.search(sample):
            return CODE
        if _looks_like_csv(sample):
            return TABLE
    return None
