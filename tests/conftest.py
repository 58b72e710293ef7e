from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vy_nexus.config import Settings, load_settings
from vy_nexus.system import VyNexus


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the real home directory or inherits VY_NEXUS_* settings from the shell."""
    import os

    for name in list(os.environ):
        if name.startswith("VY_NEXUS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VY_NEXUS_HOME", str(tmp_path / "home"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings(home, environ={})


@pytest.fixture
def system(settings: Settings) -> Iterator[VyNexus]:
    with VyNexus(settings) as vy:
        yield vy
