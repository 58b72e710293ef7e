"""Debian's Chromium driven by Playwright for the dashboard's browser tests (never a downloaded browser)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


@contextmanager
def chromium_context(viewport: dict[str, int]) -> Iterator[Any]:
    """A browser context of ``viewport`` size in Debian's chromium; the browser closes on exit."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is not installed: apt-get install -y chromium chromium-driver (.ci/run does)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport=viewport)
        context.set_default_timeout(20_000)
        try:
            yield context
        finally:
            browser.close()
