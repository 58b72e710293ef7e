"""Route training commands: ``vy-nexus routes train`` and ``vy-nexus routes rollback`` (added to ``routes``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from vy_nexus.interfaces.cli.common import console, err_console, handle_errors, print_json, state


class RichTrainingProgress:
    """A rich bar over optimiser steps with the epoch's running loss and accuracy, elapsed time and ETA (on stderr,
    so ``--json`` output stays clean)."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.3f} · acc {task.fields[accuracy]:.1%}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err_console,
        )
        self._task: Any = None

    def __enter__(self) -> RichTrainingProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def begin(self, total_steps: int, done_steps: int) -> None:
        if done_steps:
            self._progress.console.print(f"resuming from the checkpoint at step {done_steps} of {total_steps}")
        self._task = self._progress.add_task(
            "train", total=total_steps, completed=done_steps, epoch=1, loss=float("nan"), accuracy=0.0
        )

    def step(self, epoch: int, loss: float, accuracy: float) -> None:
        self._progress.update(self._task, advance=1, epoch=epoch + 1, loss=loss, accuracy=accuracy)

    def evaluated(self, epoch: int, accuracy: float, best: bool) -> None:
        mark = " (best so far)" if best else ""
        self._progress.console.print(f"epoch {epoch + 1}: validation accuracy {accuracy:.2%}{mark}")

    def stage(self, message: str) -> None:
        self._progress.console.print(f"{message}...")


def train_command(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="Labeled JSON Lines to train on: one {text, <label>} per line."),
    val: Path | None = typer.Option(None, "--val", help="Labeled JSON Lines to pick the best epoch and report on."),
    epochs: int = typer.Option(3, "--epochs", min=1, help="Passes over the training data."),
    oos_data: Path | None = typer.Option(None, "--oos-data", help="Extra out-of-scope examples (JSON Lines)."),
    label_field: str = typer.Option("intent", "--label-field", help="JSON field holding the label."),
    oos_label: str = typer.Option("oos", "--oos-label", help="Label that marks out-of-scope examples."),
    target: str | None = typer.Option(None, "--target", help="Expert id that new routes send tasks to."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Examples per optimiser step."),
    learning_rate: float = typer.Option(
        1e-4, "--learning-rate", help="AdamW learning rate of the encoder's top layer."
    ),
    layer_decay: float = typer.Option(
        0.9, "--layer-decay", help="Learning-rate factor from each encoder layer to the one below (1: no decay)."
    ),
    cosine_floor: float = typer.Option(
        0.98, "--cosine-floor", help="Least mean cosine of int8 to fp32 embeddings; below it fp32 is kept."
    ),
    max_in_scope_loss: float = typer.Option(
        0.01, "--max-in-scope-loss", help="In-scope accuracy the out-of-scope cut may cost (0.01 = 1 point)."
    ),
    min_oos_recall: float | None = typer.Option(
        0.7,
        "--min-oos-recall",
        min=0.0,
        max=1.0,
        help="With out-of-scope examples: lower the cut to the least that rejects this share of them (0: off).",
    ),
    holdout: float = typer.Option(
        0.1,
        "--holdout",
        min=0.0,
        max=0.9,
        help="Without --val: share of each label held out to choose the epoch and head (0: train on all, keep the"
        " last epoch, cut from the out-of-scope recall).",
    ),
    max_steps: int | None = typer.Option(None, "--max-steps", min=1, help="Stop after this many steps (a quick run)."),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="CPU threads for torch (default: one per core; 1 is faster on busy cores)."
    ),
    base: Path | None = typer.Option(None, "--base", help="Hugging Face model directory to fine-tune."),
    restart: bool = typer.Option(False, "--restart", help="Ignore an interrupted run's checkpoint and start over."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Fine-tune the encoder on labeled routes (CPU, torch), export it to ONNX, refit the routes and switch to it.

    Needs the training extra: pip install 'vy-nexus[train]'. Ctrl-C leaves routing unchanged; running the same
    command again resumes from the last checkpoint. `vy-nexus routes rollback` returns to the previous encoder.

    Example: vy-nexus routes train --data train.jsonl --val val.jsonl --epochs 3 --target general
    """
    from vy_nexus.routing.routes import read_labeled
    from vy_nexus.training.data import TrainOptions
    from vy_nexus.training.pipeline import require_torch, train_routes

    system = state(ctx).system(observe=False)
    settings = system.settings
    examples = read_labeled(data, label_field)
    val_examples = read_labeled(val, label_field) if val is not None else []
    oos = read_labeled(oos_data, label_field) if oos_data is not None else []
    options = TrainOptions(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        layer_decay=layer_decay,
        cosine_floor=cosine_floor,
        max_in_scope_loss=max_in_scope_loss,
        min_oos_recall=min_oos_recall or None,
        holdout=holdout,
        max_steps=max_steps,
        threads=threads,
        max_length=settings.routing.semantic.max_length,
    )
    options.validate()
    require_torch()
    with RichTrainingProgress() as progress:
        outcome = train_routes(
            settings,
            system.registry,
            examples,
            val=val_examples,
            oos_examples=oos,
            target=target,
            oos_label=oos_label,
            options=options,
            base_dir=base,
            resume=not restart,
            progress=progress,
        )
    if as_json:
        print_json(outcome.as_dict())
        return
    metrics = outcome.manifest["metrics"]
    check = metrics["quantisation"]
    console.print(
        Text.assemble(
            "trained encoder ", (outcome.version, "bold"), f" is now active (previous: {outcome.previous or 'base'})"
        )
    )
    kept = "last" if metrics["best_val_accuracy_during_training"] is None else "best"
    console.print(
        f"  {kept} epoch {metrics['best_epoch'] + 1} of {metrics['epochs']},"
        f" {metrics['minutes_per_epoch']:.1f} min/epoch"
    )
    verdict = "int8" if outcome.quantised else f"fp32 (int8 refused: below the floor {check['floor']})"
    console.print(f"  {verdict}; int8 vs fp32 cosine mean {check['mean_cosine']:.4f}, min {check['min_cosine']:.4f}")
    if "validation" in metrics:
        v = {name: "-" if value is None else f"{value:.1%}" for name, value in metrics["validation"].items()}
        console.print(
            f"  validation: accuracy {v['accuracy']}, closed-set {v['closed_set_accuracy']},"
            f" out-of-scope recall {v['oos_recall']}"
        )
    console.print(f"  {outcome.directory}\n  undo with: vy-nexus routes rollback")


def rollback_command(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Switch routing back to the encoder (and route model) active before the last `routes train`.

    Example: vy-nexus routes rollback
    """
    from vy_nexus.routing.encoders import encoder_store

    settings = state(ctx).settings()
    left, now = encoder_store(settings).rollback()
    if as_json:
        print_json({"deactivated": left, "active": now})
        return
    console.print(f"rolled back from {left} to {now or 'the base encoder'}")


def register(routes_app: typer.Typer) -> None:
    routes_app.command("train")(handle_errors(train_command))
    routes_app.command("rollback")(handle_errors(rollback_command))
