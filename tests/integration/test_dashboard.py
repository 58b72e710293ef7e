"""The web dashboard against a real uvicorn server: sign-in (cookie, never the URL), the overview, the task list and a
task's "why", the run form, alerts raised by a failing expert (acknowledge, clear), the chart data, the live stream."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from dashboard_app import dashboard_settings, dashboard_system
from live_api import LiveApi, live_api
from vy_nexus.tls import httpx_context

CSV = b"region,units\nnorth,3\nsouth,4\nnorth,2\n"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    with live_api(dashboard_settings(tmp_path_factory.mktemp("dash") / "home"), dashboard_system) as server:
        yield server


@pytest.fixture
def browser(api: LiveApi) -> Iterator[httpx.Client]:
    """A signed-in client: it holds the session cookie, as a browser would."""
    with httpx.Client(base_url=api.url, verify=httpx_context(), timeout=10.0) as client:
        reply = client.post("/dashboard/login", data={"key": api.key})
        assert reply.status_code == 303
        yield client


def submit(client: httpx.Client, description: str, **fields: Any) -> str:
    files = fields.pop("files", None)
    reply = client.post("/dashboard/run", data={"description": description, **fields}, files=files)
    assert reply.status_code == 303, reply.text
    location: str = reply.headers["location"]
    return location.rsplit("/", 1)[1]


def wait_task(client: httpx.Client, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found: dict[str, Any] = client.get(f"/dashboard/api/tasks/{task_id}").json()
        if found["task"]["state"] not in ("queued", "running"):
            return found
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish")


def test_pages_need_a_session_and_send_people_to_the_login_form(api: LiveApi) -> None:
    with httpx.Client(base_url=api.url, verify=httpx_context()) as anonymous:
        page = anonymous.get("/dashboard", headers={"Accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"] == "/dashboard/login"
        assert anonymous.get("/dashboard/api/overview").status_code == 401
        assert anonymous.get("/dashboard/login").status_code == 200
        # An API key in a header is not a session: the dashboard only reads its cookie.
        assert anonymous.get("/dashboard/api/overview", headers={"X-API-Key": api.key}).status_code == 401


def test_a_wrong_key_is_refused_and_a_right_one_lands_in_an_httponly_samesite_cookie(api: LiveApi) -> None:
    with httpx.Client(base_url=api.url, verify=httpx_context()) as client:
        wrong = client.post("/dashboard/login", data={"key": "vyn_nope"})
        assert wrong.status_code == 401 and "not a valid API key" in wrong.text
        right = client.post("/dashboard/login", data={"key": api.key})
        assert right.status_code == 303 and right.headers["location"] == "/dashboard"
        cookie = right.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
        assert api.key not in right.headers["location"]
        assert client.get("/dashboard").status_code == 200
        out = client.post("/dashboard/logout")
        assert out.status_code == 303
        assert client.get("/dashboard/api/overview").status_code == 401


@pytest.mark.slow  # waits out the key store's one-second recheck
def test_a_revoked_key_ends_its_session_within_a_second(api: LiveApi) -> None:
    from vy_nexus.interfaces.api.keys import RECHECK_SECONDS, KeyStore, keys_file

    store = KeyStore(keys_file(api.settings.home))
    created = store.create("short-lived")
    with httpx.Client(base_url=api.url, verify=httpx_context()) as client:
        client.post("/dashboard/login", data={"key": created.secret})
        assert client.get("/dashboard/api/overview").status_code == 200
        store.revoke(created.record.id)
        revoked_at = time.monotonic()
        while (status := client.get("/dashboard/api/overview").status_code) == 200:
            assert time.monotonic() - revoked_at < RECHECK_SECONDS + 1.0, "the session outlived its key"
            time.sleep(0.05)
        assert status == 401


def test_the_overview_shows_health_uptime_rates_queue_kill_switch_and_approvals(browser: httpx.Client) -> None:
    page = browser.get("/dashboard")
    assert page.status_code == 200
    for label in ("Uptime", "Tasks/s", "Error rate", "Queue depth", "p50 latency", "p95 latency", "Kill switch"):
        assert label in page.text
    assert "Pending approvals" in page.text
    data = browser.get("/dashboard/api/overview").json()
    assert data["health"]["status"] in ("healthy", "degraded", "critical") and data["health"]["reason"]
    assert data["kill_switch"] == {"engaged": False, "reason": None}
    assert data["uptime_seconds"] >= 0 and data["pending_approvals"] == 0
    fragment = browser.get("/dashboard/fragments/overview")
    assert fragment.status_code == 200 and "<html" not in fragment.text and 'id="health"' in fragment.text


def test_a_task_run_from_the_form_shows_its_why(browser: httpx.Client) -> None:
    task_id = submit(browser, "total units by region in this csv", files={"file": ("sales.csv", CSV, "text/csv")})
    found = wait_task(browser, task_id)
    assert found["task"]["state"] == "succeeded"
    why = found["why"]
    assert why["candidates"] and why["candidates"][0]["chosen"] is True
    assert why["decision"]["reason"] and why["ruling"]["verdict"] == "allowed" and why["ruling"]["policy"] == "all"
    rules = {check["policy"]: check for check in why["ruling"]["checks"]}
    assert {"concurrency", "duration", "routing_confidence", "retries", "house_rule"} <= set(rules)
    assert all(check["verdict"] == "allowed" for check in rules.values())
    assert "may run for at most" in rules["duration"]["reason"]
    assert why["results"][0]["expert_id"] == "data-analysis" and why["results"][0]["retries"] == 0
    deadline = time.monotonic() + 5
    while not browser.get(f"/dashboard/api/tasks/{task_id}").json()["why"]["journal"]:
        assert time.monotonic() < deadline, "the task's journal lines never showed"
        time.sleep(0.05)
    page = browser.get(f"/dashboard/tasks/{task_id}")
    assert page.status_code == 200
    for part in ('id="candidates"', "Governance ruling", "Experts' results", 'id="journal"', "sum_units"):
        assert part in page.text
    assert 'class="ruling verdict-allowed"' in page.text and "every rule allowed it" in page.text
    assert '<table class="checks"' in page.text and "<code>concurrency</code>" in page.text
    assert '"verdict":' not in page.text  # the ruling is laid out, not dumped as JSON
    listing = browser.get("/dashboard/tasks")
    assert task_id in listing.text and "succeeded" in listing.text
    filtered = browser.get("/dashboard/fragments/tasks", params={"state": "failed", "expert": ""})
    assert filtered.status_code == 200 and task_id not in filtered.text
    assert task_id in browser.get("/dashboard/fragments/tasks", params={"state": "", "expert": ""}).text
    wrong = browser.get("/dashboard/tasks", params={"state": "sleeping"})
    assert wrong.status_code == 422 and "unknown task state 'sleeping'" in wrong.json()["message"]


def test_a_refused_task_shows_the_rule_and_its_reason_with_the_users_text_escaped(browser: httpx.Client) -> None:
    hostile = "<img src=x onerror=alert(1)> forbidden & more"
    task_id = submit(browser, hostile)
    found = wait_task(browser, task_id)
    assert found["task"]["state"] == "failed" and "house_rule" in found["task"]["error"]
    ruling = found["why"]["ruling"]
    assert ruling["verdict"] == "denied" and ruling["policy"] == "house_rule" and hostile in ruling["reason"]
    assert ruling["checks"][-1]["policy"] == "house_rule"  # the rules asked, up to the one that decided
    page = browser.get(f"/dashboard/tasks/{task_id}").text
    assert 'class="ruling verdict-denied"' in page and '<code class="rule">house_rule</code>' in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt; forbidden &amp; more" in page


def test_a_task_refused_on_the_server_exits_like_a_local_refusal(api: LiveApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stored ruling says "denied", so ``run --server`` exits with governance's code (3)."""
    from typer.testing import CliRunner

    from vy_nexus.interfaces.cli import app

    monkeypatch.setenv("VY_NEXUS_API_KEY", api.key)
    result = CliRunner().invoke(app, ["--server", api.url, "run", "do the forbidden thing"])
    assert result.exit_code == 3, result.output
    assert "house_rule" in result.output


def test_the_form_takes_an_expert_choice_and_a_number_of_experts(browser: httpx.Client) -> None:
    chosen = submit(browser, "write a haiku about routers", expert="writing")
    assert wait_task(browser, chosen)["task"]["experts"] == ["writing"]
    several = submit(browser, "review this python code for a bug", top_k="2")
    assert set(wait_task(browser, several)["task"]["experts"]) == {"code", "second-opinion"}


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"description": ""}, "description"),
        ({"description": "x", "top_k": "many"}, "whole number"),
        ({"description": "x", "top_k": "99"}, "top_k"),
        ({"description": "x", "expert": "nobody"}, "nobody"),
        ({"description": "x", "priority": "urgent"}, "priority"),
        ({"description": "x", "context": "[1]"}, "the task context must be a JSON object, not a list"),
        ({"description": "x", "context": "{bad"}, "the task context is not valid JSON"),
        ({"description": "x", "deadline": "soon"}, "cannot read the deadline"),
        ({"description": "x", "deadline": "2001-01-01T00:00"}, "has passed already"),
    ],
)
def test_the_form_names_what_is_wrong(browser: httpx.Client, fields: dict[str, str], problem: str) -> None:
    reply = browser.post("/dashboard/run", data=fields)
    assert reply.status_code == 422
    assert problem in reply.text and 'role="alert"' in reply.text


def test_the_form_sends_a_priority_and_a_context(browser: httpx.Client) -> None:
    form = browser.get("/dashboard/run").text
    assert '<option value="medium" selected>' in form and 'name="context"' in form
    context = '{"tone": "<b>dry</b>"}'
    task_id = submit(browser, "say hello", expert="general", priority="high", context=context, deadline="10m")
    record = wait_task(browser, task_id)["task"]
    assert record["state"] == "succeeded", record["error"]
    assert record["task"]["priority"] == "high"
    assert record["task"]["context"] == {"tone": "<b>dry</b>", "experts": ["general"]}
    page = browser.get(f"/dashboard/tasks/{task_id}").text
    deadline = record["task"]["deadline"]
    shown = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(datetime.fromisoformat(deadline).timestamp()))
    # As the page prints every time (local, to the second), the exact ISO time on hover; before, the raw ISO text.
    assert '<span id="priority">high</span>' in page
    assert f'<span id="deadline" title="{deadline}">{shown}</span>' in page
    assert (
        '<code id="context">{&#34;tone&#34;: &#34;&lt;b&gt;dry&lt;/b&gt;&#34;, &#34;experts&#34;: [&#34;general&#34;]}'
        in page
    )
    typed = {"description": "x", "context": '{"tone": "<b>dry</b>"', "priority": "low"}  # the JSON is cut short
    refused = browser.post("/dashboard/run", data=typed)
    assert '<option value="low" selected>' in refused.text  # what was typed stays, escaped
    assert "{&#34;tone&#34;: &#34;&lt;b&gt;dry&lt;/b&gt;&#34;" in refused.text


def test_an_expert_failing_repeatedly_raises_one_alert_that_can_be_acknowledged_and_cleared(
    browser: httpx.Client,
) -> None:
    for _ in range(2):
        wait_task(browser, submit(browser, "crash now", expert="crash"))
    deadline = time.monotonic() + 10
    while True:
        overview = browser.get("/dashboard/api/overview").json()
        keys = [alert["key"] for alert in overview["alerts"]]
        if "expert_failing:crash" in keys:
            break
        assert time.monotonic() < deadline, overview
        time.sleep(0.1)
    assert keys.count("expert_failing:crash") == 1  # deduplicated: evaluated many times, one alert
    assert overview["health"]["status"] == "degraded" and "crash" in overview["health"]["reason"]
    assert "expert crash failed 2 times" in browser.get("/dashboard").text
    acked = browser.post("/dashboard/alerts/expert_failing:crash/acknowledge")
    assert acked.status_code == 303
    after_ack = browser.get("/dashboard/api/overview").json()
    assert after_ack["alerts"][0]["acknowledged"] is True and after_ack["health"]["status"] == "healthy"
    assert browser.post("/dashboard/alerts/expert_failing:crash/clear").status_code == 303
    assert all(
        alert["key"] != "expert_failing:crash" for alert in browser.get("/dashboard/api/overview").json()["alerts"]
    )
    missing = browser.post("/dashboard/alerts/expert_failing:crash/clear")
    assert missing.status_code == 404 and "no alert" in missing.json()["message"]


def test_chart_data_and_the_sections_render(browser: httpx.Client) -> None:
    submit(browser, "total units by region", files={"file": ("sales.csv", CSV, "text/csv")})
    deadline = time.monotonic() + 10  # the metrics are written in batches, off the request path
    while True:
        routing = browser.get("/dashboard/api/routing", params={"window": "15m"}).json()
        # The summary and the series are two reads: a batch written between them shows in one only.
        if (routing["summary"]["decisions"] >= 1 and routing["series"]["t"]) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert routing["summary"]["decisions"] >= 1 and len(routing["series"]["t"]) >= 1
    assert set(routing["series"]) == {
        "t",
        "decisions",
        "fallback_rate",
        "out_of_scope_rate",
        "cache_hit_rate",
        "p50_ms",
    }
    tasks = browser.get("/dashboard/api/series/tasks", params={"window": "15m"}).json()["series"]
    assert sum(tasks["tasks"]) >= 1 and set(tasks) == {"t", "tasks", "error_rate", "p50_ms", "p95_ms"}
    experts_series = browser.get("/dashboard/api/series/experts", params={"window": "15m"}).json()
    assert "data-analysis" in experts_series["experts"]
    assert all(len(line) == len(experts_series["t"]) for line in experts_series["experts"].values())
    assert browser.get("/dashboard/api/series/experts", params={"window": "2d"}).status_code == 422
    resources = browser.get("/dashboard/api/resources").json()
    assert set(resources["series"]) == {"t", "cpu_percent", "memory_percent", "disk_percent", "rss_bytes"}
    assert browser.get("/dashboard/api/resources", params={"window": "1y"}).status_code == 422
    experts = browser.get("/dashboard/experts", params={"window": "15m"})
    assert experts.status_code == 200 and "data-analysis" in experts.text
    for chart in ('data-chart="experts"', 'data-chart="llm"'):
        assert chart in experts.text
    assert 'data-chart="tasks"' in browser.get("/dashboard").text
    for path in ("/dashboard/routing", "/dashboard/resources", "/dashboard/alerts", "/dashboard/run"):
        assert browser.get(path).status_code == 200, path
    script = browser.get("/dashboard/static/vendor/uplot/uPlot.iife.min.js")
    assert script.status_code == 200 and "uPlot" in script.text


def test_the_experts_page_shows_each_llm_backends_time_to_first_token(browser: httpx.Client) -> None:
    """The writing expert thinks with the scripted backend (tokens 10 ms apart): its first token's wait is shown."""
    wait_task(browser, submit(browser, "write a short poem about rivers", expert="writing"))
    deadline = time.monotonic() + 30  # metrics land within a flush interval; a busy machine stretches it
    while True:
        page = browser.get("/dashboard/experts", params={"window": "15m"}).text
        row = page.split('data-backend="scripted/scripted-1"', 1)[-1].split("</tr>", 1)[0]
        if 'data-backend="scripted/scripted-1"' in page and 'class="ttft">—' not in row:
            break
        assert time.monotonic() < deadline, "no time to first token for the scripted backend"
        time.sleep(0.1)
    assert "time to first token (p50)" in page
    shown = row.split('class="ttft">', 1)[1].split("<", 1)[0]
    # The first token comes after one 10 ms sleep; the loop's timer may fire a fraction of a millisecond early.
    assert shown.endswith(" ms") and float(shown.split()[0]) >= 9.0, shown


def test_out_of_scope_is_counted_apart_from_the_fallback(browser: httpx.Client) -> None:
    """Nothing any expert knows matches "qwzx vlorp": the fallback expert takes it and it is out of scope."""
    task_id = submit(browser, "qwzx vlorp")
    decision = wait_task(browser, task_id)["why"]["decision"]
    assert decision["fallback"] is True and decision["out_of_scope"] is True
    assert 'id="out-of-scope"' in browser.get(f"/dashboard/tasks/{task_id}").text
    deadline = time.monotonic() + 10
    while True:
        summary = browser.get("/dashboard/api/routing", params={"window": "15m"}).json()["summary"]
        if summary["out_of_scope_rate"]:
            break
        assert time.monotonic() < deadline, summary
        time.sleep(0.1)
    assert 0 < summary["out_of_scope_rate"] <= summary["fallback_rate"] <= 1


def test_the_live_stream_sends_the_overview(browser: httpx.Client) -> None:
    with browser.stream("GET", "/dashboard/api/live") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "event: overview"
        data = json.loads(next(lines).split(":", 1)[1])
    assert "health" in data and "tasks" in data


def test_pages_are_self_contained(browser: httpx.Client) -> None:
    """Nothing is loaded from another origin: every script and style is served by the dashboard itself."""
    import re

    for path in ("/dashboard", "/dashboard/routing", "/dashboard/login"):
        html = browser.get(path).text
        for url in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert url.startswith(("/dashboard", "?", "data:")), url
