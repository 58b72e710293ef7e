"""The writing expert: text statistics and readability of a draft."""

from __future__ import annotations

import re
from typing import Any

from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.tasks import Task

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
    version = "0.1.0"
    description = "Drafts, rewrites and summarises text; reports text statistics and readability."
    capabilities = (
        "write", "writing", "essay", "article", "blog", "email", "letter", "draft", "rewrite", "summarize",
        "summarise", "summary", "proofread", "grammar", "tone", "story", "poem", "paragraph", "edit",
    )
    task_types = ("writing", "text")
    examples = ("write a short email to my landlord", "summarise this article in three sentences")
    priority = 5

    async def execute(self, task: Task) -> ExpertOutput:
        text = task.input if isinstance(task.input, str) else task.description
        stats = text_statistics(text)
        summary = f"{stats['words']} words in {stats['sentences']} sentences"
        if "flesch_reading_ease" in stats:
            summary += f"; Flesch reading ease {stats['flesch_reading_ease']}"
        return ExpertOutput({"summary": summary, "statistics": stats}, confidence=0.7)
