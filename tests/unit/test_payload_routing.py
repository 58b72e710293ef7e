from __future__ import annotations

import pytest

from spine_experts import make_expert
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.routing.cache import routing_key
from vy_nexus.routing.keyword import KeywordStrategy
from vy_nexus.routing.payload import payload_kind
from vy_nexus.tasks import Task


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ([{"a": 1}, {"a": 2}], "table"),
        ({"rows": []}, "table"),
        ({"sqlite": "/x.db"}, "table"),
        ("region,units\nnorth,3\nsouth,4\n", "table"),
        ("a\tb\n1\t2\n", "table"),
        ("def f(x):\n    return x\n", "code"),
        ("import os\nprint(os.getcwd())", "code"),
        ({"code": "x = 1"}, "code"),
        ("def f(a, b):\n    return g(a, b)\n", "code"),
        ("Dear Bob, thanks for the lovely evening. See you soon.", None),
        ("one line, with a comma", None),
        ([1, 2, 3], None),
        (None, None),
        (42, None),
        ({"other": 1}, None),
    ],
)
def test_payload_kind(payload: object, kind: str | None) -> None:
    assert payload_kind(payload) == kind


def test_tabular_input_counts_for_the_table_capability() -> None:
    registry = ExpertRegistry()
    registry.register(make_expert("data", ("table", "csv")))
    registry.register(make_expert("general", ("chat",)))
    strategy = KeywordStrategy(registry)
    assert strategy.score(Task(description="total units by region")).confidences == {}
    scores = strategy.score(Task(description="total units by region", input="region,units\nnorth,3\nsouth,4\n"))
    assert scores.confidences["data"] == pytest.approx(0.7)
    assert "the input looks like a table" in scores.reason


def test_cache_key_depends_on_payload_kind() -> None:
    text = Task(description="summarise this", input="just some words")
    table = Task(description="summarise this", input=[{"a": 1}])
    same_kind = Task(description="summarise this", input=[{"b": 2}])
    assert routing_key(text, 1, 1) != routing_key(table, 1, 1)
    assert routing_key(table, 1, 1) == routing_key(same_kind, 1, 1)
