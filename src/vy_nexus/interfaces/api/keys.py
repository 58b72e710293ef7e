"""API keys, stored hashed in ``<home>/api/keys.json``: ``vy-nexus keys create|list|revoke`` writes it, the server
reads it (again whenever the file changes, so a revoked key stops working at the next request).

A key reads ``vyn_<id>_<secret>``: the id finds the record, the SHA-256 of the whole key must match its hash. The key
itself is shown once, at creation, and never stored or logged. A plain SHA-256 is enough: the secret is 256 random
bits, so there is nothing to brute-force that a slow hash would protect.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from vy_nexus import json_text
from vy_nexus.errors import StateError, VyNexusError
from vy_nexus.foundation.atomic import atomic_write_text
from vy_nexus.foundation.file_lock import FileGuard

KEY_PREFIX = "vyn"
_KEY_SHAPE = re.compile(rf"^{KEY_PREFIX}_([0-9a-f]{{12}})_[A-Za-z0-9_-]{{43}}$")
_NAME_SHAPE = re.compile(r"^[\w.@:-]{1,64}$")


class ApiKeyError(VyNexusError):
    """A bad key name, or no such key."""

    exit_code = 2
    http_status = 400


class UnknownKeyError(ApiKeyError):
    http_status = 404


class ApiKey(BaseModel):
    """What is kept about a key: never the key itself."""

    id: str
    name: str
    hash: str = Field(repr=False)
    created_at: float
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "created_at": self.created_at, "revoked_at": self.revoked_at}


class _File(BaseModel):
    keys: list[ApiKey] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class NewKey:
    record: ApiKey
    secret: str
    """The key to hand to the client; shown once."""


def keys_file(home: Path) -> Path:
    return home / "api" / "keys.json"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


RECHECK_SECONDS = 1.0
"""How often the server looks at the keys file again: a revoked key stops working within this time (a new key
works at once: an unknown key id makes the server look at the file).
Looking on every request cost the event loop a wait for the GIL per request under load (benchmarks/api_load.py)."""


class KeyStore:
    def __init__(self, path: Path, *, recheck_seconds: float = RECHECK_SECONDS) -> None:
        self.path = path
        self.recheck_seconds = recheck_seconds
        self._guard = FileGuard(path, timeout=10.0)
        self._cache: tuple[tuple[int, int], dict[str, ApiKey]] | None = None
        self._checked_at = -math.inf

    # -- administration (the CLI) -----------------------------------------------------------------------------------

    def create(self, name: str) -> NewKey:
        if not _NAME_SHAPE.fullmatch(name):
            raise ApiKeyError(f"key name {name!r} must be 1-64 letters, digits or . _ - @ :")
        with self._editing():
            keys = self._read()
            key_id = secrets.token_hex(6)
            secret = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
            record = ApiKey(id=key_id, name=name, hash=_digest(secret), created_at=time.time())
            self._write([*keys, record])
        return NewKey(record, secret)

    def all(self) -> list[ApiKey]:
        return self._read()

    def revoke(self, key_id: str) -> ApiKey:
        with self._editing():
            keys = self._read()
            for index, record in enumerate(keys):
                if record.id == key_id or record.name == key_id:
                    if record.active:
                        keys[index] = record.model_copy(update={"revoked_at": time.time()})
                        self._write(keys)
                    return keys[index]
        raise UnknownKeyError(f"no API key with id or name {key_id!r} (see `vy-nexus keys list`)")

    # -- verification (the server) ----------------------------------------------------------------------------------

    def verify(self, presented: str) -> ApiKey | None:
        """The active key ``presented`` is, or ``None``. Looks at the file at most every ``recheck_seconds`` and
        rereads it only when it changed."""
        match = _KEY_SHAPE.fullmatch(presented)
        if match is None:
            return None
        record = self._by_id().get(match.group(1))
        if record is None:  # maybe a key created a moment ago: look at the file now
            record = self._by_id(fresh=True).get(match.group(1))
        if record is None or not record.active or not hmac.compare_digest(record.hash, _digest(presented)):
            return None
        return record

    def _by_id(self, *, fresh: bool = False) -> dict[str, ApiKey]:
        now = time.monotonic()
        if not fresh and self._cache is not None and now - self._checked_at < self.recheck_seconds:
            return self._cache[1]
        self._checked_at = now
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._cache = None
            return {}
        signature = (stat.st_mtime_ns, stat.st_size)
        if self._cache is None or self._cache[0] != signature:
            try:
                keys = self._read()
            except StateError:
                # Forget the keys read before, so every request is refused until the file is fixed: keeping them
                # let all requests but one a second through, the one refused looking like a random failure.
                self._cache = None
                self._checked_at = -math.inf
                raise
            self._cache = (signature, {record.id: record for record in keys})
        return self._cache[1]

    # -- the file ---------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _editing(self) -> Iterator[None]:
        """The keys file locked for a read-modify-write; a home that cannot be written is named, not a traceback."""
        try:
            with self._guard.locked():
                yield
        except OSError as exc:
            raise StateError(f"cannot write the API keys file {self.path}: {exc.strerror or exc}") from exc

    def _read(self) -> list[ApiKey]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StateError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        try:
            return _File.model_validate(json_text.loads(data.decode("utf-8"))).keys
        except (UnicodeDecodeError, RecursionError, json.JSONDecodeError, ValidationError) as exc:
            raise StateError(f"{self.path} is corrupt ({exc.__class__.__name__}); fix or remove it") from exc

    def _write(self, keys: list[ApiKey]) -> None:
        payload = _File(keys=keys).model_dump(mode="json")
        atomic_write_text(self.path, json.dumps(payload, indent=2) + "\n", mode=0o600)
