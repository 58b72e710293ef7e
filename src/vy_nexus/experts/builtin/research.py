"""The research expert: answers from a local document folder, citing the passages it used.

1. Retrieve: BM25 over the paragraphs of the ``.md``/``.txt``/``.rst`` files in ``experts.documents_dir`` (relative
   to the home directory) plus the task's input: a text (``--input notes.txt``, named ``input``) or
   ``{"documents": {name: text}}``; with no input, a document pasted into the task's text (named ``pasted``: the
   words around it are the question, as ``routing/pasted.py`` splits them).
2. Answer: the reasoning core gets the top passages, numbered, and must answer from them only, citing ``[n]``.
   Citations the answer makes are checked against the passages it was given; an answer that cites none gets the
   citations its sentences' words point to (``grounding.cite_by_overlap``, listed as ``attributed``).
3. Check: what the answer asserts that no passage holds (``grounding.check_grounding``) is listed as
   ``unsupported`` and lowers the confidence in proportion.

A question about a handed-over document as a whole ("what are the key points", "list the main claims in this": its
words name nothing to look up) gets the document's opening passages, up to ``WHOLE_DOCUMENT_CHARS``, and so does a
question that refers to it ("this", "it", "the notes") in words none of its passages use ("when is the deadline in
this?" of notes that say "within a month"). Otherwise, with no matching passage the expert says so instead of
letting the model guess (naming the folder by its setting, never by its path on the server); without a reasoning
core (or when it fails) the answer is the passages themselves.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.experts.builtin.grounding import check_grounding, cite_by_overlap
from vy_nexus.experts.builtin.thinking import think
from vy_nexus.routing.pasted import split_pasted
from vy_nexus.routing.payload import DOCUMENT
from vy_nexus.tasks import Task

CITATION = re.compile(r"\[(\d{1,2})\]")
ANSWER_SYSTEM = (
    "Answer the question using only the numbered passages. Cite the passages you use like [1]. "
    "If the passages do not contain the answer, say that they do not."
)
MAX_PASSAGE_CHARS = 1200

TERM = re.compile(r"[a-z0-9]{2,}")
STOPWORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "for",
        "is",
        "are",
        "was",
        "were",
        "be",
        "what",
        "how",
        "why",
        "when",
        "who",
        "which",
        "does",
        "do",
        "did",
        "with",
        "about",
        "from",
        "that",
        "this",
        "these",
        "those",
        "it",
        "its",
        "as",
        "at",
        "by",
        "can",
        "i",
        "you",
        "me",
        "my",
        "your",
        "please",
        "tell",
        "find",
    ]
)
DOCUMENT_SUFFIXES = (".md", ".txt", ".rst")
INPUT_DOCUMENT = "input"
"""The name a text input goes by among the documents (its citations' ``source``)."""
PASTED_DOCUMENT = "pasted"
"""The name a document pasted into the task's text goes by among the documents."""
DOCUMENTS_FOLDER = "the documents folder (experts.documents_dir)"
"""How an answer names the document folder: its path on the server is no business of an API client."""
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
WHOLE_DOCUMENT_CHARS = 4000
"""How much of a handed-over document a question about it as a whole gets (its opening passages)."""
WHOLE_DOCUMENT_WORDS = frozenset((
    "key", "main", "point", "points", "claim", "claims", "argument", "arguments", "idea", "ideas", "theme", "themes",
    "topic", "topics", "conclusion", "conclusions", "takeaway", "takeaways", "gist", "summary", "summarise",
    "summarize", "overview", "outline", "highlights", "important", "list", "give", "say", "says", "said", "mean",
    "means", "explain", "describe", "text", "document", "article", "passage", "notes", "here", "all", "tl", "dr",
    "tldr",
))  # fmt: skip
"""Words that ask something of a document as a whole rather than name something to look up in it."""
REFERS_TO_THE_DOCUMENT = re.compile(
    r"\b(?:this|it|here|these|the\s+(?:text|document|notes?|article|passage|report|e-?mail|letter|file|memo|minutes))\b"
)
"""Words by which a question points at the document handed over with it."""


def terms(text: str) -> list[str]:
    return [t for t in TERM.findall(text.lower()) if t not in STOPWORDS]


@dataclass(frozen=True, slots=True)
class Passage:
    source: str
    text: str
    score: float


def split_passages(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def rank_passages(question: str, documents: dict[str, str], limit: int = 3) -> list[Passage]:
    """BM25-style ranking of paragraphs across documents."""
    passages = [(source, p) for source, text in documents.items() for p in split_passages(text)]
    if not passages:
        return []
    tokenised = [Counter(terms(p)) for _, p in passages]
    average_length = sum(sum(c.values()) for c in tokenised) / len(tokenised) or 1.0
    query = set(terms(question))
    document_frequency = {q: sum(1 for c in tokenised if q in c) for q in query}
    k1, b = 1.5, 0.75
    ranked = []
    for (source, text), counts in zip(passages, tokenised, strict=True):
        length = sum(counts.values())
        score = 0.0
        for q in query:
            tf = counts.get(q, 0)
            if not tf:
                continue
            idf = math.log(1 + (len(passages) - document_frequency[q] + 0.5) / (document_frequency[q] + 0.5))
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / average_length))
        if score > 0:
            ranked.append(Passage(source, text, round(score, 4)))
    ranked.sort(key=lambda p: -p.score)
    return ranked[:limit]


def load_documents(folder: Path) -> dict[str, str]:
    documents: dict[str, str] = {}
    if not folder.is_dir():
        return documents
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in DOCUMENT_SUFFIXES and path.is_file() and path.stat().st_size <= MAX_DOCUMENT_BYTES:
            documents[str(path.relative_to(folder))] = path.read_text(encoding="utf-8", errors="replace")
    return documents


@dataclass(frozen=True, slots=True)
class Request:
    """What a task asks (``question``) and the documents handed over with it (``handed``, by name)."""

    question: str
    handed: dict[str, str]


def read_request(task: Task) -> Request:
    """The question and the documents the user handed over with it: a text input, ``{"documents": {name: text}}``,
    or, when there is no input, a document pasted into the task's text (the words around it are the question)."""
    if isinstance(task.input, dict) and isinstance(task.input.get("documents"), dict):
        return Request(task.description, {str(k): str(v) for k, v in task.input["documents"].items()})
    if isinstance(task.input, str):
        return Request(task.description, {INPUT_DOCUMENT: task.input})
    if task.input is None:
        pasted = pasted_document(task.description)
        if pasted is not None:
            question, document = pasted
            return Request(question, {PASTED_DOCUMENT: document})
    return Request(task.description, {})


def pasted_document(text: str) -> tuple[str, str] | None:
    """(question, document) of a task text with a document pasted into it, ``None`` when it holds none. The document
    is the text's blocks that ``split_pasted`` did not keep as the request; one long run of prose is all document
    (its first and last sentence are then the question)."""
    pasted = split_pasted(text)
    if DOCUMENT not in pasted.kinds:
        return None
    blocks = split_passages(text)
    if len(blocks) == 1:
        blocks = [line.strip() for line in text.splitlines() if line.strip()]
    body = [block for block in blocks if block not in pasted.request]
    return pasted.request or text.strip(), "\n\n".join(body) if body else text.strip()


def opening_passages(documents: dict[str, str], budget: int = WHOLE_DOCUMENT_CHARS) -> list[Passage]:
    """The documents' passages in order, up to ``budget`` characters (at least one passage)."""
    passages: list[Passage] = []
    used = 0
    for source, text in documents.items():
        for passage in split_passages(text):
            if passages and used + len(passage) > budget:
                return passages
            passages.append(Passage(source, passage, 0.0))
            used += len(passage)
    return passages


def asks_about_the_whole(question: str) -> bool:
    """Whether the question names nothing to look up, only the document and what to do with it ("what are the key
    points", "list the main claims in this", "what is this about")."""
    return not set(terms(question)) - WHOLE_DOCUMENT_WORDS


def retrieve(request: Request, folder: Path | None) -> list[Passage]:
    """Read the documents and rank their passages: blocking, so the expert runs it in a worker thread. A question
    about a handed-over document as a whole gets its opening passages: any passage its words match ("main" in "Main
    Street") would be a coincidence. So does a question that refers to the handed-over document ("in this", "does
    it") when its words match no passage: it asks about that document in words the document does not use."""
    handed, question = request.handed, request.question
    if handed and asks_about_the_whole(question):
        return opening_passages(handed)
    documents = load_documents(folder) if folder is not None else {}
    documents.update(handed)
    ranked = rank_passages(question, documents)
    if not ranked and handed and REFERS_TO_THE_DOCUMENT.search(question.lower()):
        return opening_passages(handed)  # "when is the deadline in this?" of notes that say "within a month"
    return ranked


class ResearchExpert(BaseExpert):
    id = "research"
    name = "Research Expert"
    version = "0.2.0"
    description = "Answers questions from a local folder of documents, citing the passages it used."
    capabilities = (
        "research",
        "find",
        "search",
        "explain",
        "question",
        "investigate",
        "compare",
        "source",
        "sources",
        "documentation",
        "paper",
        "literature",
        "fact",
        "history",
        "cite",
        "document",
    )
    task_types = ("research", "question")
    examples = ("what does our documentation say about retries", "research the history of the printing press")
    priority = 5

    def documents_folder(self) -> Path | None:
        settings = self.context.settings
        if settings is None:
            return None
        folder: Path = settings.resolve(settings.experts.documents_dir)
        return folder

    async def execute(self, task: Task) -> ExpertOutput:
        folder = self.documents_folder()
        request = read_request(task)
        passages = await self.run_blocking(retrieve, request, folder)
        if not passages:
            places = [
                *(["the input"] if isinstance(task.input, str | dict) else []),
                *(["the pasted document"] if PASTED_DOCUMENT in request.handed else []),
                *([DOCUMENTS_FOLDER] if folder else []),
            ]
            where = f" in {' or '.join(places)}" if places else ""
            return ExpertOutput({"answer": f"No passage{where} matches the question.", "citations": []}, confidence=0.2)
        citations = [{"source": p.source, "passage": p.text, "score": p.score} for p in passages]
        given = [p.text[:MAX_PASSAGE_CHARS] for p in passages]
        numbered = "\n\n".join(
            f"[{i}] ({p.source}) {text}" for i, (p, text) in enumerate(zip(passages, given, strict=True), 1)
        )
        thought = await think(
            self.context,
            expert_id=self.id,
            system=ANSWER_SYSTEM,
            prompt=f"Passages:\n{numbered}\n\nQuestion: {request.question}",
            temperature=0.2,
        )
        extractive = "\n\n".join(f"[{i}] {p.text}" for i, p in enumerate(passages, start=1))
        retrieval_confidence = min(0.9, 0.4 + 0.1 * len(passages))
        if thought.response is None:
            output: dict[str, Any] = {"answer": extractive, "citations": citations, **thought.provenance()}
            return ExpertOutput(output, confidence=retrieval_confidence)
        return answered(thought.text, given, request.question, citations, thought.provenance(), retrieval_confidence)


def answered(
    answer: str,
    given: list[str],
    question: str,
    citations: list[dict[str, Any]],
    provenance: dict[str, Any],
    retrieval_confidence: float,
) -> ExpertOutput:
    """The model's ``answer`` checked against the passages it was ``given``: the passages it cites (``cited``), or,
    when it cites none, the ones its sentences' words come from, cited in the answer by the expert
    (``attributed``); what it asserts that no passage holds (``unsupported``), which lowers the confidence."""
    cited = cited_passages(answer, len(given))
    attributed: list[int] = []
    if not cited:
        answer, attributed = cite_by_overlap(answer, given)
    grounding = check_grounding(answer, "\n\n".join(given), request=question)
    output = {
        "answer": answer,
        "cited": cited,
        "attributed": attributed,
        "grounding": grounding.describe("the passages"),
        **grounding.fields(),
        "citations": citations,
        **provenance,
    }
    confidence = min(0.9, retrieval_confidence + (0.1 if cited else -0.1))
    return ExpertOutput(output, confidence=grounding.scaled(confidence))


def cited_passages(answer: str, count: int) -> list[int]:
    """The passage numbers (1-based) an answer cites that exist, in order of first citation."""
    seen: list[int] = []
    for match in CITATION.finditer(answer):
        number = int(match.group(1))
        if 1 <= number <= count and number not in seen:
            seen.append(number)
    return seen
