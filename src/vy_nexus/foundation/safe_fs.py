"""The safe file-system step: every file vy-nexus writes for a user or an expert goes through ``SafeFileSystem``.

A path is accepted only when it lies inside one of the allowed roots (``file_system.allowed_paths``, relative
entries resolved against the home directory). Checks, in order:

1. ``..`` that leads out of every root                    → ``PathTraversalError``
2. an absolute path outside every root                    → ``OutsideRootsError``
3. a path that is inside lexically but whose real location
   (after following symlinks) is outside every root         → ``SymlinkEscapeError``

Containment compares whole path components, so ``/data-evil/x`` is never inside ``/data``. Writes are atomic
(temporary file, fsync, rename), optionally keep the previous version as ``<name>.bak``, and are capped at
``file_system.max_file_size`` bytes (``FileTooLargeError``); reads obey the same cap.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from vy_nexus.config import Settings
from vy_nexus.errors import SafetyError
from vy_nexus.foundation.atomic import atomic_write_bytes

BACKUP_SUFFIX = ".bak"


class FileSystemSafetyError(SafetyError):
    """The safe file system refused a path or a size. Subclasses name the exact reason."""

    http_status = 403

    def __init__(self, message: str, *, path: str | Path) -> None:
        super().__init__(message)
        self.path = str(path)


class PathTraversalError(FileSystemSafetyError):
    """``..`` components lead out of the allowed roots."""


class OutsideRootsError(FileSystemSafetyError):
    """An absolute path that is not inside any allowed root."""


class SymlinkEscapeError(FileSystemSafetyError):
    """The path is inside a root by name, but a symlink leads its real location outside."""


class InvalidPathError(FileSystemSafetyError):
    """Empty paths, NUL bytes, or a directory where a file was expected."""


class FileTooLargeError(FileSystemSafetyError):
    http_status = 413


def _lexical(path: Path | str) -> Path:
    """Absolute and normalised without following symlinks (unlike ``Path.resolve``)."""
    return Path(os.path.normpath(Path(path).absolute()))


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


class SafeFileSystem:
    """File access confined to ``roots``. Relative paths are taken relative to ``base`` (default: the first root)."""

    def __init__(
        self,
        roots: Sequence[Path | str],
        *,
        max_file_size: int = 10 * 1024 * 1024,
        backup_on_overwrite: bool = True,
        base: Path | None = None,
    ) -> None:
        if not roots:
            raise SafetyError("the safe file system needs at least one allowed root (file_system.allowed_paths)")
        # Lexical roots catch '..' and absolute paths; resolved roots catch symlinks (and a root that is itself a link).
        self._lexical_roots = [_lexical(root) for root in roots]
        self._real_roots = [Path(root).resolve() for root in roots]
        self.max_file_size = max_file_size
        self.backup_on_overwrite = backup_on_overwrite
        self.base = _lexical(base) if base is not None else self._lexical_roots[0]

    @classmethod
    def from_settings(cls, settings: Settings) -> SafeFileSystem:
        fs = settings.file_system
        return cls(
            [settings.resolve(path) for path in fs.allowed_paths],
            max_file_size=fs.max_file_size,
            backup_on_overwrite=fs.backup_on_overwrite,
            base=settings.home,
        )

    @property
    def roots(self) -> list[Path]:
        return list(self._real_roots)

    def resolve(self, path: str | Path) -> Path:
        """The real absolute location of ``path``, or a ``FileSystemSafetyError`` saying why it is not allowed."""
        raw = str(path)
        if not raw or "\x00" in raw:
            raise InvalidPathError(f"invalid path {raw!r}: empty or containing a NUL byte", path=raw)
        given = Path(raw)
        candidate = given if given.is_absolute() else self.base / given
        lexical = Path(os.path.normpath(candidate))
        if not _inside(lexical, self._lexical_roots) and not _inside(lexical, self._real_roots):
            roots = ", ".join(str(root) for root in self._real_roots)
            if ".." in given.parts:
                raise PathTraversalError(f"path '{raw}' uses '..' to leave the allowed roots ({roots})", path=raw)
            raise OutsideRootsError(f"path '{raw}' is outside the allowed roots ({roots})", path=raw)
        real = lexical.resolve()
        if not _inside(real, self._real_roots):
            raise SymlinkEscapeError(
                f"path '{raw}' leads through a symlink to '{real}', outside the allowed roots", path=raw
            )
        return real

    def write_bytes(self, path: str | Path, data: bytes, *, backup: bool | None = None) -> Path:
        """Atomically replace ``path`` with ``data``; keeps ``<name>.bak`` first when backups are on."""
        if len(data) > self.max_file_size:
            raise FileTooLargeError(
                f"refusing to write {len(data)} bytes to '{path}': the limit is {self.max_file_size} bytes"
                " (file_system.max_file_size)",
                path=path,
            )
        target = self.resolve(path)
        if target.is_dir():
            raise InvalidPathError(f"'{path}' is a directory", path=path)
        keep_backup = self.backup_on_overwrite if backup is None else backup
        if keep_backup and target.is_file():
            atomic_write_bytes(target.with_name(target.name + BACKUP_SUFFIX), target.read_bytes())
        atomic_write_bytes(target, data)
        return target

    def write_text(self, path: str | Path, text: str, *, encoding: str = "utf-8", backup: bool | None = None) -> Path:
        return self.write_bytes(path, text.encode(encoding), backup=backup)

    def read_bytes(self, path: str | Path) -> bytes:
        target = self.resolve(path)
        if not target.is_file():
            raise InvalidPathError(f"'{path}' is not a file", path=path)
        size = target.stat().st_size
        if size > self.max_file_size:
            raise FileTooLargeError(
                f"refusing to read '{path}' ({size} bytes): the limit is {self.max_file_size} bytes"
                " (file_system.max_file_size)",
                path=path,
            )
        return target.read_bytes()

    def read_text(self, path: str | Path, *, encoding: str = "utf-8") -> str:
        return self.read_bytes(path).decode(encoding)

    def exists(self, path: str | Path) -> bool:
        return self.resolve(path).exists()

    def mkdir(self, path: str | Path) -> Path:
        target = self.resolve(path)
        target.mkdir(parents=True, exist_ok=True)
        return target

    def list_dir(self, path: str | Path = ".") -> list[Path]:
        target = self.resolve(path)
        if not target.is_dir():
            raise InvalidPathError(f"'{path}' is not a directory", path=path)
        return sorted(target.iterdir())
