"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright; no browser download): sign
in, the overview, a task submitted from the form, another whose output streams into its page while it runs, tasks
watched in the list until they finish, a "why", the time-series charts drawn with data on the overview, experts,
routing quality and resources pages, an alert raised by an expert failing repeatedly, acknowledged and cleared.
Screenshots go under the test's temp dir; their paths are printed. Also: the first paint of the task list with
10,000 tasks in the store (printed, not asserted)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboard_app import dashboard_settings, dashboard_system
from fakes.llm import ScriptedBackend
from live_api import LiveApi, live_api
from vy_nexus.config import Settings
from vy_nexus.store import SqlTaskStore, TaskState
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
TIMEOUT_MS = 20_000
FIRST_PAINT = """() => new Promise((resolve) => {
  new PerformanceObserver((list) => {
    const entry = list.getEntriesByName("first-contentful-paint")[0];
    if (entry) { resolve(entry.startTime); }
  }).observe({ type: "paint", buffered: true });
  setTimeout(() => resolve(null), 5000);
})"""

STORY = " ".join(f"river{i}" for i in range(40))
"""What the reasoning core answers in the browser story: 40 tokens 80 ms apart, so a task streams for ~3 s."""
LIVE_OUTPUT = """() => {
  const state = document.getElementById("state"), output = document.getElementById("output");
  return state.textContent === "running" && output.textContent.includes("river") ? output.textContent : false;
}"""
CHART_DRAWN = """(kind) => {
  const el = document.querySelector(`[data-chart="${kind}"]`);
  const canvas = el && el.querySelector("canvas");
  const points = Number((el && el.getAttribute("data-points")) || 0);
  if (!canvas || points < 1) { return false; }
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let coloured = 0;  // the grid, axes and labels are grey; only a series' line or point is coloured
  for (let i = 0; i < pixels.length; i += 4) {
    const r = pixels[i], g = pixels[i + 1], b = pixels[i + 2];
    if (pixels[i + 3] > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 60) { coloured++; }
  }
  const legend = Array.from(el.querySelectorAll(".u-legend .u-label")).map((label) => label.textContent);
  const x = el.uplot.scales.x, span = x.max - x.min;  // seconds the time axis shows
  return coloured > 0 ? { points, series: Number(el.getAttribute("data-series")), coloured, legend, span } : false;
}"""
CHARTS = {"": ["tasks"], "/experts": ["experts", "llm"], "/routing": ["routing"], "/resources": ["resources"]}

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[object]:
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is not installed: apt-get install -y chromium chromium-driver (.ci/run does)")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), args=ARGS, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


class Shots:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def take(self, page: object, name: str) -> None:
        path = self.directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        print(f"screenshot: {path}")


def sign_in(page: object, api: LiveApi) -> None:
    page.goto(f"{api.url}/dashboard")  # type: ignore[attr-defined]
    assert page.url.endswith("/dashboard/login")  # type: ignore[attr-defined]
    page.fill("#key", api.key)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(f"{api.url}/dashboard")  # type: ignore[attr-defined]


def story_system(settings: Settings) -> VyNexus:
    return dashboard_system(settings, llm=ScriptedBackend(STORY, delay=0.08))


def test_the_dashboard_in_a_browser(chromium: object, tmp_path: Path) -> None:
    shots = Shots(tmp_path / "screenshots")
    with live_api(dashboard_settings(tmp_path / "home", sample_seconds=0.5), story_system) as api:
        page = chromium.new_page()  # type: ignore[attr-defined]
        sign_in(page, api)
        assert api.key not in page.url
        page.wait_for_selector("#health")
        page.wait_for_selector("#live.on")  # the live stream is connected
        assert "healthy" in page.inner_text("#health").lower()
        shots.take(page, "1-overview")

        # Run a task from the form: the task's page opens and follows it to the end.
        page.click("text=Run a task")
        page.fill("#description", "total units by region in this csv")
        csv = tmp_path / "sales.csv"
        csv.write_text("region,units\nnorth,3\nsouth,4\nnorth,2\n", encoding="utf-8")
        page.set_input_files("#file", str(csv))
        page.click("form.run button[type=submit]")
        page.wait_for_url("**/dashboard/tasks/*")
        task_id = page.url.rsplit("/", 1)[1]
        page.wait_for_selector("#state.state-succeeded")
        # The answer in words, its rows as a table (before: the whole output as one JSON block).
        assert "sum(units)" in page.inner_text("#output") and "sum_units" in page.inner_text("#result")
        shots.take(page, "2-task-finished")

        # A task that thinks aloud: its page shows the tokens as they stream, before the task has finished.
        page.click("text=Run a task")
        page.fill("#description", "tell me about rivers")
        page.select_option("#expert", "general")
        page.click("form.run button[type=submit]")
        page.wait_for_url("**/dashboard/tasks/*")
        partial = page.wait_for_function(LIVE_OUTPUT, polling=50).json_value()
        assert 0 < len(partial) < len(STORY), "the output should be seen part-way"
        print(f"live output while running: {len(partial)} of {len(STORY)} characters")
        shots.take(page, "2b-task-streaming")
        page.wait_for_selector("#state.state-succeeded")
        assert "river39" in page.inner_text("#output")

        # The list, open: a task submitted meanwhile appears and finishes without a reload.
        page.goto(f"{api.url}/dashboard/tasks")
        page.wait_for_selector(f"tr[data-task='{task_id}'].state-succeeded")
        page.wait_for_selector("#live.on")
        with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {api.key}"}) as client:
            other = client.post("/api/tasks", json={"description": "write a haiku about routers"}).json()["id"]
        page.wait_for_selector(f"tr[data-task='{other}']")
        page.wait_for_selector(f"tr[data-task='{other}'].state-succeeded")
        shots.take(page, "3-task-list")

        # Its "why": candidates, the ruling, each expert's result, the journal lines.
        page.click(f"tr[data-task='{task_id}'] a")
        page.wait_for_selector("#candidates")
        assert "data-analysis" in page.inner_text("#candidates")
        assert "allowed" in page.inner_text("#ruling").lower() and "concurrency" in page.inner_text("#checks")
        deadline = time.monotonic() + 10
        while not page.query_selector("#journal"):
            assert time.monotonic() < deadline, "the task's journal lines never showed"
            page.reload()
        shots.take(page, "4-why")

        # The time-series charts: a uPlot canvas on each page, drawn from data (coloured series pixels).
        drawn: dict[str, dict[str, Any]] = {}
        for path, kinds in CHARTS.items():
            page.goto(f"{api.url}/dashboard{path}?window=15m" if path else f"{api.url}/dashboard")
            for kind in kinds:
                drawn[kind] = page.wait_for_function(CHART_DRAWN, arg=kind, polling=250).json_value()
                assert drawn[kind]["points"] >= 1 and drawn[kind]["series"] >= 1, (kind, drawn[kind])
                # The axis covers the window asked for (15 minutes, the overview's hour), not uPlot's 1,000 days
                # around a lone sample time.
                assert 0 < drawn[kind]["span"] <= 3600, (kind, drawn[kind])
                print(
                    f"chart {kind}: {drawn[kind]['points']} points, {drawn[kind]['series']} series,"
                    f" {drawn[kind]['span']:.0f} s on the time axis, legend {drawn[kind]['legend']}"
                )
            shots.take(page, f"chart-{kinds[0]}")
        assert {"out-of-scope rate", "fallback rate"} <= set(drawn["routing"]["legend"])
        assert "scripted/scripted-1 TTFT p50 ms" in drawn["llm"]["legend"]
        assert {"data-analysis", "general"} <= set(drawn["experts"]["legend"])

        # An expert failing repeatedly: the alert shows on the overview (live), then it is acknowledged and cleared.
        page.goto(f"{api.url}/dashboard")
        page.wait_for_selector("#live.on")
        with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {api.key}"}) as client:
            for _ in range(2):
                client.post("/api/tasks", json={"description": "crash now", "experts": ["crash"]})
        alert = page.wait_for_selector("[data-alert='expert_failing:crash']")
        assert alert is not None and "failed 2 times in a row" in alert.inner_text()
        assert "degraded" in page.inner_text("#health").lower()
        shots.take(page, "5-alert")
        page.click("text=Alerts")
        page.click("[data-alert='expert_failing:crash'] >> text=Acknowledge")
        page.wait_for_selector("[data-alert='expert_failing:crash'].acked")
        page.click("[data-alert='expert_failing:crash'] >> text=Clear")
        page.wait_for_selector("#no-alerts")
        shots.take(page, "6-alert-cleared")
        page.close()  # its live stream ends before the server stops


def fill_store(settings_home: Path, count: int) -> None:
    settings = dashboard_settings(settings_home)
    store = SqlTaskStore(settings.store_url)
    store.open()
    try:
        for index in range(count):
            task = Task(description=f"stored task number {index}")
            store.accept(task)
            store.finished(task.id, TaskState.SUCCEEDED)
            if index % 1000 == 999:
                store.flush()
        store.flush()
    finally:
        store.close()


def test_task_list_first_paint_with_10000_tasks(chromium: object, tmp_path: Path) -> None:
    home = tmp_path / "home"
    started = time.perf_counter()
    fill_store(home, 10_000)
    print(f"filled the store with 10,000 tasks in {time.perf_counter() - started:.1f} s")
    with live_api(dashboard_settings(home), dashboard_system) as api:
        page = chromium.new_page()  # type: ignore[attr-defined]
        sign_in(page, api)
        page.goto(f"{api.url}/dashboard/tasks")
        paint = page.evaluate(FIRST_PAINT)
        navigation = page.evaluate("() => performance.getEntriesByType('navigation')[0].responseEnd")
        assert "10000 tasks" in page.inner_text("p.count")
        shown = f"{paint:.0f} ms" if paint is not None else "not reported"
        print(f"task list with 10,000 tasks: first contentful paint {shown}, response end {navigation:.0f} ms")
        Shots(tmp_path / "screenshots").take(page, "10000-tasks")
        page.close()
