"""Semantic routing end to end with the real MiniLM encoder on a small CLINC150 slice (tests/fixtures/routing)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vy_nexus.config import load_settings
from vy_nexus.interfaces.cli import app
from vy_nexus.routing.routes import read_labeled
from vy_nexus.routing.training import evaluate_routes
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task

FIXTURE = Path(__file__).parents[1] / "fixtures" / "routing"
runner = CliRunner()


def invoke(home: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--home", str(home), *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module", autouse=True)
def _val_set_encoded_once() -> Iterator[None]:
    """The tests here evaluate the same val.jsonl four times (by intent and by domain, through the library and
    through the CLI): the encoder's vectors for a batch it already encoded in this module are reused (a copy).
    Every evaluation still runs in full on the real vectors; single texts (routing, latency samples) always encode."""
    from vy_nexus.reasoning.embeddings import OnnxSentenceEncoder

    real_encode = OnnxSentenceEncoder.encode
    seen: dict[tuple[object, ...], Any] = {}

    def encode(self: OnnxSentenceEncoder, texts: Sequence[str]) -> Any:
        if isinstance(texts, str) or len(texts) < 2:
            return real_encode(self, texts)
        key = (self.model_path, self.tokenizer_path, self.max_length, self.int8_matmul, tuple(texts))
        if key not in seen:
            seen[key] = real_encode(self, texts)
        return seen[key].copy()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(OnnxSentenceEncoder, "encode", encode)
        yield


@pytest.fixture(scope="module")
def fitted_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose routes were fitted once through the CLI: 8 intents routed to the research expert (without the
    built-in experts' packaged utterances, which would absorb the out-of-scope examples)."""
    home = tmp_path_factory.mktemp("routing-home")
    (home / "config.yaml").write_text("routing:\n  semantic:\n    builtin_routes: false\n", encoding="utf-8")
    code, out, err = invoke(
        home, "routes", "fit", "--data", str(FIXTURE / "train.jsonl"), "--target", "research", "--json"
    )
    assert code == 0, err
    fitted = json.loads(out)
    assert fitted["routes"] == 13 and fitted["new_routes"] == 8  # 5 built-in experts' example routes + 8 intents
    assert fitted["untargeted_routes"] == []
    assert (home / "routes.yaml").is_file() and (home / "routes.model.npz").is_file()
    return home


def test_fitted_routes_are_accurate_and_calibrated(fitted_home: Path) -> None:
    settings = load_settings(fitted_home, environ={})
    system = VyNexus(settings, observe=False)
    examples = read_labeled(FIXTURE / "val.jsonl", "intent")
    report, _ = evaluate_routes(settings, system.registry, examples, latency_sample=5)
    assert report.in_scope == 80 and report.out_of_scope == 25
    assert report.closed_set_accuracy >= 0.9
    assert report.accuracy >= 0.85
    assert report.oos_recall is not None and report.oos_recall >= 0.3
    assert report.ece <= 0.12  # confidence tracks accuracy
    by_domain = read_labeled(FIXTURE / "val.jsonl", "domain")
    domain_report, _ = evaluate_routes(settings, system.registry, by_domain, label_field="domain", latency_sample=0)
    assert domain_report.labels == 6 and domain_report.closed_set_accuracy >= report.closed_set_accuracy


def test_system_routes_semantically_and_falls_back_out_of_scope(fitted_home: Path) -> None:
    settings = load_settings(fitted_home, environ={"VY_NEXUS_ROUTING__STRATEGY": "semantic"})
    system = VyNexus(settings, observe=False)
    decision = system.route(Task(description="how would i say good morning in italian"))
    assert decision.strategy == "semantic" and decision.expert_ids == ["research"]
    assert decision.capabilities[0] == "translate" and decision.confidence > 0.5
    assert system.route(Task(description="how would i say good morning in italian")).cache_hit
    outside = system.route(Task(description="who painted the mona lisa and when was it stolen"))
    assert outside.fallback and outside.expert_ids == ["general"], outside.reason
    permissive = load_settings(
        fitted_home,
        environ={"VY_NEXUS_ROUTING__STRATEGY": "semantic", "VY_NEXUS_ROUTING__CONFIDENCE_THRESHOLD": "0"},
    )
    several = VyNexus(permissive, observe=False).route(
        Task(description="write a short email to my landlord about the broken heater"), top_k=2
    )
    assert several.expert_ids[0] == "writing" and len(several.expert_ids) == 2
    assert several.confidences["writing"] >= several.confidences[several.expert_ids[1]]


def test_hybrid_strategy_through_the_system(fitted_home: Path) -> None:
    settings = load_settings(fitted_home, environ={"VY_NEXUS_ROUTING__STRATEGY": "hybrid"})
    system = VyNexus(settings, observe=False)
    decision = system.route(Task(description="fix the bug in this python function"))
    assert decision.strategy == "hybrid" and decision.expert_ids == ["code"]


def test_cli_eval_list_and_cache(fitted_home: Path) -> None:
    code, out, err = invoke(
        fitted_home, "routes", "eval", "--data", str(FIXTURE / "val.jsonl"), "--latency-sample", "3", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["closed_set_accuracy"] >= 0.9
    code, out, _ = invoke(
        fitted_home,
        "routes",
        "eval",
        "--data",
        str(FIXTURE / "val.jsonl"),
        "--label-field",
        "domain",
        "--latency-sample",
        "0",
    )
    assert code == 0 and "out-of-scope recall" in out
    code, out, _ = invoke(fitted_home, "routes", "list", "--json")
    listing = json.loads(out)
    assert listing["fitted"] is True and len(listing["routes"]) == 13
    code, out, _ = invoke(fitted_home, "cache", "stats", "--json")
    stats = json.loads(out)
    assert stats["routing_cache"]["hits"] == 0 and "per process" in stats["routing_cache_scope"]
    assert stats["embedding_cache"]["vectors"] >= 190
    code, out, _ = invoke(fitted_home, "cache", "stats")
    assert "per process" in out and "embedding cache" in out


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    code, _, err = invoke(tmp_path, "routes", "fit", "--data", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "labeled data file not found" in err
    code, _, err = invoke(tmp_path, "routes", "eval", "--data", str(FIXTURE / "val.jsonl"), "--label-field", "colour")
    assert code == 2 and "missing label field 'colour'" in " ".join(err.split())


def test_unknown_route_target_is_reported_by_fit_and_by_routing(tmp_path: Path, fitted_home: Path) -> None:
    # The same utterances were embedded for fitted_home: start from its embedding cache instead of the encoder.
    shutil.copytree(fitted_home / "cache" / "embeddings", tmp_path / "cache" / "embeddings")
    shutil.copy(fitted_home / "config.yaml", tmp_path / "config.yaml")  # without the packaged routes, like it
    code, out, _ = invoke(tmp_path, "routes", "fit", "--data", str(FIXTURE / "train.jsonl"))
    assert code == 0 and "target no registered expert" in out
    settings = load_settings(tmp_path, environ={"VY_NEXUS_ROUTING__STRATEGY": "semantic"})
    system = VyNexus(settings, observe=False)
    with pytest.raises(Exception, match="targets unknown expert"):
        system.route(Task(description="set a timer for 5 minutes"))
    code, out, _ = invoke(tmp_path, "cache", "clear")
    assert code == 0 and "removed 1 embedding cache file" in out


def test_cli_list_table(fitted_home: Path) -> None:
    code, out, _ = invoke(fitted_home, "routes", "list")
    assert code == 0 and "13 routes; model: fitted by `routes fit`" in out and "translate" in out


def test_concurrent_semantic_routing_is_consistent(fitted_home: Path) -> None:
    import threading

    settings = load_settings(fitted_home, environ={"VY_NEXUS_ROUTING__STRATEGY": "semantic"})
    system = VyNexus(settings, observe=False)
    texts = ["set a timer for ten minutes", "what's the weather like in oslo", "play some jazz", "book a flight"]
    expected = {text: system.gating.strategy.score(Task(description=text)).matched[0] for text in texts}
    seen: list[tuple[str, str]] = []

    def work() -> None:
        for text in texts * 3:
            seen.append((text, system.gating.strategy.score(Task(description=text)).matched[0]))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 36 and all(expected[text] == route for text, route in seen)


def test_fit_into_a_configured_json_routes_file_is_deterministic(tmp_path: Path, fitted_home: Path) -> None:
    # The same utterances were embedded for fitted_home: start from its embedding cache instead of the encoder.
    shutil.copytree(fitted_home / "cache" / "embeddings", tmp_path / "cache" / "embeddings")
    (tmp_path / "config.yaml").write_text(
        "routing:\n  semantic:\n    routes_file: routing/intents.json\n    builtin_routes: false\n"
    )
    args = ("routes", "fit", "--data", str(FIXTURE / "train.jsonl"), "--target", "general", "--json")
    code, first, err = invoke(tmp_path, *args)
    assert code == 0, err
    routes_file = tmp_path / "routing" / "intents.json"
    assert json.loads(routes_file.read_text())["routes"][0]["target"] == "general"
    assert (tmp_path / "routing" / "intents.model.npz").is_file()
    code, second, _ = invoke(tmp_path, *args)  # refitting the same data changes nothing
    assert code == 0 and json.loads(second)["new_routes"] == 0
    assert json.loads(second)["report"] == json.loads(first)["report"]


def test_two_fits_at_once_keep_both_sets_of_routes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first fit reads the routes file, then pauses (up to 0.5 s, or until the second fit is done); without the
    lock the second would write its routes meanwhile and the first's save would drop them."""
    from vy_nexus.routing import training
    from vy_nexus.routing.routes import LabeledExample, load_routes

    (tmp_path / "config.yaml").write_text("routing:\n  semantic:\n    builtin_routes: false\n", encoding="utf-8")
    settings = load_settings(tmp_path, environ={})
    registry = VyNexus(settings, observe=False).registry
    read_first, second_done = threading.Event(), threading.Event()
    merge = training.with_labeled_routes

    def merge_then_pause(*args: Any) -> Any:
        merged = merge(*args)
        if not read_first.is_set():
            read_first.set()
            second_done.wait(0.5)
        return merged

    monkeypatch.setattr(training, "with_labeled_routes", merge_then_pause)

    def fit(label: str) -> None:
        examples = [LabeledExample(f"{label} request number {n}", label) for n in range(4)]
        training.fit_routes(settings, registry, examples, target="research")

    first = threading.Thread(target=fit, args=("alpha",))
    first.start()
    assert read_first.wait(30)
    fit("beta")
    second_done.set()
    first.join(30)
    assert {route.name for route in load_routes(tmp_path / "routes.yaml")} == {"alpha", "beta"}
