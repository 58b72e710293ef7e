"""What a training run is made of (no torch): examples as label indices, the options, and the hashes naming a run.

A run is keyed by a hash of its data and options (``run_key``): the checkpoints of an interrupted run are found
again by running the same command. A finished model's version hashes the run key together with its metrics.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from vy_nexus.errors import TrainingError
from vy_nexus.routing.route_model import stratified_split
from vy_nexus.routing.routes import LabeledExample


@dataclass(frozen=True, slots=True)
class TrainOptions:
    """Settings of one fine-tuning run. The defaults are the recipe measured on CLINC150 (docs/routing.md)."""

    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 1e-4
    """AdamW learning rate of the encoder's top layer."""
    head_learning_rate: float = 1e-3
    layer_decay: float = 0.9
    """Layer-wise learning-rate decay: each layer below the top learns at this factor times the one above it (the
    embeddings one step below the first layer); 1.0: one rate for the whole encoder."""
    weight_decay: float = 0.01
    warmup: float = 0.06
    label_smoothing: float = 0.1
    head_scale: float | None = 20.0
    """The training head: scaled cosine on the normalised embedding, with this scale (routing can use it as is);
    None: linear on the raw pooled vector (only the refitted head is then usable)."""
    holdout: float = 0.1
    """Without ``--val``: the share of each label held out of fine-tuning, to choose the best epoch and the route
    head and to calibrate them on sentences the encoder never trained on. 0: train on everything, keep the last
    epoch and the ensemble head, and set the out-of-scope cut from the out-of-scope examples' recall alone."""
    seed: int = 0
    max_length: int = 128
    cosine_floor: float = 0.98
    max_in_scope_loss: float = 0.01
    """Refit: held-out in-scope accuracy the out-of-scope cut may cost (as in ``routes fit``)."""
    min_oos_recall: float | None = 0.7
    """Refit, with out-of-scope examples: the cut is lowered to the least that still rejects this share of them
    (``training/refit.py``); None: the in-scope budget alone sets it."""
    checkpoint_every: int = 200
    max_steps: int | None = None
    """Stop after this many optimiser steps in all (a quick run); None: train every epoch to the end."""
    threads: int | None = None
    """torch's CPU threads; None: torch's default (one per core). On cores other jobs share, 1 thread ran several
    times faster than 2 (threads waiting on each other)."""

    def validate(self) -> None:
        checks = [
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch size must be at least 1"),
            (self.learning_rate > 0 and self.head_learning_rate > 0, "learning rates must be positive"),
            (0.0 < self.layer_decay <= 1.0, "layer decay must be in (0, 1]"),
            (0.0 <= self.warmup < 1.0, "warmup must be a share of the steps, between 0 and 1"),
            (0.0 <= self.label_smoothing < 1.0, "label smoothing must be between 0 and 1"),
            (self.head_scale is None or self.head_scale > 0, "head scale must be positive"),
            (0.0 <= self.holdout < 1.0, "holdout must be at least 0 and below 1"),
            (0.0 < self.cosine_floor <= 1.0, "cosine floor must be in (0, 1]"),
            (0.0 <= self.max_in_scope_loss < 1.0, "max in-scope loss must be between 0 and 1"),
            (self.min_oos_recall is None or 0.0 < self.min_oos_recall <= 1.0, "min oos recall must be in (0, 1]"),
            (self.checkpoint_every >= 1, "checkpoint interval must be at least 1 step"),
            (self.max_steps is None or self.max_steps >= 1, "max steps must be at least 1"),
            (self.threads is None or self.threads >= 1, "threads must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise TrainingError(message)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class LabeledSet:
    """Texts with label indices into ``label_names``."""

    texts: tuple[str, ...]
    labels: tuple[int, ...]
    label_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)


def labeled_set(examples: Sequence[LabeledExample], label_names: Sequence[str]) -> LabeledSet:
    position = {name: i for i, name in enumerate(label_names)}
    unknown = sorted({e.label for e in examples} - set(position))
    if unknown:
        raise TrainingError(f"validation labels with no training examples: {', '.join(unknown[:10])}")
    return LabeledSet(tuple(e.text for e in examples), tuple(position[e.label] for e in examples), tuple(label_names))


def split_train_val(
    examples: Sequence[LabeledExample], val: Sequence[LabeledExample], options: TrainOptions
) -> tuple[LabeledSet, LabeledSet, str]:
    """(train, validation, where validation came from). Without ``val``, ``holdout`` of each label is held out; with
    ``holdout`` 0 too, the validation set is empty."""
    names = tuple(dict.fromkeys(e.label for e in examples))
    if len(names) < 2:
        raise TrainingError("routes train needs examples of at least two labels (out-of-scope ones aside)")
    if val:
        return labeled_set(examples, names), labeled_set(val, names), "validation file"
    full = labeled_set(examples, names)
    if options.holdout == 0.0:
        return full, LabeledSet((), (), names), "none (holdout 0: last epoch kept)"
    train_idx, held_idx = stratified_split(np.asarray(full.labels, dtype=np.int64), options.holdout, options.seed)
    if len(held_idx) == 0:
        raise TrainingError("too few examples to hold any out for validation: give --val, or more examples per label")

    def subset(indices: Sequence[int]) -> LabeledSet:
        return LabeledSet(tuple(full.texts[i] for i in indices), tuple(full.labels[i] for i in indices), names)

    return subset(train_idx.tolist()), subset(held_idx.tolist()), f"{options.holdout:.0%} of each label held out"


SEEN_CALIBRATION_SHARE = 0.1
"""With ``holdout`` 0: the share of each label's train sentences that weights the ensemble's heads (refit.py)."""


def seen_calibration_set(train: LabeledSet, seed: int) -> LabeledSet:
    """A share of ``train`` (which the encoder trains on) standing in for held-out sentences when none are kept."""
    _, chosen = stratified_split(np.asarray(train.labels, dtype=np.int64), SEEN_CALIBRATION_SHARE, seed)
    rows = chosen.tolist()
    return LabeledSet(tuple(train.texts[i] for i in rows), tuple(train.labels[i] for i in rows), train.label_names)


AFTER_TRAINING = frozenset({"cosine_floor", "max_in_scope_loss", "min_oos_recall", "threads"})
"""Options that do not change the weights (they judge or refit the result, or set the CPU threads): not part of a
run's key."""


def digest(*parts: Any) -> str:
    """A short, stable hash of JSON-able parts."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.blake2b(blob, digest_size=8).hexdigest()


def data_digest(*sets: Sequence[LabeledExample]) -> str:
    return digest([[(e.text, e.label) for e in examples] for examples in sets])
