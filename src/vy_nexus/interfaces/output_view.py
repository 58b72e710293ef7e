"""An expert's output read as a person reads it, for the surfaces that show it as a page or a chat message (the
dashboard's task page, the OpenAI door): the answer in words, what checks it (the words it asserts that its source
lacks, static findings, the extractive summary, the passages it cites), the result rows, and the rest.

The built-in experts' conventions, in one place:

* the answer: ``answer`` (research, general, generated code), else the text written (``text``, writing), else the
  review of code (``review``), else the explanation of exact results asked for (``explanation``, data), else the
  ``summary`` line;
* ``findings``: records with ``line``, ``severity`` (``bug`` or ``warning``) and ``message`` (code);
* ``unsupported`` and ``checked_terms``: the terms the answer asserts that its source lacks, of how many;
* ``extractive``: a summary made of the source's own sentences (writing);
* ``result``: rows (data); ``columns``: statistics per column, shown when there are no rows;
* ``citations``: the passages, numbered ``[n]`` in the answer in order; ``cited`` and ``attributed`` say which the
  answer refers to (research).

Bookkeeping (statistics, the code's structure, the query spec, the model's provenance) is not part of the view: the
task record has it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

ANSWER_KEYS = ("answer", "text", "review", "explanation")
"""The fields that hold the answer in words, first found first: an answer, the text written, the review of code,
the explanation of exact results asked for (data)."""
BOOKKEEPING = frozenset(
    {
        "reasoning",
        "reasoning_error",
        "analysis",
        "statistics",
        "source_statistics",
        "mode",
        "grounding",
        "cited",
        "attributed",
        "query",
        "matched_rows",
        "rows",
        "attempts",
        "code",
        "notes",
    }
)
"""Fields the view leaves out: what the summary line already says (statistics, the code's structure, the query and
its notes, the grounding line), what the answer already holds (``code``), and the model's provenance."""
READ = frozenset(
    {"summary", "unsupported", "checked_terms", "extractive", "findings", "result", "columns", "citations"}
) | frozenset(ANSWER_KEYS)


@dataclass(frozen=True, slots=True)
class Source:
    """A passage the answer may cite as ``[number]``."""

    number: int
    name: str
    passage: str
    referenced: bool


@dataclass(frozen=True, slots=True)
class OutputView:
    answer: str
    """The answer in words (empty when the output has none)."""
    answer_key: str | None
    """The field ``answer`` came from; ``None`` for an output that is plain text or has no text at all."""
    summary: str | None = None
    """The summary line, when it is not the answer itself."""
    unsupported: tuple[str, ...] = ()
    """Terms the answer asserts that its source lacks, as the answer writes them."""
    checked_terms: int | None = None
    extractive: str | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    column_statistics: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per column, its statistics; empty when the output has result rows (they answer the question)."""
    sources: list[Source] = field(default_factory=list)
    other: dict[str, Any] = field(default_factory=dict)
    """Fields no convention covers (a plugin's), in the output's order."""

    @property
    def worded(self) -> bool:
        """Whether the answer is text the expert wrote (not only its summary line)."""
        return self.answer_key in ANSWER_KEYS or (self.answer_key is None and bool(self.answer))


def view(output: Any) -> OutputView:
    """How ``output`` reads. A string is the answer; a value that is not a mapping is one other field, ``output``."""
    if isinstance(output, str):
        return OutputView(answer=output, answer_key=None)
    if not isinstance(output, dict):
        return OutputView(answer="", answer_key=None, other={} if output is None else {"output": output})
    answer_key = next((key for key in (*ANSWER_KEYS, "summary") if isinstance(output.get(key), str)), None)
    summary = output.get("summary")
    rows = records(output.get("result"))
    return OutputView(
        answer=str(output[answer_key]) if answer_key is not None else "",
        answer_key=answer_key,
        summary=summary if isinstance(summary, str) and answer_key != "summary" else None,
        unsupported=tuple(str(term) for term in _list(output.get("unsupported"))),
        checked_terms=_count(output.get("checked_terms")),
        extractive=output["extractive"] if isinstance(output.get("extractive"), str) else None,
        findings=records(output.get("findings")),
        rows=rows,
        column_statistics={} if rows else _mappings(output.get("columns")),
        sources=_sources(output),
        other={key: value for key, value in output.items() if not _read(key, value)},
    )


def records(value: Any) -> list[dict[str, Any]]:
    """``value`` when it is a non-empty list of mappings (rows of a table), else nothing."""
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return value
    return []


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """Every key of ``rows``, in the order they first appear."""
    return [str(key) for key in dict.fromkeys(key for row in rows for key in row)]


def numeric(rows: list[dict[str, Any]], column: str) -> bool:
    """Whether every value in ``column`` is a number (or missing): shown right-aligned."""
    values = [row.get(column) for row in rows]
    return any(value is not None for value in values) and all(
        value is None or (isinstance(value, int | float) and not isinstance(value, bool)) for value in values
    )


def cell_text(value: Any) -> str:
    """A value as a table cell's text: missing is empty, a list of plain values is comma-separated, a list of flat
    records too (each as ``value:count``), anything else nested is compact JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if plain(value):
        return str(value)
    if isinstance(value, list) and all(map(plain, value)):
        return ", ".join(map(cell_text, value))
    if isinstance(value, list) and all(isinstance(item, dict) and all(map(plain, item.values())) for item in value):
        return ", ".join(":".join(map(cell_text, item.values())) for item in value)
    return json.dumps(value, ensure_ascii=False, default=str)


def plain(value: Any) -> bool:
    """Whether ``value`` is one JSON scalar (text, a number, true/false, null)."""
    return value is None or isinstance(value, str | int | float | bool)


def _read(key: str, value: Any) -> bool:
    """Whether the view shows ``key`` in a place of its own (or leaves it out on purpose)."""
    if key in BOOKKEEPING:
        return True
    if key in ("findings", "result"):
        return bool(records(value)) or value in ([], None)
    if key == "columns":
        return isinstance(value, dict) and (not value or bool(_mappings(value)))
    return key in READ


def _mappings(value: Any) -> dict[str, dict[str, Any]]:
    if isinstance(value, dict) and all(isinstance(item, dict) for item in value.values()):
        return {str(key): item for key, item in value.items()}
    return {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _sources(output: dict[str, Any]) -> list[Source]:
    cited = {number for key in ("cited", "attributed") for number in _list(output.get(key)) if isinstance(number, int)}
    return [
        Source(number, str(item.get("source", "")), str(item.get("passage", "")), number in cited)
        for number, item in enumerate(records(output.get("citations")), start=1)
    ]
