"""An on-disk cache of route-utterance embeddings, keyed by encoder model and text hash.

Route utterances are embedded once and then read back: ``CachedEncoder`` wraps any ``Encoder``, looks every text
up by ``blake2b(text)`` in ``<cache_dir>/embeddings/<model_id>.npz`` and encodes only the misses, in one batch.
A different model (or truncation length) has a different ``model_id`` and so a different file; a changed
utterance has a different hash. Writes are atomic (temporary file + rename) under a file lock, and merge with
what another process may have written meanwhile. Queries are not cached here: they go straight to the encoder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from filelock import FileLock

from vy_nexus.reasoning.embeddings import Encoder, Vectors
from vy_nexus.routing.npz import DAMAGED_NPZ_ERRORS

KEY_BYTES = 16

_log = logging.getLogger(__name__)


def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=KEY_BYTES).digest()


def _safe_name(model_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in model_id)


class EmbeddingStore:
    """The vectors of one model on disk: ``keys`` (n, 16 bytes) and ``vectors`` (n, dim) in one .npz file."""

    def __init__(self, directory: Path, model_id: str) -> None:
        self.path = directory / f"{_safe_name(model_id)}.npz"
        self._lock_path = self.path.with_suffix(".lock")

    def read(self) -> dict[bytes, Vectors]:
        """The cached vectors; a damaged file (with a warning) or an unreadable one gives none: the vectors are
        computed again and the next write replaces the file."""
        entries, damage = self._load()
        if damage is not None:
            _log.warning("%s: rebuilding it", damage)
        return entries

    def _load(self) -> tuple[dict[bytes, Vectors], str | None]:
        """(entries, what is wrong with the file, if anything)."""
        if not self.path.exists():
            return {}, None
        try:
            with self.path.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
                keys = data["keys"]
                vectors = data["vectors"].astype(np.float32, copy=False)
            if keys.ndim != 1 or vectors.ndim != 2 or len(keys) != len(vectors):
                raise ValueError(f"{len(keys)} keys for {len(vectors)} vectors")
        except DAMAGED_NPZ_ERRORS as exc:  # a damaged cache is rebuilt, never trusted
            return {}, f"embedding cache {self.path} is damaged or unreadable ({type(exc).__name__})"
        return {bytes(key): vectors[i] for i, key in enumerate(keys)}, None

    def write(self, entries: dict[bytes, Vectors]) -> None:
        """Merge ``entries`` with what is on disk and replace the file atomically. A cache that cannot be written
        (a file where its directory should be, a read-only disk) is warned about: routing goes on without it."""
        try:
            self._write(entries)
        except OSError as exc:
            _log.warning(
                "cannot write the embedding cache %s (%s): the vectors are computed again next time", self.path, exc
            )

    def _write(self, entries: dict[bytes, Vectors]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self._lock_path)):
            merged, _ = self._load()  # ``read`` already warned about a damaged file; this write replaces it
            merged.update(entries)
            if not merged:
                return
            keys = np.asarray(list(merged.keys()), dtype=f"S{KEY_BYTES}")
            vectors = np.stack(list(merged.values())).astype(np.float32)
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with temporary.open("wb") as handle:
                np.savez(handle, keys=keys, vectors=vectors)
            temporary.replace(self.path)


class CachedEncoder:
    """An ``Encoder`` that serves known texts from the on-disk store and encodes only the rest."""

    def __init__(self, encoder: Encoder, directory: Path) -> None:
        self.encoder = encoder
        self.directory = directory
        self._memory: dict[bytes, Vectors] | None = None
        self._store: EmbeddingStore | None = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    def encode(self, texts: Sequence[str]) -> Vectors:
        keys = [text_key(text) for text in texts]
        with self._lock:
            if self._memory is None or self._store is None:
                self._store = EmbeddingStore(self.directory, self.encoder.model_id)
                self._memory = self._store.read()
            memory, store = self._memory, self._store
            unique_missing: dict[bytes, int] = {}
            for i, key in enumerate(keys):
                if key not in memory:
                    unique_missing.setdefault(key, i)
            missed = sum(1 for key in keys if key in unique_missing)
            self.hits += len(keys) - missed
            self.misses += missed
            if unique_missing:
                fresh = self.encoder.encode([texts[i] for i in unique_missing.values()])
                new_entries = {key: fresh[row] for row, key in enumerate(unique_missing)}
                memory.update(new_entries)
                store.write(new_entries)
        if not texts:
            return self.encoder.encode([])
        return np.stack([memory[key] for key in keys]).astype(np.float32, copy=False)


def _cache_files(directory: Path, pattern: str) -> list[Path]:
    """The regular files matching ``pattern``: anything else in the directory is not the cache's."""
    return sorted(p for p in directory.glob(pattern) if p.is_file()) if directory.is_dir() else []


def disk_stats(directory: Path) -> dict[str, int]:
    """Files, vectors and bytes of the on-disk embedding cache, and how many files are damaged (rebuilt on use)."""
    files = _cache_files(directory, "*.npz")
    vectors = damaged = 0
    for path in files:
        try:
            with path.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
                vectors += len(data["keys"])
        except DAMAGED_NPZ_ERRORS:
            damaged += 1
    size = sum(p.stat().st_size for p in files)
    return {"files": len(files), "vectors": vectors, "bytes": size, "damaged": damaged}


def clear_disk(directory: Path) -> int:
    """Delete the cached embeddings; returns how many files were removed. They are recomputed when needed."""
    removed = 0
    for path in [*_cache_files(directory, "*.npz"), *_cache_files(directory, "*.lock")]:
        path.unlink(missing_ok=True)
        removed += path.suffix == ".npz"
    return removed
