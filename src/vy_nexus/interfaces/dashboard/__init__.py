"""The web dashboard's files: Jinja2 templates and static assets (vendored: nothing is fetched from the network).
Its routes live in ``vy_nexus.interfaces.api.routers.dashboard``."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
