"""The route set and fitted route model that ship with vy-nexus for the built-in experts.

``data/builtin_routes.json`` holds a few hundred utterances per built-in expert (written for this project, built by
``scripts/build_builtin_routes.py``); ``data/builtin_routes.model.npz`` is the model fitted on exactly the routes a
default install routes with. A packaged route joins the route set only while its expert is registered, so a user
who disables a built-in or adds experts gets a different route set, for which the packaged model no longer
matches (see ``routing/model_resolver.py``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.routing.routes import Route, load_routes

DATA_PACKAGE = "vy_nexus.routing.data"
ROUTES_FILE = "builtin_routes.json"
MODEL_FILE = "builtin_routes.model.npz"


def _data_path(name: str) -> Path:
    return Path(str(resources.files(DATA_PACKAGE).joinpath(name)))


def packaged_routes_path() -> Path:
    return _data_path(ROUTES_FILE)


def packaged_model_path() -> Path:
    return _data_path(MODEL_FILE)


def packaged_routes(registry: ExpertRegistry) -> list[Route]:
    """The packaged routes whose expert is registered (none when the data file is missing)."""
    path = packaged_routes_path()
    if not path.is_file():
        return []
    return [route for route in load_routes(path) if route.expert_id in registry]
