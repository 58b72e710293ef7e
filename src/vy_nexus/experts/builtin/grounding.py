"""A deterministic faithfulness check for answers made from a given text (summaries, answers from passages).

The reasoning core may invent: a summary that says "the committee decided to hold hearings on a monthly basis" of
a text that mentions neither a committee nor a month, an answer "within 12 weeks" where the text says "within a
month". ``check_grounding`` lists what an answer asserts that its source does not contain:

* **content words**, after light normalisation: case, possessives, plurals and the regular verb endings
  (``hearings`` ≈ ``hearing``, ``asked`` ≈ ``asks``); function words (``the``, ``would``, ``about``) and the words
  an answer uses to talk about its source (``text``, ``author``, ``mentions``) are not checked;
* **numbers**, compared as values: ``two`` = ``2``, ``45,000`` = ``45000``, ``twenty-five`` = ``25``, ``14th`` = ``14``;
* **dates**, compared as values: ``14 March``, ``March 14th`` and ``2026-03-14`` are one date (a year must agree
  when both give one).

Words of the request itself count as known (an answer repeats its question). What is left is ``unsupported``; the
share of the answer's checked terms it makes lowers the expert's confidence in proportion.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

MONTHS = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
    "december",
)  # fmt: skip
MONTH_ABBREVIATIONS = {"sept": 9} | {name[:3]: number for number, name in enumerate(MONTHS, start=1)}
MONTH_NUMBERS = {name: number for number, name in enumerate(MONTHS, start=1)} | MONTH_ABBREVIATIONS
_MONTH = "(?:" + "|".join(sorted(MONTH_NUMBERS, key=len, reverse=True)) + r")\.?"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?:,?\s+(\d{4}))?"
DATE_PATTERNS = (
    re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"),
    re.compile(rf"\b{_DAY}\s+(?:of\s+)?({_MONTH}){_YEAR}\b", re.IGNORECASE),
    re.compile(rf"\b({_MONTH})\s+{_DAY}\b{_YEAR}", re.IGNORECASE),
)
CITATION = re.compile(r"\[\d{1,3}\]")
TOKEN = re.compile(
    r"(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?:st|nd|rd|th)?(?![\d])|(?P<word>[^\W\d_]+(?:['’][^\W\d_]+)*)"
)
UNITS = {
    "zero": 0, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
"""Number words read as values ("one" is left out: it is as often a pronoun, "the one who ...")."""
SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
FUNCTION_WORDS = frozenset((
    "a", "an", "the", "this", "that", "these", "those", "there", "here", "it", "its", "it's", "they", "them", "their",
    "theirs", "he", "him", "his", "she", "her", "hers", "we", "us", "our", "ours", "you", "your", "yours", "i", "me",
    "my", "mine", "who", "whom", "whose", "which", "what", "when", "where", "why", "how", "whether", "if", "then",
    "than", "so", "as", "and", "or", "nor", "but", "not", "no", "yes", "of", "to", "in", "on", "at", "by", "for",
    "from", "with", "without", "about", "into", "onto", "over", "under", "after", "before", "during", "since", "until",
    "till", "up", "down", "out", "off", "again", "also", "just", "only", "very", "too", "quite", "rather", "more",
    "most", "less", "least", "much", "many", "some", "any", "all", "both", "each", "every", "either", "neither",
    "other", "another", "such", "same", "own", "few", "several", "enough", "is", "are", "was", "were", "be", "been",
    "being", "am", "do", "does", "did", "done", "doing", "have", "has", "had", "having", "will", "would", "shall",
    "should", "can", "could", "may", "might", "must", "ought", "let", "lets", "get", "gets", "got", "one", "ones",
    "something", "anything", "nothing", "everything", "someone", "anyone", "everyone", "nobody", "per", "via", "while",
    "although", "though", "because", "however", "therefore", "thus", "hence", "yet", "still", "even", "ever", "never",
    "always", "often", "sometimes", "already", "soon", "now", "well", "like", "unlike", "within", "between", "among",
    "through", "throughout", "against", "toward", "towards", "upon", "across", "along", "around", "behind", "beyond",
    "near", "off", "cannot", "can't", "won't", "shan't", "vs", "versus", "etc", "eg", "ie",
))  # fmt: skip
DISCOURSE_WORDS = frozenset((
    "text", "texts", "document", "documents", "passage", "passages", "article", "author", "authors", "writer",
    "summary", "summarise", "summarize", "summarised", "summarized", "overall", "main", "key", "point", "points",
    "mention", "mentions", "mentioned", "describe", "describes", "described", "discuss", "discusses", "discussed",
    "state", "states", "stated", "say", "says", "said", "note", "notes", "noted", "explain", "explains", "explained",
    "according", "highlight", "highlights", "highlighted", "focus", "focuses", "outline", "outlines", "provide",
    "provides", "provided", "present", "presents", "include", "includes", "including", "following", "answer",
    "question", "based", "firstly", "secondly", "lastly", "finally", "brief", "briefly", "information", "detail",
    "details",
))  # fmt: skip
"""Words an answer uses to talk about its source rather than to assert something from it."""
IRREGULAR_VERBS = {
    form: base
    for base, *forms in (
        ("begin", "began", "begun"), ("break", "broke", "broken"), ("bring", "brought"), ("build", "built"),
        ("buy", "bought"), ("choose", "chose", "chosen"), ("come", "came"), ("fall", "fell", "fallen"),
        ("feel", "felt"), ("find", "found"), ("give", "gave", "given"), ("go", "went", "gone"),
        ("grow", "grew", "grown"), ("hold", "held"), ("keep", "kept"), ("know", "knew", "known"), ("lead", "led"),
        ("leave", "left"), ("lose", "lost"), ("make", "made"), ("meet", "met"), ("pay", "paid"),
        ("rise", "rose", "risen"), ("run", "ran"), ("see", "saw", "seen"), ("sell", "sold"), ("send", "sent"),
        ("show", "shown"),
        ("speak", "spoke", "spoken"), ("spend", "spent"), ("take", "took", "taken"), ("teach", "taught"),
        ("tell", "told"), ("think", "thought"), ("understand", "understood"), ("win", "won"),
        ("write", "wrote", "written"),
    )
    for form in forms
}  # fmt: skip
"""Irregular past forms of common verbs and their base form (``kept`` is a form of ``keep``)."""


@dataclass(frozen=True, slots=True)
class Grounding:
    """What an answer asserts that its source lacks: ``unsupported`` terms (as the answer writes them, in order) out
    of the ``checked`` distinct terms it asserts."""

    unsupported: tuple[str, ...]
    checked: int

    @property
    def unsupported_share(self) -> float:
        return len(self.unsupported) / self.checked if self.checked else 0.0

    def scaled(self, confidence: float) -> float:
        """``confidence`` lowered in proportion to the share of unsupported terms."""
        return confidence * (1.0 - self.unsupported_share)

    def describe(self, source: str) -> str:
        """One line for the result's summary: ``2 of 9 terms are not in the source: committee, monthly``."""
        if not self.unsupported:
            return f"all {self.checked} terms checked are in {source}" if self.checked else "nothing to check"
        listed = ", ".join(self.unsupported)
        return f"{len(self.unsupported)} of {self.checked} terms are not in {source}: {listed}"

    def fields(self) -> dict[str, object]:
        """Output fields: ``unsupported`` (the terms) and ``checked_terms``."""
        return {"unsupported": list(self.unsupported), "checked_terms": self.checked}


Date = tuple[int | None, int, int]
"""(year or ``None`` when the text gives none, month, day)."""


@dataclass(frozen=True, slots=True)
class Term:
    """One thing a text asserts: a content word (its normalised forms), a number (its value) or a date. A date's
    ``keys`` are its parts (day, year, month name), which make a bare "the 14th" in an answer known."""

    surface: str
    keys: frozenset[object]
    date: Date | None = None


def check_grounding(answer: str, source: str, *, request: str = "") -> Grounding:
    """The terms ``answer`` asserts that neither ``source`` nor ``request`` contains (see the module docstring)."""
    known: set[object] = set()
    known_dates: list[Date] = []
    for term in (*assertions(source), *assertions(request)):
        known.update(term.keys)
        if term.date is not None:
            known_dates.append(term.date)
    unsupported: dict[str, None] = {}
    seen: set[tuple[frozenset[object], Date | None]] = set()
    for term in assertions(CITATION.sub(" ", answer)):
        identity = (term.keys, term.date)
        if identity in seen:
            continue
        seen.add(identity)
        if term.date is not None:
            supported = any(_same_date(term.date, date, known) for date in known_dates)
        else:
            supported = bool(term.keys & known)
        if not supported:
            unsupported.setdefault(term.surface)
    return Grounding(unsupported=tuple(unsupported), checked=len(seen))


def assertions(text: str) -> list[Term]:
    """The content words, numbers and dates of ``text``, in order."""
    found: list[tuple[int, Term]] = []
    rest = text
    for pattern in DATE_PATTERNS:
        rest = pattern.sub(lambda match: _take_date(match, found), rest)
    found.extend(_words_and_numbers(rest))
    return [term for _, term in sorted(found, key=lambda item: item[0])]


def _take_date(match: re.Match[str], found: list[tuple[int, Term]]) -> str:
    """Record the date ``match`` holds (with its position) and blank it out, so that its day and month are not
    checked again as words."""
    date = _date_value(match)
    if date is None:
        return match.group(0)
    year, month, day = date
    parts: set[object] = {Decimal(day), *word_forms(MONTHS[month - 1])}
    if year is not None:
        parts.add(Decimal(year))
    found.append((match.start(), Term(match.group(0), frozenset(parts), date)))
    return " " * len(match.group(0))  # the same length: the positions of the words after it stay true


def _date_value(match: re.Match[str]) -> Date | None:
    groups = match.groups()
    year: int | None
    if match.re is DATE_PATTERNS[0]:
        year, month, day = int(groups[0]), int(groups[1]), int(groups[2])
    elif match.re is DATE_PATTERNS[1]:
        day, month, year = int(groups[0]), MONTH_NUMBERS[groups[1].lower().rstrip(".")], _year(groups[2])
    else:
        month, day, year = MONTH_NUMBERS[groups[0].lower().rstrip(".")], int(groups[1]), _year(groups[2])
    return (year, month, day) if 1 <= month <= 12 and 1 <= day <= 31 else None


def _year(digits: str | None) -> int | None:
    return int(digits) if digits else None


def _same_date(claimed: Date, date: Date, known: set[object]) -> bool:
    """The same day and month, and the same year when the claim gives one (a year the source's date leaves out
    must be one the source names elsewhere)."""
    year = claimed[0]
    return claimed[1:] == date[1:] and (year is None or year == date[0] or (date[0] is None and Decimal(year) in known))


def _words_and_numbers(text: str) -> Iterator[tuple[int, Term]]:
    """Numbers (digits, number words, "2 million") as values; content words as their normalised forms."""
    matches = list(TOKEN.finditer(text))
    tokens = [(m.group(0), m.group("number"), m.group("word")) for m in matches]
    index = 0
    while index < len(tokens):
        surface, digits, word = tokens[index]
        if digits is not None or (word is not None and _is_number_word(word)):
            end, value = _read_number(tokens, index)
            if value is not None:
                span = text[matches[index].start() : matches[end - 1].end()]
                yield matches[index].start(), Term(span, frozenset({value}))
                index = end
                continue
        if word is not None:
            lowered = word.lower().replace("’", "'")
            if not _is_function_word(lowered) and len(lowered) > 1:
                yield matches[index].start(), Term(surface, word_forms(lowered))
        index += 1


def _is_function_word(word: str) -> bool:
    """A function or discourse word, contractions included ("that's", "they're", "doesn't")."""
    if word in FUNCTION_WORDS or word in DISCOURSE_WORDS:
        return True
    base = re.sub(r"'(?:s|re|ve|ll|d|m)$", "", word)
    base = base[:-3] if base.endswith("n't") else base
    return base in FUNCTION_WORDS or base in DISCOURSE_WORDS


def _is_number_word(word: str) -> bool:
    lowered = word.lower()
    return lowered in UNITS or lowered in SCALES


def _read_number(tokens: list[tuple[str, str | None, str | None]], start: int) -> tuple[int, Decimal | None]:
    """(the index after the number starting at ``start``, its value): digits or number words, with the scale words
    after them ("twenty five", "2 million", "three hundred")."""
    total, current, index = Decimal(0), Decimal(0), start
    _, digits, _ = tokens[start]
    if digits is not None:
        try:
            current = Decimal(digits.replace(",", ""))
        except InvalidOperation:
            return start + 1, None
        index += 1
    while index < len(tokens):
        word = (tokens[index][2] or "").lower()
        if word in UNITS and digits is None:
            current += UNITS[word]
        elif word in SCALES:
            scale = SCALES[word]
            if scale == 100:
                current = (current or Decimal(1)) * scale
            else:
                total += (current or Decimal(1)) * scale
                current = Decimal(0)
        else:
            break
        index += 1
    if index == start:
        return start + 1, None
    return index, (total + current).normalize()


def word_forms(word: str) -> frozenset[object]:
    """``word`` (lower case) with its possessive, plural and verb endings taken off (a common irregular past form
    gives its base form): two words match when their forms meet (``hearings``/``hearing``, ``asked``/``asks``,
    ``planned``/``plan``, ``closing``/``closes``, ``kept``/``keeps``)."""
    word = re.sub(r"'s?$", "", word)
    forms: set[object] = {word}
    if word in IRREGULAR_VERBS:
        forms.add(IRREGULAR_VERBS[word])
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        forms.add(word[:-1])
        if word.endswith("ies"):
            forms.add(word[:-3] + "y")
        elif word.endswith("es"):
            forms.add(word[:-2])
    for ending in ("ed", "ing"):
        if len(word) > len(ending) + 2 and word.endswith(ending):
            stem = word[: -len(ending)]
            forms.update((stem, stem + "e"))
            if stem.endswith("i"):
                forms.add(stem[:-1] + "y")
            if len(stem) > 2 and stem[-1] == stem[-2]:
                forms.add(stem[:-1])
    return frozenset(forms)


ABBREVIATIONS = frozenset((
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "eg", "ie", "no", "fig", "approx",
    "inc", "ltd", "co", "corp", "dept", "est", "gen", "gov", "mt", "rev",
))  # fmt: skip
"""Words whose full stop ends no sentence ("Dr.", "e.g."), besides a single letter (an initial)."""
ANSWER_SENTENCE = re.compile(r"(?:[^.!?\n]|[.!?](?=\w))+(?:[.!?]+|(?=\n)|$)")
"""A sentence of an answer, with its closing punctuation (a line of a list counts as one; "3.5" and "e.g." do not
end one)."""
ATTRIBUTION_MIN_SHARE = 0.5
"""A passage is cited for a sentence when it holds at least this share of the sentence's checked terms."""


def cite_by_overlap(answer: str, passages: list[str]) -> tuple[str, list[int]]:
    """``answer`` with ``[n]`` put before the end of each sentence whose terms passage ``n`` (1-based) holds best
    (at least ``ATTRIBUTION_MIN_SHARE`` of them), and the passages so cited, in order of first citation. For an
    answer that cites nothing: the citations say where each sentence's words come from, and a sentence that no
    passage supports stays uncited."""
    known = [{key for term in assertions(passage) for key in term.keys} for passage in passages]
    cited: list[int] = []
    pieces: list[str] = []
    position = 0
    for start, stop in _sentence_spans(answer):
        number = _best_passage(answer[start:stop], known)
        if number is None:
            continue
        end = start + len(answer[start:stop].rstrip().rstrip(".!?"))
        pieces.extend((answer[position:end], f" [{number}]"))
        position = end
        if number not in cited:
            cited.append(number)
    pieces.append(answer[position:])
    return "".join(pieces), cited


def _sentence_spans(answer: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``answer``; a full stop after an abbreviation or an initial ends none."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for match in ANSWER_SENTENCE.finditer(answer):
        start = match.start() if start is None else start
        if match.group(0).endswith(".") and ends_with_abbreviation(match.group(0)):
            continue
        spans.append((start, match.end()))
        start = None
    if start is not None:
        spans.append((start, len(answer)))
    return spans


def ends_with_abbreviation(text: str) -> bool:
    """Whether ``text`` (up to a full stop) ends with an abbreviation or an initial ("Dr.", "e.g.", "J.")."""
    words = text.rstrip().rstrip(".").rsplit(None, 1)
    last = words[-1].lower() if words else ""
    return last in ABBREVIATIONS or (len(last) == 1 and last.isalpha())


def _best_passage(sentence: str, known: list[set[object]]) -> int | None:
    terms = [term.keys for term in assertions(sentence)]
    if not terms:
        return None
    held = [sum(1 for keys in terms if keys & passage) for passage in known]
    best = max(range(len(held)), key=lambda i: (held[i], -i), default=None)
    if best is None or held[best] < ATTRIBUTION_MIN_SHARE * len(terms) or not held[best]:
        return None
    return best + 1
