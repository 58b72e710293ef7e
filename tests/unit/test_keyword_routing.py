from __future__ import annotations

import pytest

from spine_experts import make_expert
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.routing.keyword import KeywordStrategy, confidence_from_evidence, find_phrases, tokenize
from vy_nexus.tasks import Task


def test_tokenize_keeps_language_names_whole() -> None:
    assert tokenize("Use C++, C# and Node.js; not JavaScript.") == [
        "use",
        "c++",
        "c#",
        "and",
        "node.js",
        "not",
        "javascript",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("this is good", []),
        ("write some javascript", []),
        ("let's go", ["go"]),
        ("port it to Java", ["java"]),
        ("add unit tests please", ["unit test"]),
        ("GO and java", ["go", "java"]),
    ],
)
def test_word_boundaries(text: str, expected: list[str]) -> None:
    assert find_phrases(text, {"go", "java", "unit test"}) == expected


def test_confidence_formula() -> None:
    lone = confidence_from_evidence({"a": 1.0})
    assert lone["a"] == pytest.approx(0.7)
    tied = confidence_from_evidence({"a": 1.0, "b": 1.0})
    assert tied["a"] == pytest.approx(0.7 * 0.75)
    assert confidence_from_evidence({"a": 2.0})["a"] == pytest.approx(0.91)
    assert confidence_from_evidence({}) == {}
    assert all(0 <= v <= 1 for v in confidence_from_evidence({"a": 50.0, "b": 0.1}).values())


def test_strategy_scores_capabilities_and_task_type() -> None:
    registry = ExpertRegistry()
    registry.register(make_expert("coder", ("python", "bug"), task_types=("code",)))
    registry.register(make_expert("writer", ("essay",)))
    strategy = KeywordStrategy(registry)
    scores = strategy.score(Task(description="fix the bug in my python script", type="code"))
    assert set(scores.confidences) == {"coder"}
    assert scores.confidences["coder"] > 0.97
    assert "'python'" in scores.reason and "task type 'code'" in scores.reason
    assert strategy.score(Task(description="nothing relevant")).confidences == {}


def test_strategy_sees_new_capabilities_after_registration() -> None:
    registry = ExpertRegistry()
    registry.register(make_expert("general", ("chat",)))
    strategy = KeywordStrategy(registry)
    assert strategy.score(Task(description="translate this")).confidences == {}
    registry.register(make_expert("translator", ("translate",)))
    assert "translator" in strategy.score(Task(description="translate this")).confidences


def test_context_capability_hint_counts() -> None:
    registry = ExpertRegistry()
    registry.register(make_expert("sql", ("sql",)))
    scores = KeywordStrategy(registry).score(Task(description="help", context={"capabilities": ["sql"]}))
    assert "sql" in scores.confidences
