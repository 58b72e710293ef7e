"""A fitted route model: classifier over embeddings, temperature and out-of-scope cut, saved with the routes.

``fit_route_model`` is what ``vy-nexus routes fit`` runs:

1. split every route's utterances into train and held-out parts (stratified, seeded);
2. fit nearest centroids and a logistic-regression head on the train part and keep the head only if it is more
   accurate on the held-out part ("a light classifier, if it helps accuracy"); the head weighs every route the same,
   so a route with a handful of utterances is not drowned by routes with hundreds;
3. fit the softmax temperature on the held-out logits (calibration) and the out-of-scope cut on the max logit
   (the highest cut costing at most ``max_in_scope_loss`` of held-out in-scope accuracy; out-of-scope examples,
   when given, only measure the recall that cut achieves);
4. refit the chosen classifier on all utterances, keeping the temperature and the cut.

The model is saved as ``<routes file stem>.model.npz`` next to the routes file and records the encoder's
``model_id`` and the routes' fingerprint: when either changes, the model is stale and is not used.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from vy_nexus.errors import ConfigError
from vy_nexus.reasoning.embeddings import Encoder
from vy_nexus.routing.calibration import DEFAULT_IN_SCOPE_LOSS, fit_rejection_threshold, fit_temperature
from vy_nexus.routing.classifier import CentroidClassifier, Labels, LogisticHead, Matrix
from vy_nexus.routing.npz import DAMAGED_NPZ_ERRORS
from vy_nexus.routing.routes import Route, routes_fingerprint

Kind = Literal["head", "centroid"]
DEFAULT_CENTROID_TEMPERATURE = 0.05
"""Unfitted centroid routing: similarities differ by a few hundredths, so a sharp softmax."""
DEFAULT_MIN_SIMILARITY = 0.3
"""Unfitted centroid routing: below this cosine similarity to every route, a task is out of scope."""
MODEL_FORMAT = 1


@dataclass(frozen=True, slots=True)
class RouteModel:
    kind: Kind
    route_names: tuple[str, ...]
    fingerprint: str
    model_id: str
    temperature: float
    rejection_threshold: float
    arrays: dict[str, Matrix] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    def logits(self, vectors: Matrix) -> Matrix:
        if self.kind == "head":
            return LogisticHead(self.arrays["weights"], self.arrays["bias"]).logits(vectors)
        return CentroidClassifier(self.arrays["centroids"]).logits(vectors)

    def matches(self, routes: Sequence[Route], model_id: str) -> bool:
        return self.model_id == model_id and self.fingerprint == routes_fingerprint(routes)

    def save(self, path: Path) -> None:
        meta = {
            "format": MODEL_FORMAT,
            "kind": self.kind,
            "route_names": list(self.route_names),
            "fingerprint": self.fingerprint,
            "model_id": self.model_id,
            "temperature": self.temperature,
            "rejection_threshold": self.rejection_threshold,
            "report": self.report,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        with temporary.open("wb") as handle:
            payload: dict[str, Any] = {"meta": np.asarray(json.dumps(meta)), **self.arrays}
            np.savez(handle, **payload)
        temporary.replace(path)

    @classmethod
    def load(cls, path: Path) -> RouteModel:
        try:
            with path.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                arrays = {name: np.asarray(data[name], dtype=np.float32) for name in data.files if name != "meta"}
        except FileNotFoundError as exc:
            raise ConfigError(f"route model {path} not found; run `vy-nexus routes fit` again") from exc
        except DAMAGED_NPZ_ERRORS as exc:
            raise ConfigError(
                f"route model {path} is damaged or not a route model ({type(exc).__name__});"
                " run `vy-nexus routes fit` again"
            ) from exc
        if meta.get("format") != MODEL_FORMAT:
            raise ConfigError(f"route model {path} has an unknown format; run `vy-nexus routes fit` again")
        return cls(
            kind=meta["kind"],
            route_names=tuple(meta["route_names"]),
            fingerprint=meta["fingerprint"],
            model_id=meta["model_id"],
            temperature=float(meta["temperature"]),
            rejection_threshold=float(meta["rejection_threshold"]),
            arrays=arrays,
            report=dict(meta.get("report", {})),
        )


def model_path_for(routes_file: Path) -> Path:
    return routes_file.with_name(f"{routes_file.stem}.model.npz")


def centroid_model(routes: Sequence[Route], vectors: Matrix, labels: Labels, model_id: str) -> RouteModel:
    """The unfitted default: centroids of every route's utterances, default temperature and similarity cut."""
    classifier = CentroidClassifier.fit(vectors, labels, len(routes))
    return RouteModel(
        kind="centroid",
        route_names=tuple(r.name for r in routes),
        fingerprint=routes_fingerprint(routes),
        model_id=model_id,
        temperature=DEFAULT_CENTROID_TEMPERATURE,
        rejection_threshold=DEFAULT_MIN_SIMILARITY,
        arrays={"centroids": classifier.centroids},
    )


def utterance_matrix(routes: Sequence[Route], encoder: Encoder) -> tuple[Matrix, Labels]:
    texts = [u for route in routes for u in route.utterances]
    labels = np.asarray([i for i, route in enumerate(routes) for _ in route.utterances], dtype=np.int64)
    return encoder.encode(texts), labels


def stratified_split(labels: Labels, holdout: float, seed: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Indices (train, held-out): ``holdout`` of each label's examples held out, for labels with at least 3."""
    rng = random.Random(seed)
    train: list[int] = []
    held: list[int] = []
    for label in np.unique(labels):
        members = [int(i) for i in np.flatnonzero(labels == label)]
        rng.shuffle(members)
        take = min(max(1, math.floor(len(members) * holdout + 0.5)), len(members) - 2) if len(members) >= 3 else 0
        held.extend(members[:take])
        train.extend(members[take:])
    return np.asarray(sorted(train), dtype=np.int64), np.asarray(sorted(held), dtype=np.int64)


def _fit_kind(kind: Kind, vectors: Matrix, labels: Labels, n_routes: int, c: float) -> dict[str, Matrix]:
    if kind == "head":
        head = LogisticHead.fit(vectors, labels, n_routes, c=c, balanced=True)
        return {"weights": head.weights, "bias": head.bias}
    return {"centroids": CentroidClassifier.fit(vectors, labels, n_routes).centroids}


def check_fit_options(
    *, holdout: float = 0.2, c: float = 10.0, max_in_scope_loss: float = DEFAULT_IN_SCOPE_LOSS, **_other: Any
) -> None:
    """Refuse fit options no model can be fitted with, before anything is written."""
    if not 0.0 < holdout < 1.0:
        raise ConfigError(f"holdout must be between 0 and 1, not {holdout:g}")
    if not (c > 0 and math.isfinite(c)):
        raise ConfigError(f"c (the head's inverse L2 strength) must be a positive number, not {c:g}")
    if not 0.0 <= max_in_scope_loss <= 1.0:
        raise ConfigError(f"max_in_scope_loss must be between 0 and 1, not {max_in_scope_loss:g}")


def fit_route_model(
    routes: Sequence[Route],
    encoder: Encoder,
    *,
    oos_texts: Sequence[str] = (),
    holdout: float = 0.2,
    c: float = 10.0,
    seed: int = 0,
    kind: Kind | None = None,
    max_in_scope_loss: float = DEFAULT_IN_SCOPE_LOSS,
) -> RouteModel:
    """Fit classifier, temperature and out-of-scope cut for ``routes`` (see the module docstring)."""
    if len(routes) < 2:
        raise ConfigError("routes fit needs at least two routes")
    check_fit_options(holdout=holdout, c=c, max_in_scope_loss=max_in_scope_loss)
    vectors, labels = utterance_matrix(routes, encoder)
    oos_vectors = encoder.encode(list(oos_texts)) if oos_texts else None
    train, held = stratified_split(labels, holdout, seed)
    n_routes = len(routes)
    report: dict[str, Any] = {"utterances": len(labels), "held_out": len(held), "oos_examples": len(oos_texts)}
    candidates: list[Kind] = [kind] if kind is not None else ["centroid", "head"]
    fitted: dict[Kind, dict[str, Matrix]] = {}
    accuracy: dict[Kind, float] = {}
    for candidate in candidates:
        fitted[candidate] = _fit_kind(candidate, vectors[train], labels[train], n_routes, c)
        if len(held):
            probe = RouteModel(candidate, (), "", "", 1.0, -math.inf, fitted[candidate])
            accuracy[candidate] = float((probe.logits(vectors[held]).argmax(axis=1) == labels[held]).mean())
            report[f"held_out_accuracy_{candidate}"] = round(accuracy[candidate], 4)
    chosen: Kind = candidates[0]
    if len(candidates) > 1 and accuracy.get("head", 0.0) > accuracy.get("centroid", 0.0):
        chosen = "head"
    temperature = DEFAULT_CENTROID_TEMPERATURE if chosen == "centroid" else 1.0
    threshold = DEFAULT_MIN_SIMILARITY if chosen == "centroid" else -math.inf
    if len(held):
        probe = RouteModel(chosen, (), "", "", 1.0, -math.inf, fitted[chosen])
        held_logits = probe.logits(vectors[held])
        temperature = fit_temperature(held_logits, labels[held])
        threshold = fit_rejection_threshold(
            held_logits.max(axis=1), held_logits.argmax(axis=1) == labels[held], max_in_scope_loss
        )
        if oos_vectors is not None:
            oos_recall = float((probe.logits(oos_vectors).max(axis=1) < threshold).mean())
            report["held_out_oos_recall"] = round(oos_recall, 4)
        report["temperature"] = round(temperature, 4)
    arrays = _fit_kind(chosen, vectors, labels, n_routes, c)
    report.update({"kind": chosen, "c": c, "holdout": holdout, "seed": seed})
    return RouteModel(
        kind=chosen,
        route_names=tuple(r.name for r in routes),
        fingerprint=routes_fingerprint(routes),
        model_id=encoder.model_id,
        temperature=temperature,
        rejection_threshold=threshold,
        arrays=arrays,
        report=report,
    )
