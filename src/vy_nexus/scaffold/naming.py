"""Names for a new expert: normalise what the user typed, refuse what cannot safely become a module.

One user-facing name ("DataAnalysis", "data analysis", "data-analysis") yields every spelling the scaffold needs:

    module      data_analysis        the file data_analysis.py, a Python identifier
    expert id   data-analysis        the registry id and the doc's file name (kebab case)
    class       DataAnalysisExpert   the BaseExpert subclass
    title       Data Analysis        the human name shown by ``vy-nexus experts``

Everything is checked before anything is written: path parts, shell metacharacters, characters that are not
ASCII letters/digits/space/``-``/``_``, names that are not identifiers after normalisation, Python keywords.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from vy_nexus.errors import VyNexusError
from vy_nexus.experts.base import CAPABILITY_PATTERN, EXPERT_ID_PATTERN

MAX_NAME_CHARS = 60
MAX_DESCRIPTION_CHARS = 500
SHELL_METACHARACTERS = frozenset("$`;&|<>(){}[]*?!~'\"\\#")
ALLOWED_NAME_PATTERN = re.compile(r"^[A-Za-z0-9 _-]+$")
RESERVED_MODULE_NAMES = frozenset({"conftest", "setup", "test", "tests"})
"""Module names the experts directory treats specially (pytest files and the tests folder)."""

_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[\s_-]+")


class ScaffoldError(VyNexusError):
    """The user asked for an expert that cannot be generated as given (bad name, clash, bad capability)."""

    exit_code = 2
    http_status = 422


@dataclass(frozen=True, slots=True)
class ExpertName:
    """Every spelling of one expert's name."""

    original: str
    words: tuple[str, ...]

    @property
    def module(self) -> str:
        return "_".join(self.words)

    @property
    def expert_id(self) -> str:
        return "-".join(self.words)

    @property
    def class_name(self) -> str:
        return "".join(word.capitalize() for word in self.words) + "Expert"

    @property
    def title(self) -> str:
        return " ".join(word.capitalize() for word in self.words)


def split_words(name: str) -> tuple[str, ...]:
    """``"DataAnalysis"``, ``"data analysis"``, ``"HTTPServer2"`` -> lowercase words."""
    spaced = _WORD_BOUNDARY.sub(" ", name.strip())
    return tuple(word.lower() for word in _SEPARATORS.split(spaced) if word)


def normalise_name(raw: str) -> ExpertName:
    """Validate a user-typed expert name and return all its spellings; raise ``ScaffoldError`` naming the problem."""
    name = raw.strip()
    if not name:
        raise ScaffoldError("the expert name is empty; pass --name, e.g. --name DataAnalysis")
    if len(name) > MAX_NAME_CHARS:
        raise ScaffoldError(f"the expert name is {len(name)} characters long; use at most {MAX_NAME_CHARS}")
    if "/" in name or "\\" in name or ".." in name or name.startswith("."):
        raise ScaffoldError(
            f"the expert name {raw!r} contains path parts ('/', '\\', '..' or a leading '.'); "
            "pass a plain name such as DataAnalysis and choose the folder with --dir"
        )
    metacharacters = sorted({char for char in name if char in SHELL_METACHARACTERS})
    if metacharacters:
        raise ScaffoldError(
            f"the expert name {raw!r} contains shell metacharacters ({' '.join(metacharacters)}); "
            "use letters, digits, spaces, '-' or '_'"
        )
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise ScaffoldError(f"the expert name {raw!r} contains control characters")
    if not ALLOWED_NAME_PATTERN.match(name):
        bad = sorted({char for char in name if not ALLOWED_NAME_PATTERN.match(char)})
        raise ScaffoldError(
            f"the expert name {raw!r} contains characters that cannot be part of a Python identifier "
            f"({' '.join(bad)}); use ASCII letters, digits, spaces, '-' or '_'"
        )
    words = split_words(name)
    result = ExpertName(original=raw, words=words)
    module = result.module
    if not words or not module.isidentifier():
        raise ScaffoldError(
            f"the expert name {raw!r} normalises to {module!r}, which is not a Python identifier "
            "(it must start with a letter)"
        )
    if keyword.iskeyword(module) or keyword.issoftkeyword(module) or module in {"none", "true", "false"}:
        raise ScaffoldError(f"the expert name {raw!r} normalises to the Python keyword {module!r}; choose another")
    if module in RESERVED_MODULE_NAMES or module.startswith("test_"):
        raise ScaffoldError(
            f"the expert name {raw!r} normalises to {module!r}, which pytest and the experts directory reserve "
            "for test files; choose another"
        )
    if not EXPERT_ID_PATTERN.match(result.expert_id):
        raise ScaffoldError(
            f"the expert name {raw!r} gives the expert id {result.expert_id!r}, which is not a valid id "
            "(lowercase letters, digits and '-', starting with a letter, at most 64 characters)"
        )
    return result


def parse_capabilities(raw: str) -> tuple[str, ...]:
    """``"csv, JSON,sql"`` -> ``("csv", "json", "sql")``: lowercased, de-duplicated, each a valid capability."""
    parts = [part.strip().lower() for part in raw.split(",")]
    capabilities = tuple(dict.fromkeys(part for part in parts if part))
    if not capabilities:
        raise ScaffoldError(
            "no capabilities given; pass the words the router should match, e.g. --capabilities 'csv,json,sql'"
        )
    invalid = [cap for cap in capabilities if not CAPABILITY_PATTERN.match(cap)]
    if invalid:
        raise ScaffoldError(
            f"invalid capability {invalid[0]!r}: a capability is a word or short phrase of lowercase letters, digits, "
            "spaces and . + # _ / -, starting with a letter or digit, at most 64 characters"
        )
    return capabilities


def check_description(raw: str) -> str:
    """A one-line description without control characters."""
    description = " ".join(raw.split())
    if any(ord(char) < 32 or ord(char) == 127 for char in raw if char not in "\t\n\r"):
        raise ScaffoldError("the description contains control characters")
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise ScaffoldError(
            f"the description is {len(description)} characters long; use at most {MAX_DESCRIPTION_CHARS}"
        )
    return description
