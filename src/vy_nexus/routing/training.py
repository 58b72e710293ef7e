"""What ``vy-nexus routes fit`` and ``routes eval`` do, as library calls the CLI (and tests) drive.

``fit_routes``: labeled examples become routes (one per label; out-of-scope examples are kept aside), merged into
the routes file (``routing.semantic.routes_file``, default ``routes.yaml`` in home), then the whole route set the
semantic strategy will see (experts' examples + the file) is fitted and the model saved next to the file.
``evaluate_routes``: the same route set and model, evaluated on labeled examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vy_nexus.config import Settings
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.foundation.file_lock import FileGuard
from vy_nexus.routing.builtin_routes import with_packaged_embeddings
from vy_nexus.routing.evaluate import EvaluationReport, evaluate
from vy_nexus.routing.route_model import RouteModel, check_fit_options, fit_route_model
from vy_nexus.routing.routes import (
    OUT_OF_SCOPE_LABEL,
    LabeledExample,
    Route,
    load_routes,
    merge_routes,
    routes_from_labeled,
    save_routes,
)
from vy_nexus.routing.semantic import (
    SemanticRouter,
    SemanticStrategy,
    encoder_from_settings,
    route_model_file_of,
    routes_file_of,
)

FIT_LOCK_TIMEOUT_SECONDS = 600.0
"""How long a `routes fit` waits for another one on the same routes file (a CLINC150-sized fit takes seconds)."""


@dataclass(frozen=True, slots=True)
class FitOutcome:
    routes_file: Path
    model_file: Path
    model: RouteModel
    routes: int
    new_routes: int
    untargeted: list[str]
    """Routes whose target is not a registered expert: fine for evaluation, an error for routing."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "routes_file": str(self.routes_file),
            "model_file": str(self.model_file),
            "routes": self.routes,
            "new_routes": self.new_routes,
            "kind": self.model.kind,
            "temperature": round(self.model.temperature, 4),
            "rejection_threshold": round(self.model.rejection_threshold, 4),
            "report": self.model.report,
            "untargeted_routes": self.untargeted,
        }


def strategy_for(
    settings: Settings, registry: ExpertRegistry, routes_file: Path | None = None, *, auto_fit: bool = True
) -> SemanticStrategy:
    path = routes_file or routes_file_of(settings)
    return SemanticStrategy(
        registry,
        encoder_from_settings(settings),
        routes_file=path if path.is_file() else None,
        model_file=route_model_file_of(settings),
        cache_dir=settings.cache_dir,
        auto_fit=auto_fit,
        builtin_routes=settings.routing.semantic.builtin_routes,
    )


def with_labeled_routes(
    routes_file: Path, examples: Sequence[LabeledExample], target: str | None, oos_label: str
) -> tuple[list[Route], list[str]]:
    """(the routes file's routes with one route per label merged in, the names of the new routes). New routes send
    tasks to ``target`` when given; existing routes keep theirs."""
    existing = load_routes(routes_file) if routes_file.is_file() else []
    known = {route.name for route in existing}
    learned = routes_from_labeled(examples, oos_label)
    if target is not None:
        learned = [replace(route, target=target) if route.name not in known else route for route in learned]
    return merge_routes(existing, learned), [r.name for r in learned if r.name not in known]


def fit_routes(
    settings: Settings,
    registry: ExpertRegistry,
    examples: Sequence[LabeledExample],
    *,
    oos_examples: Sequence[LabeledExample] = (),
    target: str | None = None,
    oos_label: str = OUT_OF_SCOPE_LABEL,
    **fit_options: Any,
) -> FitOutcome:
    """Merge labeled examples into the routes file, fit the full route set, save routes and model.

    The whole read-merge-fit-save runs under ``<routes file>.lock``: two fits at once (two terminals, two scripts)
    would otherwise both read the old file and the later save would drop the other's routes, or leave a model
    fitted on routes the file no longer holds. The second waits for the first, then merges into its result.
    """
    check_fit_options(**fit_options)
    routes_file = routes_file_of(settings)
    with FileGuard(routes_file, FIT_LOCK_TIMEOUT_SECONDS).locked():
        file_routes, new_routes = with_labeled_routes(routes_file, examples, target, oos_label)
        save_routes(routes_file, file_routes)
        strategy = strategy_for(settings, registry, routes_file, auto_fit=False)
        routes = strategy.routes(check=False)
        oos_texts = [e.text for e in [*examples, *oos_examples] if e.label == oos_label]
        encoder = with_packaged_embeddings(strategy.encoder)  # the built-ins' utterances come with their vectors
        model = fit_route_model(routes, encoder, oos_texts=oos_texts, **fit_options)
        model_file = route_model_file_of(settings)
        model.save(model_file)
    return FitOutcome(
        routes_file=routes_file,
        model_file=model_file,
        model=model,
        routes=len(routes),
        new_routes=len(new_routes),
        untargeted=[r.name for r in file_routes if r.expert_id not in registry],
    )


def router_for(settings: Settings, registry: ExpertRegistry) -> SemanticRouter:
    """The router the semantic strategy would use (without requiring route targets to be registered)."""
    strategy = strategy_for(settings, registry)
    return SemanticRouter.build(strategy.routes(check=False), strategy.encoder, strategy.load_model())


def evaluate_routes(
    settings: Settings, registry: ExpertRegistry, examples: Sequence[LabeledExample], **options: Any
) -> tuple[EvaluationReport, list[Route]]:
    router = router_for(settings, registry)
    return evaluate(router, examples, **options), router.routes
