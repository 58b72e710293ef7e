"""The dashboard's error pages, its charts' width and an ended session in a real headless Chromium (Debian's
``chromium``, driven by Playwright; no browser download): a wrong address opens an error page in the layout; a chart
follows its box when the screen turns (a phone rotated) instead of keeping the width it was first drawn at; a page
whose session ends goes to the login form instead of pasting the login page into itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chromium import chromium_context
from dashboard_app import dashboard_settings, dashboard_system
from live_api import LiveApi, live_api

pytestmark = pytest.mark.slow

sync_api = pytest.importorskip("playwright.sync_api")

LANDSCAPE = {"width": 740, "height": 375}
PORTRAIT = {"width": 375, "height": 740}
CHART_FITS = """() => {
  const el = document.querySelector("[data-chart]"), style = getComputedStyle(el);
  const box = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const canvas = el.querySelector("canvas");
  return canvas && Math.abs(canvas.getBoundingClientRect().width - box) <= 1
    && document.documentElement.scrollWidth <= window.innerWidth
    ? { box: box, page: document.documentElement.scrollWidth } : false;
}"""


@pytest.fixture
def chromium() -> Iterator[object]:
    with chromium_context(LANDSCAPE) as context:
        yield context


@pytest.fixture
def api(tmp_path: Path) -> Iterator[LiveApi]:
    with live_api(dashboard_settings(tmp_path / "home", sample_seconds=0.5), dashboard_system) as server:
        yield server


def signed_in_page(chromium: object, api: LiveApi, problems: list[str]) -> object:
    page = chromium.new_page()  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: problems.append(f"page error {e}"))
    page.goto(f"{api.url}/dashboard")
    page.fill("#key", api.key)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{api.url}/dashboard")
    return page


def test_a_wrong_address_opens_an_error_page_in_the_layout(chromium: object, api: LiveApi) -> None:
    problems: list[str] = []
    page = signed_in_page(chromium, api, problems)
    reply = page.goto(f"{api.url}/dashboard/tasks/<nope>")  # type: ignore[attr-defined]
    assert reply.status == 404
    assert page.text_content("p.error") == "no task with id '<nope>' in the task store"  # type: ignore[attr-defined]
    page.wait_for_selector("#live.on")  # type: ignore[attr-defined]  # the layout's header and script
    page.click("text=Back to the task list")  # type: ignore[attr-defined]
    page.wait_for_url(f"{api.url}/dashboard/tasks")  # type: ignore[attr-defined]
    assert problems == []


def test_a_chart_follows_its_box_when_the_phone_turns(chromium: object, api: LiveApi) -> None:
    """Drawn once at the landscape width, the chart stayed 700 px wide in portrait: the page scrolled sideways."""
    problems: list[str] = []
    page = signed_in_page(chromium, api, problems)
    page.goto(f"{api.url}/dashboard/resources?window=15m")  # type: ignore[attr-defined]
    page.wait_for_selector("[data-chart] canvas")  # type: ignore[attr-defined]
    widths = []
    for viewport in (LANDSCAPE, PORTRAIT, LANDSCAPE):
        page.set_viewport_size(viewport)  # type: ignore[attr-defined]
        widths.append(page.wait_for_function(CHART_FITS, polling=50).json_value()["box"])  # type: ignore[attr-defined]
    assert widths[0] > widths[1] < widths[2] and widths[0] == widths[2], widths
    assert problems == []


def test_a_page_whose_session_ends_goes_to_the_login_form(chromium: object, api: LiveApi) -> None:
    """The live refresh asks for fragments with ``Accept: text/html``; redirected, it pasted the login page into the
    overview and stayed there."""
    problems: list[str] = []
    page = signed_in_page(chromium, api, problems)
    page.wait_for_selector("#live.on")  # type: ignore[attr-defined]
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {api.key}"}) as client:
        client.post("/api/tasks", json={"description": "say hello", "experts": ["general"]})  # a change to refresh
    page.context.clear_cookies()  # type: ignore[attr-defined]
    started = time.monotonic()
    page.wait_for_url(f"{api.url}/dashboard/login")  # type: ignore[attr-defined]
    assert time.monotonic() - started < 10
    assert page.query_selector("#key") is not None and page.query_selector("#overview") is None  # type: ignore[attr-defined]
    assert problems == []
