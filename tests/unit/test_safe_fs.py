"""The safe file system: every refusal path, atomic writes, backups and the size cap, on real directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from vy_nexus.config import load_settings
from vy_nexus.errors import SafetyError
from vy_nexus.foundation.safe_fs import (
    FileSystemSafetyError,
    FileTooLargeError,
    InvalidPathError,
    OutsideRootsError,
    PathTraversalError,
    SafeFileSystem,
    SymlinkEscapeError,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret.txt").write_text("secret")
    return path


@pytest.fixture
def fs(root: Path) -> SafeFileSystem:
    return SafeFileSystem([root], max_file_size=64)


def test_writes_and_reads_inside_the_root(fs: SafeFileSystem, root: Path) -> None:
    written = fs.write_text("notes/today.txt", "hello")
    assert written == (root / "notes" / "today.txt").resolve()
    assert fs.read_text("notes/today.txt") == "hello"
    assert fs.read_bytes(root / "notes" / "today.txt") == b"hello"  # absolute inside is fine
    assert fs.exists("notes/today.txt") and not fs.exists("notes/other.txt")
    assert [p.name for p in fs.list_dir("notes")] == ["today.txt"]
    assert fs.mkdir("a/b").is_dir()


def test_dot_dot_that_stays_inside_is_allowed(fs: SafeFileSystem, root: Path) -> None:
    assert fs.resolve("a/../b.txt") == (root / "b.txt").resolve()


@pytest.mark.parametrize("path", ["../outside/secret.txt", "a/../../outside/secret.txt", "../../etc/passwd"])
def test_dot_dot_escapes_are_refused(fs: SafeFileSystem, path: str) -> None:
    with pytest.raises(PathTraversalError, match=r"uses '\.\.' to leave the allowed roots"):
        fs.write_text(path, "x")


def test_absolute_paths_outside_the_roots_are_refused(fs: SafeFileSystem, outside: Path) -> None:
    with pytest.raises(OutsideRootsError, match="outside the allowed roots"):
        fs.read_text(outside / "secret.txt")
    with pytest.raises(OutsideRootsError):
        fs.write_text("/etc/vy-nexus-test", "x")


def test_the_prefix_trick_is_refused(fs: SafeFileSystem, tmp_path: Path) -> None:
    evil = tmp_path / "data-evil"
    evil.mkdir()
    with pytest.raises(OutsideRootsError):
        fs.write_text(evil / "x.txt", "x")
    with pytest.raises(PathTraversalError):
        fs.write_text("../data-evil/x.txt", "x")
    assert not (evil / "x.txt").exists()


def test_a_directory_symlink_leading_out_is_refused(fs: SafeFileSystem, root: Path, outside: Path) -> None:
    (root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(SymlinkEscapeError, match="through a symlink"):
        fs.write_text("link/planted.txt", "x")
    with pytest.raises(SymlinkEscapeError):
        fs.read_text("link/secret.txt")
    assert not (outside / "planted.txt").exists()


def test_a_file_symlink_leading_out_is_refused(fs: SafeFileSystem, root: Path, outside: Path) -> None:
    (root / "secret.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(SymlinkEscapeError):
        fs.write_text("secret.txt", "overwritten")
    assert (outside / "secret.txt").read_text() == "secret"


def test_a_symlink_that_stays_inside_is_followed(fs: SafeFileSystem, root: Path) -> None:
    (root / "real").mkdir()
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    assert fs.write_text("alias/x.txt", "ok") == (root / "real" / "x.txt").resolve()
    assert (root / "real" / "x.txt").read_text() == "ok"


def test_size_cap_on_write_and_read(fs: SafeFileSystem, root: Path) -> None:
    with pytest.raises(FileTooLargeError, match="limit is 64 bytes"):
        fs.write_bytes("big.bin", b"x" * 65)
    assert not (root / "big.bin").exists()
    (root / "big.bin").write_bytes(b"x" * 65)
    with pytest.raises(FileTooLargeError):
        fs.read_bytes("big.bin")
    fs.write_bytes("exact.bin", b"x" * 64)


def test_overwrite_keeps_a_backup_unless_told_not_to(fs: SafeFileSystem, root: Path) -> None:
    fs.write_text("doc.txt", "v1")
    assert not (root / "doc.txt.bak").exists()
    fs.write_text("doc.txt", "v2")
    assert (root / "doc.txt.bak").read_text() == "v1"
    fs.write_text("doc.txt", "v3", backup=False)
    assert (root / "doc.txt.bak").read_text() == "v1"
    assert (root / "doc.txt").read_text() == "v3"
    assert sorted(p.name for p in root.iterdir()) == ["doc.txt", "doc.txt.bak"]  # no temp files left


def test_no_backups_when_disabled(root: Path) -> None:
    fs = SafeFileSystem([root], backup_on_overwrite=False)
    fs.write_text("doc.txt", "v1")
    fs.write_text("doc.txt", "v2")
    assert not (root / "doc.txt.bak").exists()


@pytest.mark.parametrize("path", ["", "bad\x00name"])
def test_invalid_paths(fs: SafeFileSystem, path: str) -> None:
    with pytest.raises(InvalidPathError):
        fs.resolve(path)


def test_directories_are_not_files(fs: SafeFileSystem) -> None:
    fs.mkdir("folder")
    with pytest.raises(InvalidPathError, match="is a directory"):
        fs.write_text("folder", "x")
    with pytest.raises(InvalidPathError, match="is not a file"):
        fs.read_text("folder")
    with pytest.raises(InvalidPathError, match="is not a directory"):
        fs.list_dir("missing")


def test_refusals_are_safety_errors_naming_the_path(fs: SafeFileSystem) -> None:
    with pytest.raises(FileSystemSafetyError) as info:
        fs.resolve("../x")
    assert isinstance(info.value, SafetyError)
    assert info.value.path == "../x" and info.value.http_status == 403 and info.value.exit_code == 4


def test_from_settings_resolves_roots_against_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    extra = tmp_path / "extra"
    (home / "workspace").mkdir(parents=True)
    extra.mkdir()
    (home / "config.yaml").write_text(
        f"file_system:\n  allowed_paths: [workspace, {extra}]\n  max_file_size: 10\n  backup_on_overwrite: false\n"
    )
    fs = SafeFileSystem.from_settings(load_settings(home, environ={}))
    assert fs.roots == [(home / "workspace").resolve(), extra.resolve()]
    assert fs.max_file_size == 10 and not fs.backup_on_overwrite
    fs.write_text("workspace/a.txt", "ok")  # relative to home
    fs.write_text(extra / "b.txt", "ok")
    with pytest.raises(OutsideRootsError):
        fs.write_text("config.yaml", "x")  # home itself is not a root here


def test_needs_a_root() -> None:
    with pytest.raises(SafetyError, match="at least one allowed root"):
        SafeFileSystem([])
