"""The route set and fitted route model that ship with vy-nexus for the built-in experts.

``data/builtin_routes.json`` holds a few hundred utterances per built-in expert (written for this project, built by
``scripts/build_builtin_routes.py``); ``data/builtin_routes.model.npz`` is the model fitted on exactly the routes a
default install routes with. A packaged route joins the route set only while its expert is registered, so a user
who disables a built-in or adds experts gets a different route set, for which the packaged model no longer
matches (see ``routing/model_resolver.py``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.reasoning.embeddings import Encoder, Vectors
from vy_nexus.routing.embedding_cache import KEY_BYTES, text_key
from vy_nexus.routing.npz import DAMAGED_NPZ_ERRORS
from vy_nexus.routing.routes import Route, load_routes

DATA_PACKAGE = "vy_nexus.routing.data"
ROUTES_FILE = "builtin_routes.json"
MODEL_FILE = "builtin_routes.model.npz"
EMBEDDINGS_FILE = "builtin_routes.embeddings.npz"


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


def packaged_embeddings_path() -> Path:
    return _data_path(EMBEDDINGS_FILE)


def save_packaged_embeddings(texts: Sequence[str], encoder: Encoder, path: Path | None = None) -> None:
    """Store the vectors of ``texts`` (as float16, keyed like the embedding cache) for ``encoder``'s model."""
    vectors = encoder.encode(list(texts)).astype(np.float16)
    keys = np.asarray([text_key(text) for text in texts], dtype=f"S{KEY_BYTES}")
    meta = np.asarray(json.dumps({"model_id": encoder.model_id}))
    np.savez_compressed(path or packaged_embeddings_path(), meta=meta, keys=keys, vectors=vectors)


class PrecomputedEncoder:
    """An ``Encoder`` that answers texts it holds a vector for and asks ``encoder`` for the rest."""

    def __init__(self, encoder: Encoder, known: dict[bytes, Vectors]) -> None:
        self.encoder = encoder
        self.known = known

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    def encode(self, texts: Sequence[str]) -> Vectors:
        keys = [text_key(text) for text in texts]
        missing = [text for text, key in zip(texts, keys, strict=True) if key not in self.known]
        fresh = dict(zip((text_key(t) for t in missing), self.encoder.encode(missing), strict=True)) if missing else {}
        if not texts:
            return self.encoder.encode([])
        return np.stack([self.known[key] if key in self.known else fresh[key] for key in keys]).astype(np.float32)


def with_packaged_embeddings(encoder: Encoder) -> Encoder:
    """``encoder``, answering the packaged utterances from their shipped vectors when these were computed by the
    same model (else ``encoder`` itself)."""
    path = packaged_embeddings_path()
    if not path.is_file():
        return encoder
    try:
        with path.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
            if json.loads(str(data["meta"])).get("model_id") != encoder.model_id:
                return encoder
            known = {bytes(key): row.astype(np.float32) for key, row in zip(data["keys"], data["vectors"], strict=True)}
    except DAMAGED_NPZ_ERRORS:
        return encoder  # a damaged file only costs the time to embed the utterances again
    return PrecomputedEncoder(encoder, known)
