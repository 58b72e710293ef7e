"""Route classifiers over sentence embeddings, in numpy: nearest centroid and a multinomial logistic-regression head.

Both map a batch of L2-normalised embeddings (n, d) to logits (n, routes); calibration.py turns logits into
confidences. The head is trained by full-batch L-BFGS on the mean cross-entropy plus an L2 penalty scaled like
scikit-learn's ``C`` (``C·Σ loss + ½‖W‖²``); on CLINC150 with frozen MiniLM it beats the centroids by ~4 points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]
Labels = npt.NDArray[np.int64]


def log_softmax(logits: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return np.asarray(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class CentroidClassifier:
    """Logits are cosine similarities to each route's mean utterance embedding (re-normalised)."""

    centroids: Matrix

    @classmethod
    def fit(cls, vectors: Matrix, labels: Labels, n_routes: int) -> CentroidClassifier:
        centroids = np.zeros((n_routes, vectors.shape[1]), dtype=np.float32)
        np.add.at(centroids, labels, vectors)
        norms = np.linalg.norm(centroids, axis=1, keepdims=True)
        return cls(np.asarray(centroids / np.clip(norms, 1e-12, None), dtype=np.float32))

    def logits(self, vectors: Matrix) -> Matrix:
        return np.asarray(vectors @ self.centroids.T, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class LogisticHead:
    """A linear layer ``x·Wᵀ + b`` trained with softmax cross-entropy."""

    weights: Matrix
    bias: Matrix

    @classmethod
    def fit(
        cls,
        vectors: Matrix,
        labels: Labels,
        n_routes: int,
        *,
        c: float = 10.0,
        max_iterations: int = 300,
        tolerance: float = 1e-5,
        balanced: bool = False,
    ) -> LogisticHead:
        """With ``balanced``, every route weighs the same in the loss whatever its number of utterances (like
        scikit-learn's ``class_weight="balanced"``): an expert with 5 examples next to routes with 300 still wins
        the texts that resemble its examples."""
        if c <= 0:
            raise ValueError("c must be positive")
        x = np.asarray(vectors, dtype=np.float32)  # float32 matmuls: twice as fast, ample precision for a head
        n, d = x.shape
        onehot = np.zeros((n, n_routes))
        onehot[np.arange(n), labels] = 1.0
        weight = np.ones((n, 1))
        if balanced:
            counts = np.bincount(labels, minlength=n_routes).astype(np.float64)
            present = int((counts > 0).sum())
            weight = (n / (present * counts[labels]))[:, None]
        onehot_w = onehot * weight
        penalty = 1.0 / (c * n)

        def objective(theta: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
            w = theta[: n_routes * d].reshape(n_routes, d)
            b = theta[n_routes * d :]
            logp = log_softmax(x @ w.T.astype(np.float32) + b)
            loss = -float((onehot_w * logp).sum()) / n + 0.5 * penalty * float((w * w).sum())
            delta = (np.exp(logp) - onehot) * weight / n
            grad_w = (delta.T.astype(np.float32) @ x).astype(np.float64) + penalty * w
            return loss, np.concatenate([grad_w.ravel(), delta.sum(axis=0)])

        theta = minimize_lbfgs(objective, np.zeros(n_routes * d + n_routes), max_iterations, tolerance)
        weights = theta[: n_routes * d].reshape(n_routes, d).astype(np.float32)
        return cls(weights, theta[n_routes * d :].astype(np.float32))

    def logits(self, vectors: Matrix) -> Matrix:
        return np.asarray(vectors @ self.weights.T + self.bias, dtype=np.float32)


def minimize_lbfgs(
    objective: Callable[[npt.NDArray[np.float64]], tuple[float, npt.NDArray[np.float64]]],
    start: npt.NDArray[np.float64],
    max_iterations: int = 300,
    tolerance: float = 1e-5,
    memory: int = 10,
) -> npt.NDArray[np.float64]:
    """Minimise a smooth convex function with L-BFGS and a backtracking (Armijo) line search."""
    x = start.copy()
    value, grad = objective(x)
    steps: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], float]] = []
    for _ in range(max_iterations):
        if float(np.abs(grad).max()) < tolerance:
            break
        direction = -grad
        alphas = []
        for s, y, rho in reversed(steps):
            alpha = rho * float(s @ direction)
            direction = direction - alpha * y
            alphas.append(alpha)
        if steps:
            s, y, _ = steps[-1]
            direction = direction * (float(s @ y) / float(y @ y))
        for (s, y, rho), alpha in zip(steps, reversed(alphas), strict=True):
            beta = rho * float(y @ direction)
            direction = direction + (alpha - beta) * s
        slope = float(grad @ direction)
        if slope >= 0:  # not a descent direction: restart from the gradient
            steps.clear()
            direction, slope = -grad, -float(grad @ grad)
        step = 1.0
        while True:
            candidate = x + step * direction
            new_value, new_grad = objective(candidate)
            if new_value <= value + 1e-4 * step * slope or step < 1e-10:
                break
            step *= 0.5
        s_k, y_k = candidate - x, new_grad - grad
        curvature = float(s_k @ y_k)
        if curvature > 1e-12:
            steps.append((s_k, y_k, 1.0 / curvature))
            if len(steps) > memory:
                steps.pop(0)
        improvement = value - new_value
        x, value, grad = candidate, new_value, new_grad
        if 0 <= improvement < tolerance * 1e-3 * max(1.0, abs(value)):
            break
    return x
