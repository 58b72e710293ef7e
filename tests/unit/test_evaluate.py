from __future__ import annotations

import pytest

from fakes.encoder import BagOfWordsEncoder
from vy_nexus.errors import ConfigError
from vy_nexus.routing.evaluate import evaluate, label_index, percentiles
from vy_nexus.routing.routes import LabeledExample, Route
from vy_nexus.routing.semantic import SemanticRouter

ROUTES = [
    Route("rain", ("will it rain", "is rain coming", "rain forecast"), metadata={"domain": "weather"}),
    Route("sun", ("is it sunny", "sunny forecast", "sun today"), metadata={"domain": "weather"}),
    Route("song", ("play a song", "next song", "song please"), metadata={"domain": "media"}),
]


@pytest.fixture
def router() -> SemanticRouter:
    return SemanticRouter.build(ROUTES, BagOfWordsEncoder())


def examples(label_field: str = "intent") -> list[LabeledExample]:
    rows = [
        ("will it rain tomorrow", "rain", "weather"),
        ("sunny today", "sun", "weather"),
        ("play the next song", "song", "media"),
        ("rain song", "sun", "weather"),  # ambiguous: the closed-set best label is wrong
        ("zebra xylophone quantum", "oos", "oos"),
    ]
    return [
        LabeledExample(text, intent if label_field == "intent" else domain, {"intent": intent, "domain": domain})
        for text, intent, domain in rows
    ]


def test_metrics_by_route(router: SemanticRouter) -> None:
    report = evaluate(router, examples(), latency_sample=3)
    assert (report.examples, report.in_scope, report.out_of_scope, report.labels) == (5, 4, 1, 3)
    assert report.closed_set_accuracy == pytest.approx(0.75)
    assert report.accuracy <= report.closed_set_accuracy
    assert report.oos_recall == 1.0
    assert report.oos_precision is not None and 0 < report.oos_precision <= 1
    assert 0 <= report.ece <= 1
    assert set(report.latency_ms) == {"p50", "p95", "p99", "mean"}
    assert report.as_dict()["model_kind"] == "centroid"


def test_labels_map_through_route_metadata(router: SemanticRouter) -> None:
    report = evaluate(router, examples("domain"), label_field="domain", latency_sample=0)
    assert report.labels == 2
    assert report.closed_set_accuracy == 1.0  # 'rain song' lands on a weather route: right domain
    assert report.latency_ms == {}
    names, mapping = label_index(router, {"weather", "media"}, "domain")
    assert names == ["media", "weather"] and mapping == [1, 1, 0]


def test_unmappable_labels_are_config_errors(router: SemanticRouter) -> None:
    with pytest.raises(ConfigError, match="no route has 'colour' metadata"):
        evaluate(router, [LabeledExample("x", "red")], label_field="colour")
    with pytest.raises(ConfigError, match="labels with no route: cooking"):
        evaluate(router, [LabeledExample("x", "cooking"), LabeledExample("y", "media")], label_field="domain")
    with pytest.raises(ConfigError, match="no examples"):
        evaluate(router, [])


def test_percentiles() -> None:
    result = percentiles([1.0, 2.0, 3.0, 4.0])
    assert result["p50"] == 2.5 and result["mean"] == 2.5
    assert percentiles([]) == {}
