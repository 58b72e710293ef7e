"""How a training run reports progress: the CLI draws a rich bar from these calls; tests may interrupt through them."""

from __future__ import annotations

from typing import Protocol


class TrainingProgress(Protocol):
    def begin(self, total_steps: int, done_steps: int) -> None:
        """Training starts (``done_steps`` > 0 when resuming from a checkpoint)."""

    def step(self, epoch: int, loss: float, accuracy: float) -> None:
        """One optimiser step finished: running mean loss and accuracy over the current epoch."""

    def evaluated(self, epoch: int, accuracy: float, best: bool) -> None:
        """An epoch ended and was scored on the validation set."""

    def stage(self, message: str) -> None:
        """A stage after training (export, quantisation, refit, switch) begins."""


class QuietProgress:
    """Reports nothing."""

    def begin(self, total_steps: int, done_steps: int) -> None:
        return None

    def step(self, epoch: int, loss: float, accuracy: float) -> None:
        return None

    def evaluated(self, epoch: int, accuracy: float, best: bool) -> None:
        return None

    def stage(self, message: str) -> None:
        return None
