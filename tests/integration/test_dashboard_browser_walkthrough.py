"""A new user's dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright; no browser
download), on a phone-sized screen: a task whose text is hostile (markup, a script, a word longer than the screen is
wide) is run from the form; its text shows literally, nothing in it runs, and no page grows wider than the screen
(wide tables scroll in their own box). No page logs a script error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chromium import chromium_context
from dashboard_app import dashboard_settings, dashboard_system
from live_api import live_api

pytestmark = pytest.mark.slow

sync_api = pytest.importorskip("playwright.sync_api")

PHONE = {"width": 375, "height": 740}
HOSTILE = (
    '<img src=x onerror="document.title=\'pwned\'"></script><script>document.title="pwned"</script>'
    " [bold]not bold[/bold] {{ 7*7 }} " + "W" * 400
)
PAGES = ["", "/tasks", "/run", "/experts", "/routing", "/resources", "/alerts"]
PAGE_WIDTH = "() => [document.documentElement.scrollWidth, window.innerWidth]"
SCROLL_BOXES = """() => Array.from(document.querySelectorAll('.scroll')).map((box) => {
  const style = getComputedStyle(box);
  return { scrolls: style.overflowX === 'auto', right: box.getBoundingClientRect().right };
})"""


@pytest.fixture
def phone() -> Iterator[object]:
    with chromium_context(PHONE) as context:
        yield context


def test_hostile_task_text_on_a_phone_stays_text_and_inside_the_screen(phone: object, tmp_path: Path) -> None:
    problems: list[str] = []
    with live_api(dashboard_settings(tmp_path / "home"), dashboard_system) as api:
        page = phone.new_page()  # type: ignore[attr-defined]
        page.on("console", lambda m: problems.append(f"console {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error {e}"))
        page.on("dialog", lambda d: (problems.append(f"dialog {d.message}"), d.dismiss()))
        page.goto(f"{api.url}/dashboard")
        page.fill("#key", api.key)
        page.click("form button[type=submit]")
        page.wait_for_url(f"{api.url}/dashboard")

        page.goto(f"{api.url}/dashboard/run")
        page.fill("#description", HOSTILE)
        page.click("form.run button[type=submit]")
        page.wait_for_url("**/dashboard/tasks/*")
        page.wait_for_selector("#state.state-succeeded")
        assert page.text_content("p.description") == HOSTILE
        assert page.query_selector("main img, main script") is None
        assert "pwned" not in page.title()
        width, screen = page.evaluate(PAGE_WIDTH)
        assert width <= screen, f"the task's page is {width} px wide on a {screen} px screen"

        for path in PAGES:
            page.goto(f"{api.url}/dashboard{path}")
            page.wait_for_selector("#live.on")
            width, screen = page.evaluate(PAGE_WIDTH)
            assert width <= screen, f"/dashboard{path} is {width} px wide on a {screen} px screen"
            for box in page.evaluate(SCROLL_BOXES):
                assert box["scrolls"] and box["right"] <= screen, (path, box)
        assert "pwned" not in page.title()
    assert not problems, problems
