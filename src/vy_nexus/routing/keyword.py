"""Keyword/capability routing: find capability phrases in the task text by whole-word matching.

Matching never scans the experts or the capability list. The text is split into word tokens (``c++``, ``c#``,
``node.js`` stay whole; ``javascript`` never yields ``java``; ``good`` never yields ``go``), every run of 1..N
tokens is looked up in the registry's capability index, and each hit points at the experts that declared it.

How confidence is computed (documented in docs/routing.md):

* evidence(expert) = Σ over distinct matched capabilities of the number of words in the capability
  (a two-word phrase like ``unit test`` is stronger than ``test``), plus ``TASK_TYPE_EVIDENCE`` when the task's
  type is one the expert declares in ``task_types`` (a generic task that asks what a handed-over document says is
  of type ``question``, see ``routing/document_questions.py``); the kind of input payload (``table`` for
  rows/CSV, ``code`` for source text, ``document`` for prose, see ``routing/payload.py``) and the kinds of material
  pasted into the task text (code, a CSV/Markdown/JSON table, a document, see ``routing/pasted.py``) each count as
  one more matched capability word;
* strength = 1 - 0.3 ** evidence — one single-word hit gives 0.70, two give 0.91, three 0.97;
* share = evidence / Σ evidence of all candidates — how clearly this expert stands out;
* confidence = strength × (0.5 + 0.5 × share) — a lone candidate keeps its strength; two candidates tied on the
  same evidence each get 75% of it, so an ambiguous task scores lower than a clear one.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection

from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.routing.document_questions import QUESTION_TASK_TYPE, is_question_about_a_document
from vy_nexus.routing.pasted import pasted_kinds
from vy_nexus.routing.payload import CODE, payload_kind
from vy_nexus.routing.strategy import Scores
from vy_nexus.tasks import Task

TOKEN_PATTERN = re.compile(r"[a-z0-9_][a-z0-9_+#]*(?:[./-][a-z0-9_+#]+)*")
MAX_PHRASE_WORDS = 4
TASK_TYPE_EVIDENCE = 2.0
DOUBT_PER_EVIDENCE = 0.3
GENERIC_TASK_TYPE = "general"
"""The default task type says nothing about the task, so it adds no evidence."""


def tokenize(text: str) -> list[str]:
    return TOKEN_PATTERN.findall(text.lower())


def normalise_capability(capability: str) -> str:
    return " ".join(tokenize(capability))


def _singular(word: str) -> str | None:
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return None


class PhraseIndex:
    """Known capability phrases, with every word-prefix of them, so the scan of a text stops extending a run of
    words as soon as no known phrase starts that way (most words cost one set lookup)."""

    def __init__(self, phrases: Collection[str], max_words: int = MAX_PHRASE_WORDS) -> None:
        self.phrases = frozenset(phrases)
        self.max_words = max_words
        prefixes: set[str] = set()
        for phrase in self.phrases:
            words = phrase.split(" ")
            prefixes.update(" ".join(words[:n]) for n in range(1, len(words) + 1))
        self._prefixes = frozenset(prefixes)

    def find(self, text: str) -> list[str]:
        """Phrases that occur in ``text`` as whole words (a plural last word counts), in order of first appearance."""
        tokens = tokenize(text)
        known, prefixes = self.phrases, self._prefixes
        found: dict[str, None] = {}
        count = len(tokens)
        for start in range(count):
            phrase = ""
            for end in range(start, min(start + self.max_words, count)):
                word = tokens[end]
                stem = phrase + " " if phrase else ""
                phrase = stem + word
                if phrase in known:
                    found.setdefault(phrase)
                else:
                    singular = _singular(word)
                    if singular is not None and stem + singular in known:
                        found.setdefault(stem + singular)
                if phrase not in prefixes:
                    break
        return list(found)


def find_phrases(text: str, known: Collection[str], max_words: int = MAX_PHRASE_WORDS) -> list[str]:
    """Capability phrases from ``known`` that occur in ``text`` as whole words, in order of first appearance."""
    return PhraseIndex(known, max_words).find(text)


def confidence_from_evidence(evidence: dict[str, float]) -> dict[str, float]:
    total = sum(evidence.values())
    if total <= 0:
        return {}
    return {
        expert_id: (1.0 - DOUBT_PER_EVIDENCE**value) * (0.5 + 0.5 * value / total)
        for expert_id, value in evidence.items()
        if value > 0
    }


class KeywordStrategy:
    """Routes by capability phrases in the text and by task type, through the registry's indexes."""

    name = "keyword"

    def __init__(self, registry: ExpertRegistry, *, note: str = "") -> None:
        """``note`` is added to every reason (why keyword routing is in use when another strategy was meant)."""
        self._registry = registry
        self.note = note
        self._known: dict[str, str] = {}
        self._index = PhraseIndex(())
        self._known_version = -1

    def _capabilities(self) -> dict[str, str]:
        """Normalised phrase -> capability as indexed by the registry; rebuilt only when experts change."""
        if self._known_version != self._registry.version:
            self._known_version = self._registry.version
            self._known = {normalise_capability(c): c for c in self._registry.capabilities()}
            self._index = PhraseIndex(self._known)
        return self._known

    def task_type(self, task: Task) -> str:
        """The task's type, or ``question`` for a generic task that asks what a handed-over document says
        (``routing/document_questions.py``): the experts that answer questions take it, not the ones that rewrite."""
        if task.type != GENERIC_TASK_TYPE:
            return task.type
        return self._task_type(task, payload_kind(task.input), pasted_kinds(task.description))

    @staticmethod
    def _task_type(task: Task, kind: str | None, pasted: tuple[str, ...]) -> str:
        """``task_type`` with the kinds of the input and of pasted material already known."""
        if task.type == GENERIC_TASK_TYPE and is_question_about_a_document(task, kind, pasted):
            return QUESTION_TASK_TYPE
        return task.type

    def typed_experts(self, task: Task) -> frozenset[str]:
        """The experts that declare the task's type (none for the generic type)."""
        return self._experts_of_type(self.task_type(task))

    def _experts_of_type(self, task_type: str) -> frozenset[str]:
        return self._registry.by_task_type(task_type) if task_type != GENERIC_TASK_TYPE else frozenset()

    def score(self, task: Task) -> Scores:
        known = self._capabilities()
        text = task.description
        hint = task.context.get("capabilities")
        if isinstance(hint, list):
            text = " ".join([text, *(str(h) for h in hint)])
        phrases = self._index.find(text)
        kind = payload_kind(task.input)
        pasted = pasted_kinds(task.description)
        evidence_of_kind = {k: "pasted in the text" for k in pasted if k in known} if pasted else {}
        if kind is not None and kind in known:
            evidence_of_kind[kind] = "the input"
        if evidence_of_kind:
            phrases.extend(k for k in evidence_of_kind if k not in phrases)
        evidence: dict[str, float] = defaultdict(float)
        for phrase in phrases:
            weight = float(len(phrase.split()))
            for expert_id in self._registry.by_capability(known[phrase]):
                evidence[expert_id] += weight
        task_type = self._task_type(task, kind, pasted)
        typed = self._experts_of_type(task_type)
        for expert_id in typed:
            evidence[expert_id] += TASK_TYPE_EVIDENCE
        confidences = confidence_from_evidence(evidence)
        parts = []
        if phrases:
            parts.append("matched " + ", ".join([f"'{p}'" for p in phrases]))
        if evidence_of_kind:
            parts.extend(
                f"the input looks like {'' if k == CODE else 'a '}{k}" if where == "the input" else f"{k} {where}"
                for k, where in evidence_of_kind.items()
            )
        if typed:
            inferred = "a question about the document, " if task_type != task.type else ""
            parts.append(f"{inferred}task type '{task_type}'")
        reason = "; ".join(parts) if parts else "no capability matched"
        if self.note:
            reason = f"{reason} ({self.note})"
        return Scores(confidences=confidences, matched=phrases, reason=reason)
