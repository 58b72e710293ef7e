"""Evidence from the task text itself: code, tables and long documents pasted into the request.

People paste what they want worked on straight into the task ("why does this crash?" followed by a traceback, a
CSV under "total by region", an article under "tl;dr"). ``split_pasted`` separates the *request* (the words
addressed to vy-nexus) from the pasted *material* and names its kinds, so that:

* the keyword strategy counts pasted code or a pasted table like an ``--input`` payload of that kind;
* the semantic strategy embeds the request plus a short description of what was pasted
  (``routing_text``), not 2 KiB of source whose first 128 tokens say little about the request.

Cheap by design (it runs for every routed task): line-based heuristics over at most ``MAX_SCAN_CHARS``, no parser.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from typing import Any

from vy_nexus.routing.payload import CODE, DOCUMENT, TABLE

MAX_SCAN_CHARS = 20_000
DOCUMENT_MIN_WORDS = 120
"""Prose longer than this (after code and tables are taken out) is a pasted document, not a request."""
PARAGRAPH_MIN_WORDS = 45
"""In a long text, a paragraph at least this long is part of the document; shorter ones are the request."""

DESCRIPTIONS = {CODE: "pasted source code", TABLE: "pasted data table", DOCUMENT: "pasted text document"}

FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
TABLE_FENCES = frozenset({"csv", "tsv", "table"})
TEXT_FENCES = frozenset({"text", "txt", "markdown", "md", "plain", "plaintext"})
STRONG_CODE = re.compile(
    r"^\s*(?:def \w+\s*\(|class \w+[(:]|async def |import [\w.]+|from [\w.]+ import |#include\b|"
    r"(?:public|private|protected|static)\s+[\w<>\[\]]+\s+\w+\s*\(|function\s*\w*\s*\(|fn \w+|func \w+|"
    r"package \w+|(?:const|let|var) \w+\s*=|SELECT\b.+\bFROM\b|CREATE TABLE\b|INSERT INTO\b|"
    r"Traceback \(most recent call last\)|\s*File \".+\", line \d+|@\w+(?:\(.*\))?$)"
)
WEAK_CODE = re.compile(
    r"(?:[;{}]\s*$|^\s*[})\]]|^\s*(?:return|if|elif|else|for|while|try|except|catch|with|print|echo|do|done|then|"
    r"fi|switch|case|break|continue|yield|await|raise|throw|assert)\b|^\s*\w+(?:\.\w+)*\s*(?:[-+*/]?=|\+\+)\s*\S|"
    r"^\s*\w+(?:\.\w+)*\(.*\)\s*;?$|^\s*(?:#|//|/\*|\*|>>>)|^\s*(?:WHERE|GROUP BY|ORDER BY|JOIN|FROM|LIMIT)\b|"
    r"^\w*(?:Error|Exception)\b:)"
)
MARKDOWN_ROW = re.compile(r"^\s*\|.*\|\s*$")
JSON_ROWS = re.compile(r"^\s*(?:\[\s*\{|\{\s*\"rows\"\s*:)")
INLINE_JSON_ROWS = re.compile(r"\[\s*\{\s*\"")
WORD = re.compile(r"\w+")
SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True, slots=True)
class Pasted:
    """A task text split into the request and the kinds of material pasted with it (first found first)."""

    request: str
    kinds: tuple[str, ...] = ()

    @property
    def kind(self) -> str | None:
        return self.kinds[0] if self.kinds else None

    def routing_text(self) -> str:
        """What a sentence encoder should see: the request, then what was pasted, in words."""
        described = ", ".join(DESCRIPTIONS[kind] for kind in self.kinds)
        if not described:
            return self.request
        return f"{self.request}\n({described})" if self.request else f"({described})"


def _fence_kind(language: str, body: str) -> str:
    language = language.lower()
    if language in TABLE_FENCES or (language == "json" and JSON_ROWS.match(body)):
        return TABLE
    if language in TEXT_FENCES:
        return DOCUMENT
    if language:
        return CODE
    if _csv_run(body) is not None:
        return TABLE
    if not _code_lines(body.splitlines()) and len(WORD.findall(body)) >= PARAGRAPH_MIN_WORDS:
        return DOCUMENT
    return CODE


def _code_lines(lines: list[str]) -> int:
    return sum(1 for line in lines if STRONG_CODE.match(line) or WEAK_CODE.search(line))


DELIMITERS = (",", "\t", ";")


def _delimiter_counts(line: str) -> tuple[int, int, int]:
    return line.count(","), line.count("\t"), line.count(";")


def _csv_run(text: str) -> tuple[int, int, str] | None:
    """(first line, end line, delimiter) of the first run of at least 3 lines with the same delimiter count."""
    lines = text.splitlines()
    for delimiter in range(3):
        start = 0
        while start < len(lines):
            count = _delimiter_counts(lines[start])[delimiter]
            end = start + 1
            while count and end < len(lines) and _delimiter_counts(lines[end])[delimiter] == count:
                end += 1
            short_cells = all(len(WORD.findall(line)) <= 3 * (count + 1) for line in lines[start:end])
            if count and end - start >= 3 and short_cells:
                return start, end, DELIMITERS[delimiter]
            start = end
    return None


def _take_lines(lines: list[str]) -> tuple[list[str], list[str]]:
    """(request lines, kinds found) after removing runs of code and table lines."""
    kinds: list[str] = []
    keep = [True] * len(lines)
    # Tables: Markdown rows, JSON rows, delimited runs.
    index = 0
    while index < len(lines):
        line = lines[index]
        if MARKDOWN_ROW.match(line) and index + 1 < len(lines) and MARKDOWN_ROW.match(lines[index + 1]):
            end = index
            while end < len(lines) and MARKDOWN_ROW.match(lines[end]):
                keep[end] = False
                end += 1
            kinds.append(TABLE)
            index = end
            continue
        inline = INLINE_JSON_ROWS.search(line)
        if inline and inline.start() > 0 and not JSON_ROWS.match(line):
            lines[index] = line[: inline.start()]  # "here is the data: [{...}]": the request keeps its words
            kinds.append(TABLE)
            index += 1
            continue
        if JSON_ROWS.match(line):
            end, depth = index, 0
            while end < len(lines) and lines[end].strip():  # to the closing bracket (strings are not parsed)
                depth += sum(lines[end].count(c) for c in "[{") - sum(lines[end].count(c) for c in "]}")
                keep[end] = False
                end += 1
                if depth <= 0:
                    break
            kinds.append(TABLE)
            index = end
            continue
        index += 1
    remaining = "\n".join(line if keep[i] else "" for i, line in enumerate(lines))
    run = _csv_run(remaining)
    if run is not None:
        for i in range(run[0], run[1]):
            keep[i] = False
        kinds.append(TABLE)
    # Code: a run holding a strong line, or two weak lines, with indented or blank lines between.
    index = 0
    while index < len(lines):
        if not keep[index] or not (STRONG_CODE.match(lines[index]) or WEAK_CODE.search(lines[index])):
            index += 1
            continue
        end = index
        strong = weak = 0
        while end < len(lines) and keep[end]:
            line = lines[end]
            if STRONG_CODE.match(line):
                strong += 1
            elif WEAK_CODE.search(line):
                weak += 1
            elif line.strip() and not line[:1].isspace():
                break
            end += 1
        if (strong and (strong + weak >= 2 or end - index >= 2 or _is_signature(lines[index]))) or weak >= 3:
            for i in range(index, end):
                keep[i] = False
            kinds.append(CODE)
        index = max(end, index + 1)
    return [line for i, line in enumerate(lines) if keep[i]], kinds


def _is_signature(line: str) -> bool:
    return bool(re.match(r"^\s*(?:def |class |async def |#include|import |from \S+ import )", line))


def _split_document(text: str) -> tuple[str, bool]:
    """(request, is a document) for prose: long paragraphs (or lines) are the document, short ones the request;
    one long unbroken text keeps its first and last sentence as the request."""
    words = len(WORD.findall(text))
    if words < PARAGRAPH_MIN_WORDS:
        return text, False
    blocks = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    if len(blocks) == 1:
        blocks = [line.strip() for line in text.splitlines() if line.strip()]
    short = [block for block in blocks if len(WORD.findall(block)) < PARAGRAPH_MIN_WORDS]
    if short and len(short) < len(blocks):
        return "\n".join(short), True
    if words < DOCUMENT_MIN_WORDS:
        return text, False
    sentences = [s for s in SENTENCE.split(" ".join(blocks)) if s]
    return (sentences[0] if len(sentences) == 1 else f"{sentences[0]} {sentences[-1]}"), True


FAST_PATH_MAX_CHARS = 200
"""Below this a single line cannot hold a document (``DOCUMENT_MIN_WORDS`` words need more characters)."""


PASTE_MARKS = re.compile(r"[\n`\[{|\t;]")
"""A line break, fence, bracket, table bar, tab or statement end: a sign of pasted material (one scan for them all)."""


def _plainly_a_request(sample: str) -> bool:
    """One short line without fences, brackets or a code statement: nothing in it can be pasted material."""
    return len(sample) <= FAST_PATH_MAX_CHARS and not PASTE_MARKS.search(sample) and not STRONG_CODE.match(sample)


def is_plain_request(text: str) -> bool:
    """Whether ``text``, once stripped, is one short line with nothing pasted in it: routing reads such a text
    as words only (the fast path below, or the full scan finding nothing), so its case and spacing do not change
    the decision (the routing cache keys on that)."""
    return len(text) <= MAX_SCAN_CHARS and _plainly_a_request(text.strip())


def pasted_kinds(text: str) -> tuple[str, ...]:
    """``split_pasted(text).kinds``, without building the split for a plain request (routing asks on every task)."""
    if _plainly_a_request(text[:MAX_SCAN_CHARS]):
        return ()
    return split_pasted(text).kinds


def split_pasted(text: str) -> Pasted:
    """The request and the kinds of material pasted in ``text`` (see the module docstring)."""
    sample = text[:MAX_SCAN_CHARS]
    if _plainly_a_request(sample):  # most tasks: one short line with nothing pasted (the hot path of routing)
        return Pasted(request=sample.strip(), kinds=())
    kinds: list[str] = []
    parts: list[str] = []
    position = 0
    for match in FENCE.finditer(sample):
        parts.append(sample[position : match.start()])
        kinds.append(_fence_kind(match.group(1), match.group(2)))
        position = match.end()
    parts.append(sample[position:])
    lines, line_kinds = _take_lines("".join(parts).splitlines())
    kinds.extend(line_kinds)
    request, is_document = _split_document("\n".join(lines).strip())
    if is_document:
        kinds.append(DOCUMENT)
    request = re.sub(r"\n{3,}", "\n\n", request).strip()
    return Pasted(request=request, kinds=tuple(dict.fromkeys(kinds)))


Rows = list[dict[str, Any]]


def _markdown_rows(lines: list[str]) -> Rows:
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    cells = [row for row in cells if not all(set(c) <= set("-: ") for c in row)]  # the |---| separator
    if not cells:  # nothing but separator rows: no header, no table
        return []
    header, body = cells[0], cells[1:]
    return [dict(zip(header, row, strict=False)) for row in body if len(row) == len(header)]


def _json_rows(text: str) -> Rows | None:
    try:
        data, _ = json.JSONDecoder().raw_decode(text)
    except (json.JSONDecodeError, RecursionError):  # brackets nested past the recursion limit are no table either
        return None
    if isinstance(data, dict):
        data = data.get("rows")
    if isinstance(data, list) and data and all(isinstance(row, dict) for row in data):
        return data
    return None


def _delimited_rows(text: str) -> Rows | None:
    run = _csv_run(text)
    if run is None:
        return None
    start, end, delimiter = run
    reader = csv.DictReader(text.splitlines()[start:end], delimiter=delimiter, skipinitialspace=True)
    return [dict(row) for row in reader]


def pasted_table(text: str) -> Rows | None:
    """The first table pasted in ``text`` as rows (CSV/TSV/semicolon lines, a Markdown table, JSON rows, in a
    fence or not), for an expert that works on the table the task carries in its text; ``None`` if there is none."""
    sample = text[:MAX_SCAN_CHARS]
    for match in FENCE.finditer(sample):
        if _fence_kind(match.group(1), match.group(2)) == TABLE:
            body = match.group(2).strip()
            header = body.splitlines()[0] if body else ""
            delimiter = max(DELIMITERS, key=header.count)
            rows = _json_rows(body) or [dict(r) for r in csv.DictReader(body.splitlines(), delimiter=delimiter)]
            if rows:
                return rows
    lines = sample.splitlines()
    for index, line in enumerate(lines[:-1]):
        if MARKDOWN_ROW.match(line) and MARKDOWN_ROW.match(lines[index + 1]):
            end = index
            while end < len(lines) and MARKDOWN_ROW.match(lines[end]):
                end += 1
            markdown = _markdown_rows(lines[index:end])
            if markdown:
                return markdown
    start = INLINE_JSON_ROWS.search(sample) or re.search(r"\{\s*\"rows\"\s*:", sample)
    if start is not None:
        found = _json_rows(sample[start.start() :])
        if found:
            return found
    return _delimited_rows(sample)
