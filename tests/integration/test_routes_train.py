"""Route training end to end on a small CLINC150 slice with the real MiniLM weights: a few steps of fine-tuning,
Ctrl-C and resume, ONNX export, the int8 cosine floor, the atomic switch and rollback. Needs the `train` extra
(torch): skipped without it; CI's slow suite installs it (`make test-slow`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vy_nexus.config import Settings, load_settings
from vy_nexus.errors import TrainingError
from vy_nexus.interfaces.cli import app
from vy_nexus.reasoning.embeddings import OnnxSentenceEncoder, default_model_path
from vy_nexus.routing.encoders import encoder_store
from vy_nexus.routing.routes import read_labeled
from vy_nexus.routing.semantic import SemanticStrategy, encoder_from_settings, route_model_file_of
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task
from vy_nexus.training.data import TrainOptions
from vy_nexus.training.pipeline import default_base_dir, train_routes
from vy_nexus.training.progress import QuietProgress

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]
FIXTURE = Path(__file__).parents[1] / "fixtures" / "routing"
SENTENCES = ["how do i say thank you in german", "set a timer for ten minutes", "what's my credit score"]


@pytest.fixture(autouse=True, scope="module")
def _train_extra() -> None:
    """Skipped without the `train` extra. Imported here, not at collection: every default-suite worker collects this
    module, and torch, transformers and onnx cost seconds to import."""
    for module in ("torch", "transformers", "onnx"):
        pytest.importorskip(module)


class Recording(QuietProgress):
    """Records what training reports; raises KeyboardInterrupt (a Ctrl-C) after ``interrupt_after`` steps."""

    def __init__(self, interrupt_after: int | None = None) -> None:
        self.interrupt_after = interrupt_after
        self.begun: tuple[int, int] | None = None
        self.steps = 0
        self.stages: list[str] = []

    def begin(self, total_steps: int, done_steps: int) -> None:
        self.begun = (total_steps, done_steps)

    def step(self, epoch: int, loss: float, accuracy: float) -> None:
        assert np.isfinite(loss) and 0.0 <= accuracy <= 1.0
        self.steps += 1
        if self.steps == self.interrupt_after:
            raise KeyboardInterrupt

    def stage(self, message: str) -> None:
        self.stages.append(message)


def test_export_reproduces_the_encoder(tmp_path: Path) -> None:
    """The fp32 export of the untouched base weights agrees with torch and with the packaged int8 MiniLM."""
    import torch

    from vy_nexus.training.export import compare_embeddings, export_onnx, quantise_int8
    from vy_nexus.training.finetune import Batcher, RouteClassifier, load_base_encoder

    base = default_base_dir()
    encoder = load_base_encoder(base)
    export_onnx(base, encoder.state_dict(), tmp_path / "fp32.onnx")
    onnx_vectors = OnnxSentenceEncoder(tmp_path / "fp32.onnx", base / "tokenizer.json").encode(SENTENCES)
    batcher = Batcher(base / "tokenizer.json", 128)
    ids, mask = Batcher.pad(batcher.tokenize(SENTENCES))
    with torch.inference_mode():
        pooled = RouteClassifier(encoder.eval(), 2).embed(ids, mask)
    torch_vectors = torch.nn.functional.normalize(pooled, dim=1).numpy()
    assert np.abs(onnx_vectors - torch_vectors).max() < 1e-4
    packaged = OnnxSentenceEncoder(default_model_path(), base / "tokenizer.json").encode(SENTENCES)
    assert (np.sum(onnx_vectors * packaged, axis=1) > 0.98).all()
    kept = quantise_int8(tmp_path / "fp32.onnx", tmp_path / "int8.onnx")
    assert len(kept) == 6  # one feed-forward output projection per layer stays fp32
    tokenizer = base / "tokenizer.json"
    check = compare_embeddings(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", tokenizer, SENTENCES, 0.98, 128)
    assert check.accepted and check.min_cosine > 0.97
    assert (tmp_path / "int8.onnx").stat().st_size < (tmp_path / "fp32.onnx").stat().st_size / 2


def test_layer_decay_gives_each_depth_its_learning_rate() -> None:
    from transformers import BertConfig, BertModel

    from vy_nexus.training.finetune import encoder_groups

    encoder = BertModel(BertConfig(num_hidden_layers=3, hidden_size=8, num_attention_heads=2, intermediate_size=16))
    groups = encoder_groups(encoder, 1e-4, 0.5)
    assert [g["lr"] for g in groups] == pytest.approx([1.25e-5, 2.5e-5, 5e-5, 1e-4])  # embeddings, layers 0-2
    assert sum(len(g["params"]) for g in groups) == len(list(encoder.parameters()))
    assert all(name.startswith("embeddings.") for name, p in encoder.named_parameters() if p is groups[0]["params"][0])
    top = {id(p) for p in groups[-1]["params"]}
    assert all(
        id(p) in top for name, p in encoder.named_parameters() if name.startswith(("pooler.", "encoder.layer.2."))
    )
    assert [g["lr"] for g in encoder_groups(encoder, 1e-4, 1.0)] == [1e-4]


def _route(settings: Settings, text: str) -> tuple[list[str], str]:
    routed = load_settings(settings.home, environ={"VY_NEXUS_ROUTING__STRATEGY": "semantic"})
    decision = VyNexus(routed, observe=False).route(Task(description=text))
    return decision.expert_ids, decision.reason


def test_train_interrupt_resume_quantise_switch_and_rollback(settings: Settings, home: Path) -> None:
    registry = VyNexus(settings, observe=False).registry
    examples = read_labeled(FIXTURE / "train.jsonl")
    val = read_labeled(FIXTURE / "val.jsonl")
    store = encoder_store(settings)
    base_encoder = encoder_from_settings(settings).model_id
    # An impossible cosine floor: int8 must be refused and fp32 kept.
    options = TrainOptions(epochs=1, max_steps=4, checkpoint_every=1, cosine_floor=0.999999)

    # Ctrl-C after two steps: routing is untouched and the position is saved.
    with pytest.raises(TrainingError, match="interrupted at step 2 of 4") as interrupted:
        train_routes(settings, registry, examples, val=val, target="research", options=options, progress=Recording(2))
    assert interrupted.value.exit_code == 130
    assert store.active() is None and store.versions() == []
    assert not (home / "routes.yaml").exists()
    assert encoder_from_settings(settings).model_id == base_encoder
    assert len(list((settings.cache_dir / "training").glob("*/last.pt"))) == 1

    # The same command resumes at step 2, finishes, refuses int8 under the floor and switches to fp32.
    progress = Recording()
    first = train_routes(settings, registry, examples, val=val, target="research", options=options, progress=progress)
    assert progress.begun == (4, 2) and progress.steps == 2
    assert progress.stages[-1].startswith("switching")
    check = first.manifest["metrics"]["quantisation"]
    assert not first.quantised and not check["accepted"] and check["mean_cosine"] < options.cosine_floor
    assert (first.directory / "model.onnx").stat().st_size > 60_000_000  # fp32 MiniLM
    assert first.previous is None and store.active().version == first.version  # type: ignore[union-attr]
    assert first.version.startswith("enc-") and first.manifest["data"] and first.manifest["settings"]["max_steps"] == 4
    assert first.manifest["metrics"]["validation"]["closed_set_accuracy"] >= 0.9
    assert route_model_file_of(settings) == first.directory / "routes.model.npz"
    assert first.model.model_id == encoder_from_settings(settings).model_id != base_encoder
    assert not list((settings.cache_dir / "training").glob("*/last.pt"))  # checkpoints dropped once switched
    experts, reason = _route(settings, "how would i say good morning in italian")
    assert experts == ["research"] and "translate" in reason
    strategy = SemanticStrategy.from_settings(registry, settings)
    assert strategy.load_model() is not None and str(first.directory) in strategy.model_note  # the trained pair

    # A second run through the CLI (default floor): int8 is accepted and becomes active; the first is kept.
    result = CliRunner().invoke(
        app,
        [
            "--home", str(home), "routes", "train", "--data", str(FIXTURE / "train.jsonl"),
            "--val", str(FIXTURE / "val.jsonl"), "--target", "research", "--max-steps", "2", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    second = json.loads(result.stdout)
    assert second["quantised"] and second["metrics"]["quantisation"]["mean_cosine"] >= 0.98
    assert second["previous"] == first.version and second["version"] != first.version
    second_dir = Path(second["directory"])
    assert (second_dir / "model.onnx").stat().st_size < 40_000_000  # int8
    assert store.active().version == second["version"]  # type: ignore[union-attr]
    assert _route(settings, "set a timer for 5 minutes")[0] == ["research"]

    # Rollback returns to the first version, then to the base encoder.
    result = CliRunner().invoke(app, ["--home", str(home), "routes", "rollback"])
    assert result.exit_code == 0 and first.version in result.stdout
    assert encoder_from_settings(settings).model_id == first.model.model_id
    assert _route(settings, "how would i say good morning in italian")[0] == ["research"]
    assert store.rollback() == (first.version, None)
    assert encoder_from_settings(settings).model_id == base_encoder
    assert store.versions() == sorted([first.version, second["version"]])


def test_holdout_zero_trains_on_every_example_and_cuts_at_the_oos_recall(home: Path, settings: Settings) -> None:
    """`--holdout 0`: every in-scope example trains, the last step is kept, the ensemble head is weighted on seen
    sentences and the cut rejects the share of the out-of-scope examples asked for (oos lines of --data)."""
    examples = read_labeled(FIXTURE / "train.jsonl")
    n_oos = sum(e.label == "oos" for e in examples)
    result = CliRunner().invoke(
        app,
        [
            "--home", str(home), "routes", "train", "--data", str(FIXTURE / "train.jsonl"), "--holdout", "0",
            "--target", "research", "--max-steps", "2", "--min-oos-recall", "0.7", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    metrics = manifest["metrics"]
    assert metrics["steps"] == 2 and metrics["best_val_accuracy_during_training"] is None
    assert manifest["settings"]["holdout"] == 0.0 and manifest["settings"]["validation"].startswith("none")
    report = metrics["route_model"]
    assert report["head"] == "ensemble" and report["cut"] == "out-of-scope recall"
    assert report["held_out_source"].startswith("train sentences the encoder trained on")
    assert report["held_out_oos_recall"] >= 0.7 and report["oos_examples"] == n_oos
    assert _route(settings, "how would i say good morning in italian")[0] == ["research"]
