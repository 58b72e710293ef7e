"""An extractive summary, computed exactly: the source's most representative sentences, in source order.

Shown beside the reasoning core's summary, so a summary that only quotes the text is always there, even when the
model invents. How sentences are chosen:

1. The text is split into sentences (paragraphs, then sentence ends; "Dr.", "e.g." and initials do not end one;
   each item of a bulleted list is one); fenced code and Markdown headings are left out, and so are sentences of
   fewer than ``MIN_SENTENCE_WORDS`` words while longer ones exist.
2. Each sentence is a TF-IDF vector of its words (case and plurals folded, function words left out); its
   **centrality** is the cosine between it and the sum of all the other sentences: how much of what the rest of
   the text talks about it holds.
3. score = centrality + ``LEAD_WEIGHT`` × (1 − position / count): texts tend to say what matters first, so an early
   sentence wins a near tie.
4. The best sentences are taken while they fit the requested length ("in two sentences", "in 30 words", "one
   line"; by default about a quarter of the sentences, at least 1 and at most ``MAX_DEFAULT_SENTENCES``), then put
   back in source order. When even the best sentence exceeds a word budget, its first words are kept, ending "…".
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from vy_nexus.experts.builtin.grounding import FUNCTION_WORDS, ends_with_abbreviation

MIN_SENTENCE_WORDS = 4
LEAD_WEIGHT = 0.1
MAX_DEFAULT_SENTENCES = 5
SENTENCES_PER_SUMMARY_SENTENCE = 4
FENCED = re.compile(r"^[ \t]*```.*?(?:^[ \t]*```[^\n]*$|\Z)", re.DOTALL | re.MULTILINE)
HEADING = re.compile(r"^[ \t]*#{1,6}[ \t].*$", re.MULTILINE)
BULLET = re.compile(r"^\s*(?:[-*•+]|\d{1,2}[.)])\s+")
SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")
WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "single": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10,
}  # fmt: skip
LENGTH_REQUEST = re.compile(
    r"\b(\d{1,4}|a|an|one|single|two|three|four|five|six|seven|eight|nine|ten)[\s-]+"
    r"(sentences?|lines?|bullets?|bullet\s+points?|points?|words?)\b"
)


@dataclass(frozen=True, slots=True)
class Extract:
    """The chosen sentences joined in source order, how many were chosen and of how many."""

    text: str
    chosen: int
    of: int


@dataclass(frozen=True, slots=True)
class Length:
    """A requested length: a number of sentences, or of words (``None`` for the other)."""

    sentences: int | None = None
    words: int | None = None


def requested_length(request: str) -> Length:
    """The length a request asks for ("in two sentences", "under 50 words", "a one-line summary"); empty if none."""
    match = LENGTH_REQUEST.search(request.lower())
    if match is None:
        return Length()
    amount, unit = match.groups()
    number = int(amount) if amount.isdigit() else NUMBER_WORDS[amount]
    if number < 1:
        return Length()
    return Length(words=number) if unit.startswith("word") else Length(sentences=number)


def extractive_summary(text: str, request: str = "") -> Extract:
    """The most representative sentences of ``text`` within the length ``request`` asks for (module docstring)."""
    sentences = split_sentences(text)
    if not sentences:
        return Extract("", 0, 0)
    candidates = [i for i, s in enumerate(sentences) if len(WORD.findall(s)) >= MIN_SENTENCE_WORDS]
    candidates = candidates or list(range(len(sentences)))
    scores = sentence_scores([sentences[i] for i in candidates])
    ranked = [index for _, index in sorted(zip(scores, candidates, strict=True), key=lambda pair: (-pair[0], pair[1]))]
    length = requested_length(request)
    if length.words is not None:
        chosen = _within_words(sentences, ranked, length.words)
    else:
        count = length.sentences or _default_count(len(sentences))
        chosen = sorted(ranked[:count])
    if not chosen:  # a word budget below the best sentence's length: its first words
        words = sentences[ranked[0]].split()
        return Extract(" ".join(words[: length.words]) + " …", 1, len(sentences))
    return Extract(" ".join(sentences[i] for i in chosen), len(chosen), len(sentences))


def _default_count(sentences: int) -> int:
    return max(1, min(MAX_DEFAULT_SENTENCES, math.ceil(sentences / SENTENCES_PER_SUMMARY_SENTENCE)))


def _within_words(sentences: list[str], ranked: list[int], budget: int) -> list[int]:
    """The best sentences, in rank order, that together fit ``budget`` words; in source order."""
    chosen: list[int] = []
    used = 0
    for index in ranked:
        size = len(WORD.findall(sentences[index]))
        if used + size <= budget:
            chosen.append(index)
            used += size
    return sorted(chosen)


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (see the module docstring), whitespace collapsed."""
    prose = HEADING.sub("", FENCED.sub("", text))
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n", prose):
        lines = [line for line in paragraph.splitlines() if line.strip()]
        if lines and all(BULLET.match(line) for line in lines):
            sentences.extend(" ".join(BULLET.sub("", line).split()) for line in lines)
        else:
            sentences.extend(_sentences_of(" ".join(" ".join(lines).split())))
    return [s for s in sentences if WORD.search(s)]


def _sentences_of(paragraph: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for boundary in SENTENCE_END.finditer(paragraph):
        if ends_with_abbreviation(paragraph[start : boundary.start()]):
            continue
        pieces.append(paragraph[start : boundary.start()].strip())
        start = boundary.end()
    pieces.append(paragraph[start:].strip())
    return [piece for piece in pieces if piece]


def sentence_scores(sentences: list[str]) -> list[float]:
    """Centrality (cosine to the rest of the text, TF-IDF) plus the lead bonus, per sentence."""
    bags = [Counter(_content_terms(sentence)) for sentence in sentences]
    count = len(bags)
    frequency = Counter(term for bag in bags for term in bag)
    idf = {term: math.log((1 + count) / (1 + df)) + 1.0 for term, df in frequency.items()}
    vectors = [{term: tf * idf[term] for term, tf in bag.items()} for bag in bags]
    total: Counter[str] = Counter()
    for vector in vectors:
        total.update(vector)
    scores = []
    for position, vector in enumerate(vectors):
        rest = {term: total[term] - vector.get(term, 0.0) for term in total}
        scores.append(_cosine(vector, rest) + LEAD_WEIGHT * (1 - position / count))
    return scores


def _content_terms(sentence: str) -> list[str]:
    terms = []
    for word in WORD.findall(sentence.lower().replace("’", "'")):
        word = re.sub(r"'s?$", "", word)
        if word in FUNCTION_WORDS or len(word) < 2:
            continue
        if len(word) > 3 and word.endswith("ies"):
            word = word[:-3] + "y"
        elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        terms.append(word)
    return terms


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    dot = sum(value * b.get(term, 0.0) for term, value in a.items())
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return dot / norm if norm else 0.0
