"""Routing as an operator and an adversary use it, through the CLI and the library: caches whose directories are
files, texts that differ only in what the routing cache must not fold, evaluation data with nothing in scope."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vy_nexus.config import load_settings
from vy_nexus.interfaces.cli import app
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task

runner = CliRunner()
ROUTES_FILE = """routes:
  - name: travel
    target: research
    utterances:
      - how do i say hello in french
      - translate thank you into german
      - what is the word for train station in spanish
"""


def invoke(home: Path, *args: str, strategy: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--home", str(home), *args], env={"VY_NEXUS_ROUTING__STRATEGY": strategy})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def blocked_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with a routes file (so routing refits) whose cache directories are plain files."""
    home = tmp_path_factory.mktemp("blocked-caches")
    (home / "routes.yaml").write_text(ROUTES_FILE, encoding="utf-8")
    (home / "cache").mkdir()
    for name in ("embeddings", "route-models"):
        (home / "cache" / name).write_text("not a directory\n", encoding="utf-8")
    return home


def test_route_goes_on_when_the_caches_cannot_be_written(blocked_home: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = "how do i say good night in italian"
    with caplog.at_level(logging.WARNING):
        code, out, err = invoke(blocked_home, "route", text, "--json", strategy="hybrid")
    assert code == 0, err
    assert json.loads(out)["expert_ids"] == ["research"]
    assert "cannot write the embedding cache" in caplog.text
    assert "cannot save the refitted route model" in caplog.text
    assert "Traceback" not in err


def test_routes_list_says_routing_will_refit_not_that_refits_are_off(blocked_home: Path) -> None:
    code, out, err = invoke(blocked_home, "routes", "list", "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert listed["fitted"] is False
    assert "the first routed task refits them automatically" in listed["model"]
    assert "automatic refits are off" not in listed["model"]


def test_cache_clear_leaves_directories_alone(tmp_path: Path) -> None:
    embeddings = tmp_path / "cache" / "embeddings"
    (embeddings / "odd.npz").mkdir(parents=True)
    (embeddings / "real.npz").write_bytes(b"junk")
    code, out, err = invoke(tmp_path, "cache", "stats")
    assert code == 0, err
    assert "1 file(s) (1 damaged: rebuilt on next use)" in " ".join(out.split())
    code, out, err = invoke(tmp_path, "cache", "clear")
    assert code == 0, err
    assert "removed 1 embedding cache file(s)" in out
    assert (embeddings / "odd.npz").is_dir() and not (embeddings / "real.npz").exists()


def test_cached_decision_is_not_served_for_a_text_with_other_line_structure(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={"VY_NEXUS_ROUTING__STRATEGY": "keyword"})
    system = VyNexus(settings, observe=False, load_plugins=False)
    one_line = system.route(Task(description="summarise name,price apple,3 pear,4 plum,5"))
    table = system.route(Task(description="summarise\nname,price\napple,3\npear,4\nplum,5"))
    assert not table.cache_hit
    assert one_line.expert_ids == ["writing"] and table.expert_ids == ["data-analysis"], (one_line, table)
    assert system.route(Task(description="Summarise  name,price apple,3 pear,4 plum,5")).cache_hit


def test_routes_eval_with_nothing_in_scope_reports_no_accuracy(tmp_path: Path) -> None:
    data = tmp_path / "oos.jsonl"
    rows = [{"text": "who painted the mona lisa", "intent": "oos"}, {"text": "zzz qqq", "intent": "oos"}]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    code, out, err = invoke(tmp_path, "routes", "eval", "--data", str(data), "--latency-sample", "0", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["in_scope"], report["out_of_scope"]) == (0, 2)
    assert report["accuracy"] is None and report["closed_set_accuracy"] is None
    assert report["ece"] is None and report["mean_confidence"] is None
    code, out, err = invoke(tmp_path, "routes", "eval", "--data", str(data), "--latency-sample", "0")
    assert code == 0, err
    assert "0.0%" not in out.split("out-of-scope recall")[0]  # accuracies on no examples are "-", not 0.0%


def test_routes_train_refuses_a_damaged_routes_file_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vy_nexus.errors import ConfigError
    from vy_nexus.routing.routes import LabeledExample
    from vy_nexus.training import pipeline

    def reached_training() -> None:
        raise AssertionError("fine-tuning was about to start with a damaged routes file")

    monkeypatch.setattr(pipeline, "require_torch", reached_training)
    (tmp_path / "routes.yaml").write_text("routes:\n  - name: travel\n    utterances: [\n", encoding="utf-8")
    settings = load_settings(tmp_path, environ={})
    examples = [LabeledExample("say hi in french", "translate"), LabeledExample("set a timer", "timer")]
    with pytest.raises(ConfigError, match=r"routes file .*routes\.yaml cannot be parsed"):
        pipeline.train_routes(settings, VyNexus(settings, observe=False).registry, examples)


def test_routes_train_report_prints_the_version_without_markup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from vy_nexus.training import pipeline

    metrics = {
        "best_val_accuracy_during_training": 0.9,
        "best_epoch": 0,
        "epochs": 1,
        "minutes_per_epoch": 0.1,
        "quantisation": {"floor": 0.98, "mean_cosine": 0.99, "min_cosine": 0.97},
        "validation": {"accuracy": None, "closed_set_accuracy": None, "oos_recall": 0.5},  # out-of-scope only
    }
    outcome = SimpleNamespace(
        version="enc-1234", previous=None, quantised=True, manifest={"metrics": metrics}, directory=tmp_path
    )
    monkeypatch.setattr(pipeline, "require_torch", lambda: None)
    monkeypatch.setattr(pipeline, "train_routes", lambda *args, **kwargs: outcome)
    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "hi", "intent": "a"}\n{"text": "yo", "intent": "b"}\n', encoding="utf-8")
    code, out, err = invoke(tmp_path, "routes", "train", "--data", str(data))
    assert code == 0, err
    assert "trained encoder enc-1234 is now active (previous: base)" in out
    assert "[bold]" not in out and "[/]" not in out
    assert "validation: accuracy -, closed-set -, out-of-scope recall 50.0%" in out
