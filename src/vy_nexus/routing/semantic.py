"""Semantic routing: embed the task, score it against routes, calibrate, detect out-of-scope, map routes to experts.

``SemanticRouter`` is the route-level engine (encode → logits → temperature softmax → per-route and out-of-scope
checks); it works on batches and needs no registry, so ``routes eval`` and the benchmarks use it directly.
``SemanticStrategy`` is the ``RoutingStrategy`` the gating engine calls: it assembles the routes (experts'
``examples`` plus the routes file), builds a router lazily on the first task (the encoder loads then), rebuilds it
when experts change, and turns route probabilities into expert confidences (the sum over the routes that target
each expert). An out-of-scope task gets no candidates, so the gating engine hands it to the fallback expert.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from vy_nexus.config import Settings
from vy_nexus.errors import ConfigError
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.reasoning.embeddings import Encoder, OnnxSentenceEncoder, Vectors
from vy_nexus.routing.builtin_routes import packaged_routes
from vy_nexus.routing.calibration import softmax
from vy_nexus.routing.embedding_cache import CachedEncoder
from vy_nexus.routing.encoders import active_trained_encoder
from vy_nexus.routing.model_resolver import resolve_model
from vy_nexus.routing.pasted import DESCRIPTIONS, pasted_kinds, split_pasted
from vy_nexus.routing.payload import payload_kind
from vy_nexus.routing.route_model import RouteModel, centroid_model, model_path_for, utterance_matrix
from vy_nexus.routing.routes import (
    Route,
    check_targets,
    load_routes,
    merge_routes,
    routes_from_declarations,
    routes_from_experts,
)
from vy_nexus.routing.strategy import Scores
from vy_nexus.tasks import Task

DEFAULT_ROUTES_FILE = "routes.yaml"
MIN_REPORTED_PROBABILITY = 0.01
"""Experts outside the best routes whose summed probability is below this are not reported as candidates."""


@dataclass(frozen=True, slots=True)
class RoutePrediction:
    """The verdict for one text: route probabilities (best first), the raw score and whether it is out of scope."""

    ranked: tuple[tuple[str, float], ...]
    score: float
    out_of_scope: bool
    reason: str

    @property
    def route(self) -> str | None:
        return None if self.out_of_scope else self.ranked[0][0]

    @property
    def confidence(self) -> float:
        return self.ranked[0][1] if self.ranked else 0.0


class SemanticRouter:
    """Routes texts to routes with a fitted (or default centroid) ``RouteModel``."""

    def __init__(self, routes: Sequence[Route], encoder: Encoder, model: RouteModel, *, top_n: int = 5) -> None:
        if tuple(r.name for r in routes) != model.route_names:
            raise ValueError("the route model was built for other routes")
        self.routes = list(routes)
        # Queries are never written to the on-disk utterance cache: they go to the encoder underneath it.
        self.encoder = encoder.encoder if isinstance(encoder, CachedEncoder) else encoder
        self.model = model
        self.top_n = top_n
        self._thresholds = np.asarray([r.threshold or 0.0 for r in routes], dtype=np.float64)

    @classmethod
    def build(cls, routes: Sequence[Route], encoder: Encoder, model: RouteModel | None = None) -> SemanticRouter:
        """A router using ``model`` when it was fitted for exactly these routes, else centroids. A model fitted on
        another encoder is an error: its head reads another vector space and would route wrongly."""
        if model is not None and model.model_id != encoder.model_id:
            raise ConfigError(
                f"the route model was fitted on encoder {model.model_id}, but routing uses encoder"
                f" {encoder.model_id}: run `vy-nexus routes fit` to refit it on this encoder,"
                " or `vy-nexus routes rollback` if a trained encoder was just switched in"
            )
        if model is not None and model.matches(routes, encoder.model_id):
            return cls(routes, encoder, model)
        vectors, labels = utterance_matrix(routes, encoder)
        return cls(routes, encoder, centroid_model(routes, vectors, labels, encoder.model_id))

    def probabilities(self, texts: Sequence[str]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
        """(logits, calibrated probabilities), one row per text."""
        logits = self.model.logits(self.encoder.encode(texts))
        return logits, softmax(logits, self.model.temperature)

    def predict(self, texts: Sequence[str]) -> list[RoutePrediction]:
        logits, probs = self.probabilities(texts)
        return [self.verdict(logits[i], probs[i]) for i in range(len(texts))]

    def verdict(self, logits: npt.NDArray[np.float32], probs: npt.NDArray[np.float64]) -> RoutePrediction:
        """The prediction for one row of ``probabilities``."""
        order = np.argsort(-probs)[: self.top_n]
        ranked = tuple((self.routes[i].name, float(probs[i])) for i in order)
        best = int(order[0])
        score = float(logits[best])
        if score < self.model.rejection_threshold:
            reason = (
                f"out of scope: best route '{self.routes[best].name}' scored {score:.3f},"
                f" below the {self.model.kind} cut {self.model.rejection_threshold:.3f}"
            )
            return RoutePrediction(ranked, score, True, reason)
        if probs[best] < self._thresholds[best]:
            reason = (
                f"out of scope: route '{self.routes[best].name}' confidence {probs[best]:.2f}"
                f" is below its threshold {self._thresholds[best]:.2f}"
            )
            return RoutePrediction(ranked, score, True, reason)
        return RoutePrediction(ranked, score, False, f"route '{self.routes[best].name}' ({self.model.kind})")

    def expert_confidences(self, probs: npt.NDArray[np.float64]) -> dict[str, float]:
        """Each expert's probability: the sum over the routes that target it. Candidates are the experts of the
        ``top_n`` best routes (so top-k can return several) plus any other with at least 1% probability."""
        confidences: dict[str, float] = {}
        for route, p in zip(self.routes, probs, strict=True):
            confidences[route.expert_id] = confidences.get(route.expert_id, 0.0) + float(p)
        leading = {self.routes[i].expert_id for i in np.argsort(-probs)[: self.top_n]}
        return {e: min(c, 1.0) for e, c in confidences.items() if e in leading or c >= MIN_REPORTED_PROBABILITY}


class PastedTextEncoder:
    """Encodes what a text asks, not what was pasted into it: the request plus a few words naming the pasted
    code, table or document (``routing/pasted.py``). Route utterances and tasks go through the same view."""

    VIEW = "pasted1"

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder

    @property
    def model_id(self) -> str:
        return f"{self.encoder.model_id}+{self.VIEW}"

    def encode(self, texts: Sequence[str]) -> Vectors:
        return self.encoder.encode([split_pasted(text).routing_text() for text in texts])


def task_text(task: Task) -> str:
    """The task's text for routing, with a line naming an input payload's kind (code, table, document) when it has
    one: the same view as the material pasted into the text."""
    kind = payload_kind(task.input)
    if kind is None or kind in pasted_kinds(task.description):
        return task.description
    return f"{task.description}\n({DESCRIPTIONS[kind]})"


def routes_file_of(settings: Settings) -> Path:
    """``routing.semantic.routes_file`` (relative to home), else ``routes.yaml`` in home; used when it exists."""
    return settings.resolve(settings.routing.semantic.routes_file or DEFAULT_ROUTES_FILE)


def route_model_file_of(settings: Settings) -> Path:
    """Where the route model for the current encoder lives: beside the routes file, or in the active trained
    encoder's directory (routing/encoders.py)."""
    trained = active_trained_encoder(settings)
    routes_file = routes_file_of(settings)
    return trained.route_model_file(routes_file) if trained is not None else model_path_for(routes_file)


def encoder_from_settings(settings: Settings) -> CachedEncoder:
    """The configured sentence encoder (or the active trained one, routing/encoders.py), seeing texts through
    ``PastedTextEncoder``, with route embeddings cached under ``<cache_dir>/embeddings``."""
    trained = active_trained_encoder(settings)
    semantic = settings.routing.semantic
    encoder = (
        OnnxSentenceEncoder(
            trained.model_file,
            trained.tokenizer_file,
            max_length=semantic.max_length,
            threads=semantic.threads,
            int8_matmul=semantic.int8_matmul,
        )
        if trained is not None
        else OnnxSentenceEncoder.from_settings(settings)
    )
    return routing_view(encoder, settings.cache_dir)


def routing_view(encoder: Encoder, cache_dir: Path) -> CachedEncoder:
    """How routing sees an ONNX encoder: through ``PastedTextEncoder``, utterance vectors cached on disk."""
    return CachedEncoder(PastedTextEncoder(encoder), cache_dir / "embeddings")


class SemanticStrategy:
    """``RoutingStrategy`` over routes from the experts' ``examples`` and the routes file."""

    name = "semantic"
    blocking = True  # encoder load and inference: the gating engine runs it off the event loop

    def __init__(
        self,
        registry: ExpertRegistry,
        encoder: Encoder,
        *,
        routes_file: Path | None = None,
        model_file: Path | None = None,
        routes_loader: Callable[[Path], list[Route]] = load_routes,
        cache_dir: Path | None = None,
        auto_fit: bool = True,
        builtin_routes: bool = True,
    ) -> None:
        """``cache_dir`` holds models refitted automatically (``auto_fit``) when the experts or routes no longer
        match a fitted model; ``builtin_routes`` adds the packaged utterances of the registered built-in experts."""
        self._registry = registry
        self.encoder = encoder
        self.routes_file = routes_file
        self.model_file = model_file if model_file is not None or routes_file is None else model_path_for(routes_file)
        self._routes_loader = routes_loader
        self.cache_dir = cache_dir
        self.auto_fit = auto_fit
        self.builtin_routes = builtin_routes
        self.model_note = "not built yet: the router is built on the first routed task"
        self._lock = threading.Lock()
        self._router: SemanticRouter | None = None
        self._version = -1

    @classmethod
    def from_settings(cls, registry: ExpertRegistry, settings: Settings, *, auto_fit: bool = True) -> SemanticStrategy:
        path = routes_file_of(settings)
        configured = settings.routing.semantic.routes_file is not None  # a configured file must exist
        routes_file = path if configured or path.is_file() else None
        return cls(
            registry,
            encoder_from_settings(settings),
            routes_file=routes_file,
            model_file=route_model_file_of(settings) if routes_file is not None else None,
            cache_dir=settings.cache_dir,
            auto_fit=auto_fit,
            builtin_routes=settings.routing.semantic.builtin_routes,
        )

    def routes(self, *, check: bool = True) -> list[Route]:
        """Expert routes first (experts' ``examples``, extended by the packaged utterances of built-in experts),
        then the file's (a file route named like an expert extends that expert's route), then one for each expert
        none of these reaches, from its description and capabilities. With ``check``, every file route must target
        a registered expert (routing needs that; fitting does not)."""
        file_routes = self._routes_loader(self.routes_file) if self.routes_file is not None else []
        if check and self.routes_file is not None:
            check_targets(file_routes, self._registry, str(self.routes_file))
        packaged = packaged_routes(self._registry) if self.builtin_routes else []
        routes = merge_routes(routes_from_experts(self._registry), packaged, file_routes)
        return [*routes, *routes_from_declarations(self._registry, routes)]

    def load_model(self, routes: Sequence[Route] | None = None, *, fit_now: bool = True) -> RouteModel | None:
        """The fitted model for the current routes (``routing/model_resolver.py``); ``None`` means centroids
        (or, with ``fit_now=False``, an automatic refit not run). Sets ``model_note`` to where it came from, or why
        there is none."""
        resolved = resolve_model(
            self.routes(check=False) if routes is None else routes,
            self.encoder,
            routes_file=self.routes_file,
            model_file=self.model_file,
            cache_dir=self.cache_dir,
            auto_fit=self.auto_fit,
            fit_now=fit_now,
        )
        self.model_note = resolved.note
        return resolved.model

    def router(self) -> SemanticRouter:
        """The router for the current experts; built on first use and whenever the registry changes."""
        with self._lock:
            if self._router is None or self._version != self._registry.version:
                version = self._registry.version
                routes = self.routes()
                self._router = SemanticRouter.build(routes, self.encoder, self.load_model(routes)) if routes else None
                self._version = version
            if self._router is None:
                raise ConfigError(
                    "semantic routing has no routes: give experts `examples` or set routing.semantic.routes_file"
                )
            return self._router

    def score(self, task: Task) -> Scores:
        router = self.router()
        logits, probs = router.probabilities([task_text(task)])
        verdict = router.verdict(logits[0], probs[0])
        matched = [name for name, _ in verdict.ranked[:3]]
        if verdict.out_of_scope:
            return Scores(confidences={}, matched=matched, reason=verdict.reason)
        return Scores(confidences=router.expert_confidences(probs[0]), matched=matched, reason=verdict.reason)
