"""The writing expert: drafts, rewrites and summarises with the reasoning core; reports text statistics.

Modes, chosen from the task's words: **count** (how many words/sentences/characters, word count, reading time,
readability: the exact statistics are the answer, no LLM), **summarise** (summarise, summary, tl;dr, shorten),
**rewrite** (rewrite, rephrase, proofread, edit, improve, polish, grammar, tone, simplify) and **draft** (anything
else). Summarise and rewrite work on the input text (``--input``, or ``{"documents": {name: text}}``, or the text
after the first colon of the request); draft writes from the request, and works on the input text when there is one
("translate this" with ``--input``). Statistics (words, sentences, paragraphs, Flesch reading ease, reading time)
are computed exactly for the source and for the result. A summary comes with an extractive summary computed from
the source (``extractive.py``: its most representative sentences, in order) and is checked against the source
(``grounding.py``): terms it asserts that the source lacks are listed as ``unsupported``, named in the summary line
and lower the confidence in proportion. Without a reasoning core the expert reports the statistics (and, to
summarise, the extractive summary) only.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.experts.builtin.extractive import extractive_summary
from vy_nexus.experts.builtin.grounding import check_grounding
from vy_nexus.experts.builtin.thinking import mentions, reasoning_core, require, think
from vy_nexus.tasks import Task

Mode = Literal["count", "summarise", "rewrite", "draft"]
COUNT_REQUEST = re.compile(
    r"\b(?:how\s+(?:many|long)\s+(?:words|sentences|characters|paragraphs)|word\s*count|count\s+(?:the\s+)?"
    r"(?:words|sentences|characters)|number\s+of\s+(?:words|sentences|characters|paragraphs)|reading\s+(?:time|ease"
    r"|level)|readability|flesch|how\s+long\s+(?:does\s+it\s+take\s+)?to\s+read)\b"
)
"""Requests the text statistics answer exactly ("how many words are in this text")."""
SUMMARISE_WORDS = ("summarise", "summarize", "summary", "tl;dr", "tldr", "shorten", "condense")
REWRITE_WORDS = (
    "rewrite", "rephrase", "proofread", "edit", "improve", "polish", "grammar", "tone", "simplify", "paraphrase",
)  # fmt: skip
SYSTEMS: dict[Mode, str] = {
    "summarise": "You summarise text faithfully and briefly. Answer with the summary only.",
    "rewrite": "You are an editor. Rewrite the text as asked, keeping its meaning. Answer with the new text only.",
    "draft": "You are a clear, friendly writer. Answer with the requested text only.",
}

WORD = re.compile(r"[A-Za-z0-9']+")
SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")
VOWEL_GROUP = re.compile(r"[aeiouy]+")
WORDS_PER_MINUTE = 230


def count_syllables(word: str) -> int:
    word = word.lower()
    groups = len(VOWEL_GROUP.findall(word))
    if word.endswith("e") and groups > 1 and not word.endswith(("le", "ee")):
        groups -= 1
    return max(1, groups)


def text_statistics(text: str) -> dict[str, Any]:
    words = WORD.findall(text)
    sentences = max(1, len(SENTENCE_END.findall(text))) if words else 0
    syllables = sum(count_syllables(w) for w in words)
    paragraphs = len([p for p in re.split(r"\n\s*\n", text) if p.strip()])
    stats: dict[str, Any] = {
        "characters": len(text),
        "words": len(words),
        "sentences": sentences,
        "paragraphs": paragraphs,
        "reading_time_seconds": round(len(words) / WORDS_PER_MINUTE * 60),
    }
    if words:
        # Flesch reading ease: 206.835 - 1.015 (words/sentence) - 84.6 (syllables/word)
        stats["flesch_reading_ease"] = round(
            206.835 - 1.015 * (len(words) / sentences) - 84.6 * (syllables / len(words)), 1
        )
        stats["average_sentence_words"] = round(len(words) / sentences, 1)
    return stats


class WritingExpert(BaseExpert):
    id = "writing"
    name = "Writing Expert"
    version = "0.2.0"
    description = "Drafts, rewrites and summarises text; reports text statistics and readability."
    capabilities = (
        "write",
        "writing",
        "essay",
        "article",
        "blog",
        "email",
        "letter",
        "draft",
        "rewrite",
        "summarize",
        "summarise",
        "summary",
        "proofread",
        "grammar",
        "tone",
        "story",
        "poem",
        "paragraph",
        "edit",
        "word count",
        "words",
        "readability",
        "reading time",
        "document",
    )
    task_types = ("writing", "text")
    examples = ("write a short email to my landlord", "summarise this article in three sentences")
    priority = 5

    async def execute(self, task: Task) -> ExpertOutput:
        mode = choose_mode(task.description)
        source = source_text(task, mode)
        if mode == "count":  # counted, not generated: a language model cannot count words
            stats = text_statistics(source)
            return ExpertOutput({"summary": _describe(stats, full=True), "statistics": stats, "mode": mode}, 0.95)
        if reasoning_core(self.context) is None:
            stats = text_statistics(source)
            output: dict[str, Any] = {"summary": _describe(stats), "statistics": stats, "mode": mode}
            if mode == "summarise":
                output["extractive"] = extractive_summary(source, task.description).text
            return ExpertOutput(output, confidence=0.5)
        on_text = mode != "draft" or handed_text(task) is not None  # "translate this" with --input: on that text
        prompt = f"{_instruction(task, mode)}\n\nText:\n{source}" if on_text else task.description
        thought = await think(self.context, expert_id=self.id, system=SYSTEMS[mode], prompt=prompt)
        response = require(thought, expert_id=self.id, task_id=task.id, what=f"{mode} text")
        text = response.text.strip()
        stats = text_statistics(text)
        output = {
            "summary": f"{mode}: {_describe(stats)}",
            "text": text,
            "mode": mode,
            "statistics": stats,
            **thought.provenance(),
        }
        if on_text:
            output["source_statistics"] = text_statistics(source)
        confidence = 0.75 if text and response.finish_reason == "stop" else 0.5
        if mode == "summarise":
            return checked_summary(output, source, task.description, confidence)
        return ExpertOutput(output, confidence=confidence)


def checked_summary(output: dict[str, Any], source: str, request: str, confidence: float) -> ExpertOutput:
    """The model's summary in ``output`` with the extractive summary beside it and the faithfulness check: terms
    it asserts that ``source`` lacks are listed (``unsupported``), named in the summary line, and lower the
    confidence in proportion."""
    grounding = check_grounding(output["text"], source, request=request)
    output["extractive"] = extractive_summary(source, request).text
    output.update(grounding.fields())
    if grounding.unsupported:
        output["summary"] += f"; {grounding.describe('the source')}"
    return ExpertOutput(output, confidence=grounding.scaled(confidence))


def choose_mode(request: str) -> Mode:
    if COUNT_REQUEST.search(request.lower()):
        return "count"
    if mentions(request, SUMMARISE_WORDS):
        return "summarise"
    if mentions(request, REWRITE_WORDS):
        return "rewrite"
    return "draft"


def handed_text(task: Task) -> str | None:
    """The text the task hands over to work on: a text input (``--input notes.txt``), or the documents of
    ``{"documents": {name: text}}`` one after the other; ``None`` when it hands over none."""
    if isinstance(task.input, dict) and isinstance(task.input.get("documents"), dict):
        text = "\n\n".join(str(document) for document in task.input["documents"].values())
    else:
        text = task.input if isinstance(task.input, str) else ""
    return text if text.strip() else None


def source_text(task: Task, mode: Mode) -> str:
    """The text to work on: the input payload, else what follows the request's first colon, else the request."""
    handed = handed_text(task)
    if handed is not None:
        return handed
    if mode != "draft" and ":" in task.description:
        tail = task.description.partition(":")[2]
        if tail.strip():
            return tail.strip()
    return task.description


def _instruction(task: Task, mode: Mode) -> str:
    if handed_text(task) is not None:
        return task.description
    head = task.description.partition(":")[0]
    return head if ":" in task.description else ("Summarise this text." if mode == "summarise" else "Rewrite this.")


def _describe(stats: dict[str, Any], *, full: bool = False) -> str:
    summary = f"{_counted(stats['words'], 'word')} in {_counted(stats['sentences'], 'sentence')}"
    if full:
        summary += (
            f" ({_counted(stats['paragraphs'], 'paragraph')}, {_counted(stats['characters'], 'character')};"
            f" about {stats['reading_time_seconds']} s to read)"
        )
    if "flesch_reading_ease" in stats:
        summary += f"; Flesch reading ease {stats['flesch_reading_ease']}"
    return summary


def _counted(number: int, noun: str) -> str:
    return f"{number} {noun if number == 1 else noun + 's'}"
