"""Which fitted route model serves a route set: the user's, the packaged one, an automatic refit, or none.

In order, the first model fitted for exactly these routes and this encoder wins:

1. the model ``vy-nexus routes fit`` saved next to the routes file;
2. the model shipped with the package for the built-in experts (a default install);
3. a model refitted automatically for this route set, cached under ``<cache_dir>/route-models/<fingerprint>``;
4. with ``auto_fit``, a new fit of the route set now (seconds: the built-in experts' utterances come with their
   vectors, the user's are cached on disk), saved there for the next process.

Otherwise (no ``cache_dir``, ``auto_fit`` off, or too few utterances to fit) the router uses centroids and the
note says why and what to run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vy_nexus.errors import ConfigError
from vy_nexus.reasoning.embeddings import Encoder
from vy_nexus.routing.builtin_routes import packaged_model_path, with_packaged_embeddings
from vy_nexus.routing.route_model import RouteModel, fit_route_model, model_path_for
from vy_nexus.routing.routes import Route, routes_fingerprint

MIN_UTTERANCES_TO_FIT = 20
"""Below this many utterances a fit has nothing to hold out; centroids serve as well."""
AUTO_FIT_DIRNAME = "route-models"

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    model: RouteModel | None
    note: str


def auto_fit_path(cache_dir: Path, routes: Sequence[Route], model_id: str) -> Path:
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_id)
    return cache_dir / AUTO_FIT_DIRNAME / f"{routes_fingerprint(routes)}-{name}.model.npz"


def _matching(path: Path, routes: Sequence[Route], model_id: str, *, strict: bool = False) -> RouteModel | None:
    """The model at ``path`` if it was fitted for these routes; a damaged file is an error only when ``strict``
    (the user's own model), otherwise it is ignored (with a warning) and refitted over."""
    if not path.is_file():
        return None
    try:
        model = RouteModel.load(path)
    except ConfigError as exc:
        if strict:
            raise
        cause = type(exc.__cause__ or exc).__name__
        _log.warning("route model %s is damaged or not a route model (%s): refitting it automatically", path, cause)
        return None
    return model if model.matches(routes, model_id) else None


def _save_refit(model: RouteModel, path: Path) -> str:
    """Save an automatic refit for later processes; a cache that cannot be written (a file where its directory
    should be, a read-only disk) costs the next process the refit again, never this task its routing."""
    try:
        model.save(path)
    except OSError as exc:
        _log.warning("cannot save the refitted route model to %s (%s): the next process refits again", path, exc)
        return f"not saved: {exc.strerror or exc}"
    return str(path)


def resolve_model(
    routes: Sequence[Route],
    encoder: Encoder,
    *,
    routes_file: Path | None = None,
    model_file: Path | None = None,
    cache_dir: Path | None = None,
    auto_fit: bool = True,
    fit_now: bool = True,
) -> ResolvedModel:
    """The fitted model for ``routes`` (see the module docstring), with a note saying where it came from.
    ``model_file`` is where the user's model lives when not beside ``routes_file`` (a trained encoder's).
    ``fit_now=False`` only looks: where an automatic refit is due, the note says so and no model is returned."""
    model_id = encoder.model_id
    if routes_file is not None:
        user_model = model_file or model_path_for(routes_file)
        model = _matching(user_model, routes, model_id, strict=True)
        if model is not None:
            return ResolvedModel(model, f"fitted by `routes fit` or `routes train` ({user_model})")
    model = _matching(packaged_model_path(), routes, model_id)
    if model is not None:
        return ResolvedModel(model, "fitted for the built-in experts (shipped with vy-nexus)")
    if cache_dir is not None:
        path = auto_fit_path(cache_dir, routes, model_id)
        model = _matching(path, routes, model_id)
        if model is not None:
            return ResolvedModel(model, f"refitted automatically for these routes ({path})")
    utterances = sum(len(route.utterances) for route in routes)
    if not auto_fit or cache_dir is None or len(routes) < 2 or utterances < MIN_UTTERANCES_TO_FIT:
        why = "automatic refits are off" if not auto_fit or cache_dir is None else f"{utterances} utterances"
        return ResolvedModel(
            None, f"no fitted model matches these routes ({why}): centroids; run `vy-nexus routes fit` to fit one"
        )
    if not fit_now:  # a look that must not fit (`routes list`): say what routing itself will do
        return ResolvedModel(
            None,
            "no fitted model matches these routes yet: the first routed task refits them automatically"
            " (seconds, once), or run `vy-nexus routes fit`",
        )
    started = time.perf_counter()
    model = fit_route_model(routes, with_packaged_embeddings(encoder))
    saved = _save_refit(model, auto_fit_path(cache_dir, routes, model_id))
    return ResolvedModel(
        model,
        f"refitted automatically because the experts or routes changed ({len(routes)} routes,"
        f" {time.perf_counter() - started:.1f} s; {saved})",
    )
