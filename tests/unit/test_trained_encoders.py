"""Trained encoder versions without torch: the active pointer, switch and rollback, how routing resolves the encoder
and route model, encoder mismatch, and that routing never imports torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakes.encoder import BagOfWordsEncoder
from vy_nexus.config import Settings
from vy_nexus.errors import ConfigError, TrainingError
from vy_nexus.interfaces.cli import app
from vy_nexus.reasoning.embeddings import default_model_path, default_tokenizer_path
from vy_nexus.routing.encoders import EncoderStore, encoder_store, write_json_atomically
from vy_nexus.routing.route_model import fit_route_model, model_path_for
from vy_nexus.routing.routes import LabeledExample, Route
from vy_nexus.routing.semantic import SemanticRouter, encoder_from_settings, route_model_file_of, routes_file_of
from vy_nexus.training.data import TrainOptions, data_digest, seen_calibration_set, split_train_val
from vy_nexus.training.pipeline import require_torch, train_routes

runner = CliRunner()
ROUTES = [
    Route("weather", ("will it rain today", "weather forecast for tomorrow", "is it sunny outside")),
    Route("music", ("play some jazz", "next song please", "turn the music up")),
]


def make_version(store: EncoderStore, version: str, *, model: Path | None = None) -> Path:
    """A version directory holding a real ONNX encoder (the packaged MiniLM int8) and its tokenizer."""
    staging = store.directory / f".staging-{version}"
    staging.mkdir(parents=True)
    shutil.copyfile(model or default_model_path(), staging / "model.onnx")
    shutil.copyfile(default_tokenizer_path(), staging / "tokenizer.json")
    write_json_atomically(staging / "manifest.json", {"version": version})
    return store.install(staging, version).directory


def test_activate_and_rollback_walk_back_through_versions(tmp_path: Path) -> None:
    store = EncoderStore(tmp_path / "encoders")
    assert store.active() is None and store.versions() == []
    make_version(store, "v1")
    make_version(store, "v2")
    store.activate("v1")
    store.activate("v2")
    store.activate("v2")  # already active: no change to the history
    assert store.active() is not None and store.active().version == "v2"  # type: ignore[union-attr]
    assert store.history() == ["v1"]
    assert json.loads(store.pointer.read_text()) == {"active": "v2", "history": ["v1"]}
    assert store.rollback() == ("v2", "v1")
    assert store.rollback() == ("v1", None)  # back to the base encoder
    with pytest.raises(ConfigError, match="nothing to roll back"):
        store.rollback()
    assert store.versions() == ["v1", "v2"]  # rolled-back versions stay on disk
    assert not list(store.directory.glob(".*.tmp"))


def test_reinstalling_a_version_keeps_the_existing_directory(tmp_path: Path) -> None:
    store = EncoderStore(tmp_path / "encoders")
    first = make_version(store, "v1")
    marker = first / "marker"
    marker.write_text("kept")
    make_version(store, "v1")
    assert marker.is_file() and not list(store.directory.glob(".staging-*"))


def test_damaged_or_incomplete_versions_are_clear_errors(tmp_path: Path) -> None:
    store = EncoderStore(tmp_path / "encoders")
    with pytest.raises(ConfigError, match="missing or damaged"):
        store.activate("nope")
    directory = make_version(store, "v1")
    (directory / "tokenizer.json").unlink()
    with pytest.raises(ConfigError, match="incomplete"):
        store.get("v1")
    store.pointer.write_text("{not json")
    with pytest.raises(ConfigError, match="damaged"):
        store.active()
    store.pointer.write_text(json.dumps({"active": 3, "history": []}))
    with pytest.raises(ConfigError, match="damaged"):
        store.history()


def test_routing_uses_the_active_version_and_its_route_model(settings: Settings) -> None:
    base = encoder_from_settings(settings)
    assert route_model_file_of(settings) == model_path_for(routes_file_of(settings))
    store = encoder_store(settings)
    directory = make_version(store, "v1")
    store.activate("v1")
    trained = encoder_from_settings(settings)
    assert trained.encoder.encoder.model_path == directory / "model.onnx"  # type: ignore[attr-defined]
    assert route_model_file_of(settings) == directory / "routes.model.npz"
    assert trained.encode(["hello there"]).shape == base.encode(["hello there"]).shape
    settings.routing.semantic.model_path = str(default_model_path())  # an explicit encoder wins
    assert encoder_from_settings(settings).encoder.encoder.model_path == default_model_path()  # type: ignore[attr-defined]
    assert route_model_file_of(settings) == model_path_for(routes_file_of(settings))


def test_a_route_model_for_another_encoder_is_an_error_not_silent_routing() -> None:
    fitted_on = BagOfWordsEncoder(model_id="encoder-a")
    model = fit_route_model(ROUTES, fitted_on, kind="head")
    assert SemanticRouter.build(ROUTES, fitted_on, model).model.kind == "head"
    with pytest.raises(ConfigError, match=r"fitted on encoder encoder-a, but routing uses encoder encoder-b"):
        SemanticRouter.build(ROUTES, BagOfWordsEncoder(model_id="encoder-b"), model)


def test_rollback_command(home: Path, settings: Settings) -> None:
    result = runner.invoke(app, ["--home", str(home), "routes", "rollback"])
    assert result.exit_code == 2 and "nothing to roll back" in result.stderr
    store = encoder_store(settings)
    make_version(store, "v1")
    store.activate("v1")
    result = runner.invoke(app, ["--home", str(home), "routes", "rollback", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"deactivated": "v1", "active": None}


def test_train_without_torch_names_the_extra(
    home: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # find_spec answers "not installed"
    with pytest.raises(TrainingError, match=r"vy-nexus\[train\]"):
        require_torch()
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps({"text": f"t{i}", "intent": f"l{i % 2}"}) for i in range(8)))
    result = runner.invoke(app, ["--home", str(home), "routes", "train", "--data", str(data)])
    assert result.exit_code == 10 and "vy-nexus[train]" in result.stderr
    settings.routing.semantic.model_path = "custom.onnx"
    with pytest.raises(TrainingError, match="model_path is set"):
        train_routes(settings, None, [])  # type: ignore[arg-type]


def test_train_options_and_splits_are_validated() -> None:
    with pytest.raises(TrainingError, match="epochs"):
        TrainOptions(epochs=0).validate()
    with pytest.raises(TrainingError, match="cosine floor"):
        TrainOptions(cosine_floor=1.5).validate()
    examples = [LabeledExample(f"text {i}", f"label{i % 3}") for i in range(30)]
    train, val, source = split_train_val(examples, [], TrainOptions())
    assert len(train) + len(val) == 30 and len(val) == 3 and "held out" in source
    assert set(train.texts).isdisjoint(val.texts)
    train, val, source = split_train_val(examples, examples[:4], TrainOptions())
    assert len(train) == 30 and len(val) == 4 and source == "validation file"
    with pytest.raises(TrainingError, match="no training examples: other"):
        split_train_val(examples, [LabeledExample("x", "other")], TrainOptions())
    with pytest.raises(TrainingError, match="at least two labels"):
        split_train_val(examples[:1], [], TrainOptions())
    with pytest.raises(TrainingError, match="too few"):
        split_train_val(examples[:2], [], TrainOptions())
    train, val, source = split_train_val(examples, [], TrainOptions(holdout=0.0))
    assert len(train) == 30 and len(val) == 0 and "holdout 0" in source
    seen = seen_calibration_set(train, 0)
    assert 0 < len(seen) < 30 and set(seen.texts) <= set(train.texts) and set(seen.labels) == {0, 1, 2}
    with pytest.raises(TrainingError, match="holdout"):
        TrainOptions(holdout=-0.1).validate()
    assert data_digest(examples) != data_digest(examples[::-1])


NO_TORCH_SCRIPT = """
import importlib, pkgutil, sys
for name in ("torch", "transformers", "onnx"):
    sys.modules[name] = None  # importing any of them now fails
import vy_nexus
skipped = {"vy_nexus.training.finetune", "vy_nexus.training.export"}  # the training-only modules
for info in pkgutil.walk_packages(vy_nexus.__path__, "vy_nexus."):
    if info.name not in skipped and not info.name.endswith("__main__"):
        importlib.import_module(info.name)
from typer.testing import CliRunner
from vy_nexus.interfaces.cli import app
result = CliRunner().invoke(app, ["--home", sys.argv[1], "route", "review this python code for bugs", "--json"])
assert result.exit_code == 0, (result.output, result.exception)
assert '"semantic"' in result.stdout, result.stdout
print("routing ok without torch")
"""


@pytest.mark.slow  # imports every module in a fresh interpreter (~4 s); the slow suite is where torch is installed
def test_routing_never_imports_torch(home: Path) -> None:
    """Every module but the two training ones imports, and semantic routing runs, with torch unimportable."""
    result = subprocess.run(
        [sys.executable, "-c", NO_TORCH_SCRIPT, str(home)],
        capture_output=True,
        text=True,
        timeout=110,
        env={"PATH": "/usr/bin:/bin", "VY_NEXUS_ROUTING__STRATEGY": "semantic"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "routing ok without torch" in result.stdout


def test_the_progress_bar_reports_resume_epochs_and_stages(capsys: pytest.CaptureFixture[str]) -> None:
    from vy_nexus.interfaces.cli.training_commands import RichTrainingProgress

    with RichTrainingProgress() as progress:
        progress.begin(total_steps=4, done_steps=2)
        progress.step(0, loss=1.5, accuracy=0.5)
        progress.evaluated(0, accuracy=0.9, best=True)
        progress.stage("exporting")
    err = capsys.readouterr().err
    assert "resuming from the checkpoint at step 2 of 4" in err
    assert "epoch 1: validation accuracy 90.00% (best so far)" in err and "exporting..." in err
