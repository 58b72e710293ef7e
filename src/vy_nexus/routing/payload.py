"""What kind of input payload a task carries, as routing evidence: a table, code, a prose document, or nothing telling.

Cheap by design (it runs for every routed task, cached or not): only the first KiB of text are looked at, with
line-based heuristics instead of a parser.
"""

from __future__ import annotations

import csv
import re
from itertools import islice
from typing import Any

TABLE = "table"
CODE = "code"
DOCUMENT = "document"
SAMPLE_CHARS = 1024
DOCUMENT_MIN_WORDS = 20
"""Prose with fewer words (a name, a value, a one-line note) says too little to be a document worth routing by."""
PROSE_WORD = re.compile(r"[^\W\d_][\w'’-]*")
CODE_LINE = re.compile(
    r"^\s*(?:def |class |import |from \S+ import |return\b|async def |@\w|#include\b|function\b|const |let |"
    r"public |private |fn |func |package |SELECT\b|CREATE TABLE\b)",
    re.MULTILINE,
)
FENCED_BLOCK = re.compile(r"^[ \t]*```.*?(?:^[ \t]*```[^\n]*$|\Z)", re.DOTALL | re.MULTILINE)
"""A Markdown fenced block: a document's code example, not what the document is."""
TABLE_KEYS = frozenset({"rows", "csv", "sqlite"})
DOCUMENTS_KEY = "documents"
"""``{"documents": {name: text}}``: the documents the research expert reads besides its folder."""


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
    source text, ``"document"`` for prose (a text of ``DOCUMENT_MIN_WORDS`` words or more that is neither, or
    ``{"documents": {...}}``), else ``None``."""
    if isinstance(payload, list):
        return TABLE if payload and all(isinstance(row, dict) for row in payload[:20]) else None
    if isinstance(payload, dict):
        if TABLE_KEYS & payload.keys():
            return TABLE
        code = payload.get("code")
        if isinstance(code, str) and code.strip():
            return CODE
        documents = payload.get(DOCUMENTS_KEY)
        return DOCUMENT if isinstance(documents, dict) and documents else None
    if isinstance(payload, str):
        return _text_kind(payload[:SAMPLE_CHARS])
    return None


def _text_kind(sample: str) -> str | None:
    outside = FENCED_BLOCK.sub("", sample)  # a README's code examples do not make it code
    if CODE_LINE.search(outside):
        return CODE
    if _looks_like_csv(sample):
        return TABLE
    words = islice(PROSE_WORD.finditer(outside), DOCUMENT_MIN_WORDS)  # enough words is enough: stop counting there
    if sum(1 for _ in words) == DOCUMENT_MIN_WORDS:
        return DOCUMENT
    return CODE if outside != sample else None  # fenced code with a few words around it
