from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from fakes.encoder import BagOfWordsEncoder
from vy_nexus.config import Settings
from vy_nexus.errors import ConfigError
from vy_nexus.experts.base import BaseExpert, ExpertOutput
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.routing.calibration import (
    expected_calibration_error,
    fit_rejection_threshold,
    fit_temperature,
    softmax,
)
from vy_nexus.routing.classifier import CentroidClassifier, LogisticHead, minimize_lbfgs
from vy_nexus.routing.gating import GatingEngine
from vy_nexus.routing.hybrid import HybridStrategy
from vy_nexus.routing.keyword import KeywordStrategy
from vy_nexus.routing.route_model import RouteModel, fit_route_model, model_path_for, stratified_split
from vy_nexus.routing.routes import Route, save_routes
from vy_nexus.routing.selection import build_strategy
from vy_nexus.routing.semantic import SemanticRouter, SemanticStrategy
from vy_nexus.routing.strategy import Scores
from vy_nexus.tasks import Task

WEATHER = ("will it rain today", "what is the weather forecast", "is it sunny outside", "how hot is it today")
MUSIC = ("play some jazz music", "put on my favourite song", "play the next track", "turn the music up")
TIMER = ("set a timer for ten minutes", "start a countdown timer", "remind me in five minutes", "stop the timer")


def routes() -> list[Route]:
    return [Route("weather", WEATHER), Route("music", MUSIC, target="media"), Route("timer", TIMER, target="media")]


class _Expert(BaseExpert):
    id = "media"
    name = "Media"
    capabilities = ("song", "music")

    async def execute(self, task: Task) -> ExpertOutput:
        return ExpertOutput(self.id)


class _Weather(_Expert):
    id = "weather"
    name = "Weather"
    capabilities = ("forecast",)
    examples: ClassVar[tuple[str, ...]] = WEATHER


class _General(_Expert):
    id = "general"
    name = "General"
    capabilities = ("chat",)


@pytest.fixture
def registry() -> ExpertRegistry:
    registry = ExpertRegistry()
    for expert in (_Expert(), _Weather(), _General()):
        registry.register(expert)
    return registry


# --- calibration -------------------------------------------------------------------------------------------


def test_temperature_recovers_the_generating_temperature() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4000, 5)) * 3
    true_t = 2.5
    probs = softmax(logits, true_t)
    labels = np.asarray([rng.choice(5, p=p) for p in probs], dtype=np.int64)
    assert fit_temperature(logits, labels) == pytest.approx(true_t, rel=0.1)
    assert fit_temperature(logits[:0], labels[:0]) == 1.0


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_not() -> None:
    confidences = np.full(100, 0.8)
    correct = np.arange(100) < 80
    assert expected_calibration_error(confidences, correct) == pytest.approx(0.0)
    assert expected_calibration_error(np.full(100, 0.99), correct) == pytest.approx(0.19)
    assert expected_calibration_error(np.asarray([]), np.asarray([], dtype=bool)) == 0.0


def test_rejection_threshold_spends_exactly_the_budget() -> None:
    scores = np.arange(100, dtype=float)
    correct = np.ones(100, dtype=bool)
    cut = fit_rejection_threshold(scores, correct, 0.05)
    assert (scores < cut).sum() == 5
    assert fit_rejection_threshold(scores, np.zeros(100, dtype=bool)) == -math.inf
    assert fit_rejection_threshold(scores[:3], correct[:3], 0.9) == 2.0


# --- classifiers ---------------------------------------------------------------------------------------------


def test_lbfgs_minimises_a_quadratic() -> None:
    target = np.asarray([1.0, -2.0, 3.0])
    result = minimize_lbfgs(lambda x: (float(((x - target) ** 2).sum()), 2 * (x - target)), np.zeros(3))
    assert np.allclose(result, target, atol=1e-4)


def test_head_and_centroids_separate_clusters() -> None:
    rng = np.random.default_rng(1)
    centres = np.eye(3, 16, dtype=np.float32) * 3
    labels = np.repeat(np.arange(3), 30)
    vectors = (centres[labels] + rng.normal(scale=0.5, size=(90, 16))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    head = LogisticHead.fit(vectors, labels, 3)
    centroids = CentroidClassifier.fit(vectors, labels, 3)
    assert (head.logits(vectors).argmax(axis=1) == labels).mean() == 1.0
    assert (centroids.logits(vectors).argmax(axis=1) == labels).mean() == 1.0
    with pytest.raises(ValueError):
        LogisticHead.fit(vectors, labels, 3, c=0)


def test_split_holds_out_per_label_and_keeps_small_labels_whole() -> None:
    labels = np.asarray([0] * 10 + [1] * 2)
    train, held = stratified_split(labels, 0.2, seed=0)
    assert sorted([*train, *held]) == list(range(12))
    assert (labels[held] == 0).sum() == 2 and (labels[held] == 1).sum() == 0


# --- route model and router ----------------------------------------------------------------------------------


def test_fit_route_model_calibrates_and_round_trips(tmp_path: Path) -> None:
    encoder = BagOfWordsEncoder()
    model = fit_route_model(routes(), encoder, holdout=0.25, oos_texts=["quantum physics lecture"])
    assert model.kind in ("head", "centroid")
    assert model.temperature > 0 and model.report["held_out"] == 3
    assert "held_out_oos_recall" in model.report
    path = tmp_path / "routes.model.npz"
    model.save(path)
    loaded = RouteModel.load(path)
    assert loaded.matches(routes(), encoder.model_id)
    assert not loaded.matches(routes()[:2], encoder.model_id)
    assert not loaded.matches(routes(), "another-encoder")
    vectors = encoder.encode(["play jazz"])
    assert np.allclose(loaded.logits(vectors), model.logits(vectors))


def test_fit_needs_two_routes_and_a_sane_holdout() -> None:
    with pytest.raises(ConfigError, match="two routes"):
        fit_route_model(routes()[:1], BagOfWordsEncoder())
    with pytest.raises(ConfigError, match="holdout"):
        fit_route_model(routes(), BagOfWordsEncoder(), holdout=1.5)


def test_damaged_model_file_is_a_config_error(tmp_path: Path) -> None:
    """A truncated archive raised zipfile.BadZipFile (a traceback), an empty file EOFError (click's bare "Aborted."),
    and a few bytes of anything numpy's advice about pickled data: each is now said to be damaged."""
    good = tmp_path / "good.npz"
    fit_route_model(routes(), BagOfWordsEncoder(), holdout=0.25).save(good)
    whole = good.read_bytes()
    path = tmp_path / "m.npz"
    for damaged in (b"not a zip", whole[: len(whole) // 2], b"", whole[:2]):
        path.write_bytes(damaged)
        with pytest.raises(ConfigError, match=r"is damaged or not a route model \(\w+\); run `vy-nexus routes fit`"):
            RouteModel.load(path)
    with pytest.raises(ConfigError, match="not found"):
        RouteModel.load(tmp_path / "missing.npz")


def test_router_ranks_routes_and_rejects_out_of_scope() -> None:
    router = SemanticRouter.build(routes(), BagOfWordsEncoder())
    assert router.model.kind == "centroid"  # no fitted model: centroids with default calibration
    music, nonsense = router.predict(["play some music", "zebra xylophone quantum"])
    assert music.route == "music" and music.confidence > 0.5
    assert music.ranked[0][0] == "music"
    assert nonsense.out_of_scope and nonsense.route is None and "out of scope" in nonsense.reason


def test_route_threshold_rejects_an_unsure_match() -> None:
    strict = [Route("weather", WEATHER, threshold=0.999), *routes()[1:]]
    router = SemanticRouter.build(strict, BagOfWordsEncoder())
    verdict = router.predict(["weather today music"])[0]
    assert verdict.out_of_scope and "below its threshold" in verdict.reason


def test_router_refuses_a_model_for_other_routes() -> None:
    model = RouteModel("centroid", ("x",), "", "", 1.0, 0.0, {"centroids": np.zeros((1, 4), dtype=np.float32)})
    with pytest.raises(ValueError):
        SemanticRouter(routes(), BagOfWordsEncoder(), model)


# --- strategy, hybrid, selection -----------------------------------------------------------------------------


def strategy(registry: ExpertRegistry, tmp_path: Path, file_routes: list[Route] | None = None) -> SemanticStrategy:
    path = None
    if file_routes is not None:
        path = tmp_path / "routes.yaml"
        save_routes(path, file_routes)
    return SemanticStrategy(registry, BagOfWordsEncoder(), routes_file=path, builtin_routes=False)


def test_strategy_maps_routes_to_experts_and_sums_their_probability(registry: ExpertRegistry, tmp_path: Path) -> None:
    semantic = strategy(registry, tmp_path, routes()[1:])
    # The expert's example route first, the file's next, then one from what an expert no route reaches declares.
    assert [r.name for r in semantic.routes()] == ["weather", "music", "timer", "general"]
    scores = semantic.score(Task(description="play the next song on the music player"))
    assert max(scores.confidences, key=scores.confidences.__getitem__) == "media"
    assert sum(scores.confidences.values()) == pytest.approx(1.0, abs=0.02)
    assert scores.matched[0] == "music"


def test_out_of_scope_task_falls_back_through_the_gating_engine(registry: ExpertRegistry, tmp_path: Path) -> None:
    gating = GatingEngine(registry, strategy(registry, tmp_path, routes()[1:]))
    decision = gating.route(Task(description="zebra xylophone quantum"))
    assert decision.fallback and decision.out_of_scope and decision.expert_ids == ["general"]
    assert "out of scope" in decision.reason
    assert gating.route(Task(description="will it rain today")).expert_ids == ["weather"]


def test_top_k_returns_several_experts(registry: ExpertRegistry, tmp_path: Path) -> None:
    gating = GatingEngine(registry, strategy(registry, tmp_path, routes()[1:]), threshold=0.0)
    decision = gating.route(Task(description="what is the weather forecast and play some jazz music"), top_k=2)
    assert len(decision.expert_ids) == 2 and set(decision.expert_ids) == {"weather", "media"}


def test_unknown_target_in_routes_file_is_a_clear_error(registry: ExpertRegistry, tmp_path: Path) -> None:
    semantic = strategy(registry, tmp_path, [Route("stocks", ("buy shares",), target="finance")])
    with pytest.raises(ConfigError, match="targets unknown expert 'finance'"):
        semantic.score(Task(description="buy shares"))
    assert [r.name for r in semantic.routes(check=False)] == ["weather", "stocks", "general", "media"]


def test_router_is_rebuilt_when_experts_change(registry: ExpertRegistry, tmp_path: Path) -> None:
    semantic = strategy(registry, tmp_path)
    first = semantic.router()
    assert semantic.router() is first
    registry.unregister("weather")
    rebuilt = semantic.router()
    assert rebuilt is not first and [r.name for r in rebuilt.routes] == ["general", "media"]
    for expert_id in ("general", "media"):
        registry.unregister(expert_id)
    with pytest.raises(ConfigError, match="no routes"):
        semantic.router()


def test_fitted_model_is_used_only_while_routes_match(registry: ExpertRegistry, tmp_path: Path) -> None:
    semantic = strategy(registry, tmp_path, routes()[1:])
    model = fit_route_model(semantic.routes(), semantic.encoder, kind="head")
    model.save(model_path_for(tmp_path / "routes.yaml"))
    assert semantic.router().model.kind == "head"
    save_routes(tmp_path / "routes.yaml", [*routes()[1:], Route("alarm", ("wake me up",), target="media")])
    registry.register(_Expert(), replace=True)  # bumps the version: the router is rebuilt from the new file
    assert semantic.router().model.kind == "centroid"


class _Fixed:
    def __init__(self, name: str, confidences: dict[str, float], typed: frozenset[str] = frozenset()) -> None:
        self.name = name
        self._confidences = confidences
        self._typed = typed

    def typed_experts(self, task: Task) -> frozenset[str]:
        return self._typed

    def score(self, task: Task) -> Scores:
        return Scores(confidences=self._confidences, matched=[self.name], reason=self.name)


def _product(semantic: dict[str, float], keyword: dict[str, float]) -> dict[str, float]:
    raw = {e: semantic.get(e, 0.01) * math.exp(2.0 * keyword.get(e, 0.0)) for e in {*semantic, *keyword}}
    total = sum(raw.values()) + max(0.0, 1 - sum(semantic.values()))
    return {e: v / total for e, v in raw.items()}


@pytest.mark.parametrize(
    ("keyword", "semantic", "expected"),
    [
        ({"a": 0.7}, {"a": 0.6, "b": 0.3}, _product({"a": 0.6, "b": 0.3}, {"a": 0.7})),
        ({}, {"a": 0.9}, {"a": 0.9}),  # keyword abstains
        ({"b": 0.7}, {}, {"b": 0.7}),  # semantic says out of scope
        ({"b": 0.7}, {"a": 0.9}, _product({"a": 0.9}, {"b": 0.7})),
        ({}, {}, {}),
    ],
)
def test_hybrid_combines_the_strategies_that_have_an_opinion(
    keyword: dict[str, float], semantic: dict[str, float], expected: dict[str, float]
) -> None:
    scores = HybridStrategy(_Fixed("kw", keyword), _Fixed("sem", semantic)).score(Task(description="x"))
    assert scores.confidences == pytest.approx(expected)
    assert scores.matched == ["kw", "sem"]
    with pytest.raises(ValueError):
        HybridStrategy(_Fixed("kw", {}), _Fixed("sem", {}), keyword_weight=-1)


def test_hybrid_agreement_raises_confidence_and_a_stray_keyword_does_not_overturn() -> None:
    semantic = {"code": 0.6, "data-analysis": 0.3, "general": 0.1}
    agree = HybridStrategy(_Fixed("kw", {"code": 0.7}), _Fixed("sem", semantic)).score(Task(description="x"))
    assert agree.confidences["code"] > 0.85
    stray = HybridStrategy(_Fixed("kw", {"data-analysis": 0.7}), _Fixed("sem", {"code": 0.9, "general": 0.1}))
    confidences = stray.score(Task(description="x")).confidences
    assert max(confidences, key=confidences.__getitem__) == "code"


def test_hybrid_keeps_only_the_experts_that_declare_the_task_type() -> None:
    keyword = _Fixed("kw", {"forecast": 0.99}, typed=frozenset({"forecast"}))
    semantic = _Fixed("sem", {"general": 0.97, "forecast": 0.02, "code": 0.01})
    scores = HybridStrategy(keyword, semantic).score(Task(description="x", type="forecast"))  # type: ignore[arg-type]
    assert scores.confidences == {"forecast": pytest.approx(1.0)}


def test_settings_choose_the_strategy(registry: ExpertRegistry, settings: Settings) -> None:
    assert isinstance(build_strategy(settings, registry), KeywordStrategy)
    settings.routing.strategy = "semantic"
    assert isinstance(build_strategy(settings, registry), SemanticStrategy)
    settings.routing.strategy = "hybrid"
    hybrid = build_strategy(settings, registry)
    assert isinstance(hybrid, HybridStrategy) and hybrid.name == "hybrid"


def test_a_configured_routes_file_must_exist(registry: ExpertRegistry, settings: Settings) -> None:
    assert SemanticStrategy.from_settings(registry, settings).routes_file is None  # default file absent: fine
    settings.routing.semantic.routes_file = "missing.yaml"
    semantic = SemanticStrategy.from_settings(registry, settings)
    with pytest.raises(ConfigError, match=r"routes file not found: .*missing\.yaml"):
        semantic.routes()
