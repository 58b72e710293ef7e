"""Trained encoders: versions on disk, the one routing uses, and how to switch and roll back (no torch needed).

``vy-nexus routes train`` leaves each fine-tuned encoder in its own directory under ``<home>/encoders``::

    encoders/
      active.json                 {"active": "<version>", "history": ["<older version>", ...]}
      <version>/
        model.onnx                the encoder (int8, or fp32 when quantising cost too much)
        tokenizer.json
        <routes stem>.model.npz   the route model fitted on this encoder's embeddings
        manifest.json             data hash, settings, metrics, quantisation verdict

The encoder and the route model fitted on it live in one directory, and ``active.json`` names that directory: the
switch (and the rollback) is one atomic rename of ``active.json``, so routing sees the old pair or the new pair,
never a mix. With no active version (or after rolling back past the first), routing uses the configured encoder
(``routing.semantic.model_path``, default the packaged MiniLM) and the route model beside the routes file. An
explicitly configured ``model_path`` always wins over a trained version.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vy_nexus.config import Settings
from vy_nexus.errors import ConfigError

DEFAULT_ENCODERS_DIR = "encoders"
POINTER_FILE = "active.json"
MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"


@dataclass(frozen=True, slots=True)
class TrainedEncoder:
    """One trained version: its directory and what ``manifest.json`` says about it."""

    version: str
    directory: Path
    manifest: dict[str, Any]

    @property
    def model_file(self) -> Path:
        return self.directory / MODEL_FILE

    @property
    def tokenizer_file(self) -> Path:
        return self.directory / TOKENIZER_FILE

    def route_model_file(self, routes_file: Path) -> Path:
        return self.directory / f"{routes_file.stem}.model.npz"


def write_json_atomically(path: Path, data: Any) -> None:
    """Write to a temporary file, flush it to disk, then rename over ``path``: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


class EncoderStore:
    """The trained versions under one directory and the pointer naming the active one."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pointer = directory / POINTER_FILE

    def _read_pointer(self) -> tuple[str | None, list[str]]:
        if not self.pointer.is_file():
            return None, []
        try:
            data = json.loads(self.pointer.read_text(encoding="utf-8"))
            active, history = data["active"], data["history"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{self.pointer} is damaged ({exc}); delete it to route with the base encoder") from exc
        if (active is not None and not isinstance(active, str)) or not isinstance(history, list):
            raise ConfigError(f"{self.pointer} is damaged; delete it to route with the base encoder")
        return active, [str(v) for v in history]

    def get(self, version: str) -> TrainedEncoder:
        directory = self.directory / version
        manifest_file = directory / MANIFEST_FILE
        try:
            manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"trained encoder {version} is missing or damaged ({manifest_file}: {exc})") from exc
        for needed in (directory / MODEL_FILE, directory / TOKENIZER_FILE):
            if not needed.is_file():
                raise ConfigError(f"trained encoder {version} is incomplete: {needed} is missing")
        return TrainedEncoder(version, directory, manifest)

    def active(self) -> TrainedEncoder | None:
        version, _ = self._read_pointer()
        return None if version is None else self.get(version)

    def history(self) -> list[str]:
        """Versions a rollback returns to, most recent first."""
        return self._read_pointer()[1]

    def versions(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.name for p in self.directory.iterdir() if (p / MANIFEST_FILE).is_file())

    def install(self, staging: Path, version: str) -> TrainedEncoder:
        """Move a finished staging directory into place as ``version``. The version hashes data, settings and
        metrics, so an existing directory of that name is the same model: it is kept and the staging dropped."""
        target = self.directory / version
        if (target / MANIFEST_FILE).is_file():
            shutil.rmtree(staging)
        else:
            shutil.rmtree(target, ignore_errors=True)
            staging.replace(target)
        return self.get(version)

    def activate(self, version: str) -> None:
        """Route with ``version`` from now on; the version it replaces is kept for ``rollback``."""
        self.get(version)
        active, history = self._read_pointer()
        if active == version:
            return
        write_json_atomically(self.pointer, {"active": version, "history": [active, *history] if active else history})

    def rollback(self) -> tuple[str | None, str | None]:
        """Return to the version active before the current one (None: the base encoder). Returns (from, to)."""
        active, history = self._read_pointer()
        if active is None:
            raise ConfigError("nothing to roll back: routing already uses the base encoder (no trained version active)")
        previous = history[0] if history else None
        if previous is not None:
            self.get(previous)
        write_json_atomically(self.pointer, {"active": previous, "history": history[1:]})
        return active, previous


def encoder_store(settings: Settings) -> EncoderStore:
    return EncoderStore(settings.resolve(DEFAULT_ENCODERS_DIR))


def active_trained_encoder(settings: Settings) -> TrainedEncoder | None:
    """The trained version routing uses: the active one, unless ``routing.semantic.model_path`` is configured."""
    if settings.routing.semantic.model_path:
        return None
    return encoder_store(settings).active()
