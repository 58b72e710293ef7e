"""Fine-tune a BERT-style sentence encoder to classify routes (torch; imported only by ``routes train``).

The model is the encoder, mean pooling over the attention mask (as at run time) and a head, trained with
cross-entropy with label smoothing and AdamW (the head learns faster than the encoder, lower encoder layers more
slowly than upper ones with a layer decay below 1), a linear warm-up and decay. After every epoch the encoder is
scored on the validation set with its head and the best epoch is kept (with no validation set, the last).

Checkpoints make a run resumable: ``last.pt`` (model, optimiser, schedule, position, random state) is written every
``checkpoint_every`` steps, at the end of each epoch and when Ctrl-C arrives; ``best.pt`` holds the best epoch's
weights. Running the same data with the same options finds them again and continues where the last run stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn

from vy_nexus.errors import TrainingError
from vy_nexus.training.data import LabeledSet, TrainOptions
from vy_nexus.training.progress import TrainingProgress

CHECKPOINT_FORMAT = 1
EVAL_BATCH = 128


def load_base_encoder(base_dir: Path, *, eager_attention: bool = False) -> nn.Module:
    """The pretrained encoder (a Hugging Face model directory: config.json + weights), loaded offline."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    options: dict[str, Any] = {"attn_implementation": "eager"} if eager_attention else {}
    try:
        model: nn.Module = AutoModel.from_pretrained(str(base_dir), local_files_only=True, **options)
    except (OSError, ValueError) as exc:
        raise TrainingError(f"cannot load the base encoder from {base_dir}: {exc}") from exc
    return model


class RouteClassifier(nn.Module):  # type: ignore[misc]  # torch is typed as Any here (pyproject)
    """Encoder + mean pooling + a head: scaled cosine (``scale`` times the cosine between the L2-normalised embedding,
    as routing sees it, and each label's weight vector; no bias) or, with ``scale`` None, a linear head on the raw
    pooled vector."""

    def __init__(self, encoder: nn.Module, n_labels: int, scale: float | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.scale = scale
        self.head = nn.Linear(int(encoder.config.hidden_size), n_labels, bias=scale is None)

    def embed(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled: torch.Tensor = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return pooled

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pooled = self.embed(ids, mask)
        if self.scale is None:
            linear: torch.Tensor = self.head(pooled)
            return linear
        cosine = nn.functional.normalize(pooled, dim=1) @ nn.functional.normalize(self.head.weight, dim=1).T
        return cosine * self.scale


def encoder_groups(encoder: nn.Module, learning_rate: float, layer_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups for the encoder, one per depth: the top transformer layer (and anything above the
    layers, e.g. an unused pooler) at ``learning_rate``, each layer below at ``layer_decay`` times the next, the
    embeddings one step below the first layer. With a decay of 1, one group."""
    if layer_decay == 1.0:
        return [{"params": list(encoder.parameters()), "lr": learning_rate}]
    layers = int(encoder.config.num_hidden_layers)
    depths: dict[int, list[nn.Parameter]] = {}
    for name, parameter in encoder.named_parameters():
        parts = name.split(".")
        if parts[0] == "embeddings":
            depth = 0
        elif len(parts) > 2 and parts[:2] == ["encoder", "layer"] and parts[2].isdigit():
            depth = int(parts[2]) + 1
        else:
            depth = layers
        depths.setdefault(depth, []).append(parameter)
    return [
        {"params": params, "lr": learning_rate * layer_decay ** (layers - depth)}
        for depth, params in sorted(depths.items())
    ]


class Batcher:
    """Tokenises once, then pads each batch to its longest text."""

    def __init__(self, tokenizer_file: Path, max_length: int) -> None:
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        tokenizer.enable_truncation(max_length=max_length)
        tokenizer.no_padding()
        self._tokenizer = tokenizer

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self._tokenizer.encode_batch(list(texts))]

    @staticmethod
    def pad(rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(row) for row in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, : len(row)] = 1
        return ids, mask


@dataclass
class RunState:
    """Where a run is: the position (``epoch``, next ``step`` within it) and what it has learned so far."""

    epoch: int = 0
    step: int = 0
    global_step: int = 0
    best_accuracy: float = -1.0
    best_epoch: int = -1
    finished: bool = False
    history: list[dict[str, float]] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    seconds_this_epoch: float = 0.0


@dataclass(frozen=True, slots=True)
class FineTuneResult:
    best_file: Path
    best_accuracy: float
    best_epoch: int
    epochs: int
    steps: int
    resumed_from_step: int
    seconds_per_epoch: float
    history: list[dict[str, float]]


def _save(path: Path, payload: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    torch.save(payload, temporary)
    temporary.replace(path)


def _accuracy(model: RouteClassifier, batcher: Batcher, data: LabeledSet) -> float:
    rows = batcher.tokenize(data.texts)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    correct = 0
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), EVAL_BATCH):
            chunk = order[start : start + EVAL_BATCH]
            ids, mask = Batcher.pad([rows[i] for i in chunk])
            predicted = model(ids, mask).argmax(dim=1)
            truth = torch.tensor([data.labels[i] for i in chunk])
            correct += int((predicted == truth).sum())
    model.train()
    return correct / max(len(rows), 1)


def _epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray[Any, np.dtype[np.int64]]]:
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def _schedule(total: int, warmup: float) -> Any:
    warm = max(1, math.ceil(total * warmup))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(1, total - warm))

    return factor


def _steps(state: RunState, batches_per_epoch: int, epochs: int) -> Iterator[tuple[int, int]]:
    for epoch in range(state.epoch, epochs):
        for step in range(state.step if epoch == state.epoch else 0, batches_per_epoch):
            yield epoch, step


def fine_tune(
    base_dir: Path,
    tokenizer_file: Path,
    train: LabeledSet,
    val: LabeledSet,
    options: TrainOptions,
    run_dir: Path,
    run_key: str,
    progress: TrainingProgress,
) -> FineTuneResult:
    """Train (or resume) and return where the best weights are. Ctrl-C saves the position and raises
    ``TrainingError(interrupted=True)``; nothing outside ``run_dir`` is touched."""
    torch.manual_seed(options.seed)
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    batcher = Batcher(tokenizer_file, options.max_length)
    rows = batcher.tokenize(train.texts)
    labels = torch.tensor(train.labels, dtype=torch.long)
    model = RouteClassifier(load_base_encoder(base_dir), len(train.label_names), options.head_scale)
    model.train()
    optimizer = torch.optim.AdamW(
        [
            *encoder_groups(model.encoder, options.learning_rate, options.layer_decay),
            {"params": list(model.head.parameters()), "lr": options.head_learning_rate},
        ],
        weight_decay=options.weight_decay,
    )
    batches_per_epoch = math.ceil(len(rows) / options.batch_size)
    total = batches_per_epoch * options.epochs
    if options.max_steps is not None:
        total = min(total, options.max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(total, options.warmup))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=options.label_smoothing)
    run_dir.mkdir(parents=True, exist_ok=True)
    last_file, best_file = run_dir / "last.pt", run_dir / "best.pt"
    state = RunState()
    if last_file.is_file():
        saved = torch.load(last_file, weights_only=True)
        if saved.get("format") != CHECKPOINT_FORMAT or saved.get("run_key") != run_key:
            raise TrainingError(f"checkpoint {last_file} belongs to another run; delete {run_dir} to start over")
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"])
        state = RunState(**saved["state"])
    resumed_from = state.global_step

    def checkpoint() -> None:
        _save(
            last_file,
            {
                "format": CHECKPOINT_FORMAT,
                "run_key": run_key,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state(),
                "state": vars(state) | {"history": list(state.history), "epoch_seconds": list(state.epoch_seconds)},
            },
        )

    def end_epoch(epoch: int) -> None:
        # Nothing held out (holdout 0): no score to choose by, so each epoch replaces the last and the last is kept.
        accuracy = _accuracy(model, batcher, val) if len(val) else math.nan
        best = accuracy > state.best_accuracy or not len(val)
        if best:
            state.best_accuracy, state.best_epoch = accuracy, epoch
            _save(best_file, {"model": model.state_dict(), "accuracy": accuracy, "epoch": epoch})
        state.history.append({"epoch": epoch, "val_accuracy": accuracy})
        state.epoch_seconds.append(state.seconds_this_epoch)
        state.seconds_this_epoch = 0.0
        progress.evaluated(epoch, accuracy, best)

    progress.begin(total, min(state.global_step, total))
    losses: list[float] = []
    hits = seen = 0
    started = time.perf_counter()
    batches: tuple[int, list[np.ndarray[Any, np.dtype[np.int64]]]] = (-1, [])
    try:
        if state.step > 0 and (state.step >= batches_per_epoch or state.global_step >= total):
            end_epoch(state.epoch)  # stopped after an epoch's last step, before it was scored
            state.epoch, state.step = state.epoch + 1, 0
            checkpoint()
        for epoch, step in _steps(state, batches_per_epoch, options.epochs):
            if state.finished or state.global_step >= total:
                break
            if step == 0:
                losses, hits, seen = [], 0, 0
            if batches[0] != epoch:
                batches = (epoch, _epoch_batches(len(rows), options.batch_size, options.seed, epoch))
            chosen = batches[1][step]
            ids, mask = Batcher.pad([rows[i] for i in chosen])
            target = labels[torch.from_numpy(chosen)]
            logits = model(ids, mask)
            loss = loss_fn(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            hits += int((logits.argmax(dim=1) == target).sum())
            seen += len(chosen)
            now = time.perf_counter()
            state.seconds_this_epoch += now - started
            started = now
            state.epoch, state.step, state.global_step = epoch, step + 1, state.global_step + 1
            last_of_epoch = step + 1 == batches_per_epoch or state.global_step >= total
            if last_of_epoch:
                checkpoint()  # the position first: Ctrl-C while scoring resumes by scoring this epoch
                end_epoch(epoch)
                state.epoch, state.step = epoch + 1, 0
            if last_of_epoch or state.global_step % options.checkpoint_every == 0:
                checkpoint()
            progress.step(epoch, sum(losses) / len(losses), hits / max(seen, 1))
    except KeyboardInterrupt as exc:
        checkpoint()
        raise TrainingError(
            f"training interrupted at step {state.global_step} of {total}; routing is unchanged."
            " Run the same command again to resume from there",
            interrupted=True,
        ) from exc
    if not state.finished:
        state.finished = True
        checkpoint()
    if not best_file.is_file():  # a run resumed after its last epoch was scored keeps that file; this is a fallback
        _save(best_file, {"model": model.state_dict(), "accuracy": state.best_accuracy, "epoch": state.epoch})
    per_epoch = sum(state.epoch_seconds) / len(state.epoch_seconds) if state.epoch_seconds else float("nan")
    return FineTuneResult(
        best_file=best_file,
        best_accuracy=state.best_accuracy,
        best_epoch=state.best_epoch,
        epochs=len(state.history),
        steps=state.global_step,
        resumed_from_step=resumed_from,
        seconds_per_epoch=per_epoch,
        history=list(state.history),
    )


def best_encoder_state(best_file: Path) -> dict[str, torch.Tensor]:
    """The encoder's weights from ``best.pt`` (the head is dropped: routing fits its own on the embeddings)."""
    saved = torch.load(best_file, weights_only=True)
    prefix = "encoder."
    return {k[len(prefix) :]: v for k, v in saved["model"].items() if k.startswith(prefix)}


def best_head(
    best_file: Path, label_names: Sequence[str], scale: float | None
) -> dict[str, np.ndarray[Any, Any]] | None:
    """The trained scaled-cosine head from ``best.pt`` as it applies to normalised embeddings: ``scale`` times
    each label's normalised weight row (``labels`` names the rows). None for a linear head (it needs the raw
    pooled vector)."""
    if scale is None:
        return None
    saved = torch.load(best_file, weights_only=True)
    weights = nn.functional.normalize(saved["model"]["head.weight"].float(), dim=1) * scale
    return {"labels": np.asarray(list(label_names)), "weights": weights.numpy().astype(np.float32)}
