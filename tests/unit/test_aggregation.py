from __future__ import annotations

import pytest

from vy_nexus.execution.aggregation import confidence_weighted, ensemble, majority_vote, single
from vy_nexus.tasks import ExpertResult


def result(expert_id: str, output: object, confidence: float) -> ExpertResult:
    return ExpertResult(task_id="t", expert_id=expert_id, output=output, confidence=confidence)


def test_single_takes_first() -> None:
    assert single([result("a", "x", 0.4), result("b", "y", 0.9)], {}) == ("x", 0.4)


def test_confidence_weighted_numbers_are_averaged_by_weight() -> None:
    value, confidence = confidence_weighted([result("a", 10, 1.0), result("b", 20, 0.5)], {"a": 1.0, "b": 1.0})
    assert value == pytest.approx((10 * 1.0 + 20 * 0.5) / 1.5)
    assert confidence == pytest.approx((1.0 * 1.0 + 0.5 * 0.5) / 1.5)


def test_confidence_weighted_text_picks_heaviest_and_scales_by_agreement() -> None:
    results = [result("a", "yes", 0.9), result("b", "no", 0.3), result("c", "YES ", 0.6)]
    output, confidence = confidence_weighted(results, {"a": 1.0, "b": 1.0, "c": 1.0})
    assert output == "yes"
    assert confidence == pytest.approx(0.9 * (0.9 + 0.6) / (0.9 + 0.3 + 0.6))


def test_majority_vote() -> None:
    results = [result("a", "blue", 0.5), result("b", "red", 0.99), result("c", "Blue", 0.7)]
    output, confidence = majority_vote(results, {})
    assert output == "blue"
    assert confidence == pytest.approx(2 / 3 * 0.6)


def test_majority_vote_tie_goes_to_heavier_group() -> None:
    output, _ = majority_vote([result("a", {"k": 1}, 0.2), result("b", {"k": 2}, 0.9)], {})
    assert output == {"k": 2}


def test_ensemble_text_and_structured() -> None:
    text, confidence = ensemble([result("a", "one", 0.5), result("b", "two", 0.5)], {"a": 1.0, "b": 1.0})
    assert text == "## a\none\n\n## b\ntwo"
    assert confidence == pytest.approx(0.5)
    mapping, _ = ensemble([result("a", {"n": 1}, 0.5), result("b", "two", 0.5)], {})
    assert mapping == {"a": {"n": 1}, "b": "two"}
    assert ensemble([result("a", 3, 0.4)], {}) == (3, pytest.approx(0.4))
