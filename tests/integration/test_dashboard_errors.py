"""The dashboard's errors against a real uvicorn server: a person's browser opening a page (GET or a form it submits,
``Accept: text/html``) gets an error page in the dashboard's layout — the status, a short message naming the problem
with the user's text escaped, a link back to the task list — where it got the service's raw JSON error; the
dashboard's JSON API, the fragments its script fetches and other clients keep the JSON error."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dashboard_app import dashboard_settings, dashboard_system
from live_api import LiveApi, live_api
from vy_nexus.errors import StoreError
from vy_nexus.interfaces.api.keys import keys_file
from vy_nexus.interfaces.api.services import ApiServices
from vy_nexus.tls import httpx_context

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"}
RATE_LIMIT = 2
BODY_LIMIT = 20_000


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    limits = {"rate_limit_per_minute": RATE_LIMIT, "max_body_bytes": BODY_LIMIT}
    home = tmp_path_factory.mktemp("dash-errors") / "home"
    with live_api(dashboard_settings(home, api=limits), dashboard_system) as server:
        yield server


@pytest.fixture
def browser(api: LiveApi) -> Iterator[httpx.Client]:
    """A signed-in browser: the session cookie, and the ``Accept`` header a browser sends when it opens a page."""
    with httpx.Client(base_url=api.url, verify=httpx_context(), timeout=10.0, headers=BROWSER) as client:
        assert client.post("/dashboard/login", data={"key": api.key}).status_code == 303
        yield client


@pytest.fixture
def services(api: LiveApi) -> ApiServices:
    shared = api.server.config.app.state.services
    assert isinstance(shared, ApiServices)
    return shared


def error_page(reply: httpx.Response, status: int) -> str:
    """The message of the error page ``reply`` is, after checking it is one: HTML in the layout, the status, the link
    back to the task list, no JSON body."""
    assert reply.status_code == status, reply.text[:300]
    assert reply.headers["content-type"].startswith("text/html")
    html = reply.text
    assert html.startswith("<!doctype html>") and f'data-status="{status}"' in html
    assert f"<h1>{status} " in html and '<a href="/dashboard/tasks">Back to the task list</a>' in html
    assert '"error":' not in html and "Traceback" not in html
    found = re.search(r'<p class="error" role="alert">(.*?)</p>', html, re.S)
    assert found is not None, html
    return found.group(1)


def test_a_wrong_task_id_shows_an_error_page_with_the_id_escaped(browser: httpx.Client) -> None:
    reply = browser.get("/dashboard/tasks/<img src=x onerror=alert(1)>")
    message = error_page(reply, 404)
    assert message == "no task with id &#39;&lt;img src=x onerror=alert(1)&gt;&#39; in the task store"
    assert "<img src=x" not in reply.text
    assert 'aria-current="page"' not in reply.text and "Sign out (tester)" in reply.text  # the signed-in layout


@pytest.mark.parametrize(
    ("path", "status", "problem"),
    [
        ("/dashboard/tasks?state=sleeping", 422, "unknown task state &#39;sleeping&#39;; choose one of queued"),
        ("/dashboard/tasks?offset=-1", 422, "offset: Input should be greater than or equal to 0"),
        ("/dashboard/tasks?offset=abc", 422, "offset: Input should be a valid integer"),
        ("/dashboard/tasks?expert=" + "e" * 200, 422, "expert: String should have at most 128 characters"),
        ("/dashboard/experts?window=2d", 422, "window: Input should be &#39;15m&#39;, &#39;1h&#39; or &#39;24h&#39;"),
        ("/dashboard/routing?window=", 422, "window: Input should be &#39;15m&#39;, &#39;1h&#39; or &#39;24h&#39;"),
        ("/dashboard/resources?window=1y", 422, "window: Input should be &#39;15m&#39;, &#39;1h&#39; or"),
        ("/dashboard/nope", 404, "There is no dashboard page at /dashboard/nope."),
        ("/dashboard/tasks/abc/def", 404, "There is no dashboard page at /dashboard/tasks/abc/def."),
        ("/dashboard/static/nope.js", 404, "There is no dashboard page at /dashboard/static/nope.js."),
        ("/dashboard/logout", 405, "/dashboard/logout cannot be opened with GET."),
    ],
)
def test_a_bad_address_shows_an_error_page_naming_the_problem(
    browser: httpx.Client, path: str, status: int, problem: str
) -> None:
    assert problem in error_page(browser.get(path), status)


def test_the_json_api_the_fragments_and_other_clients_keep_the_json_error(api: LiveApi, browser: httpx.Client) -> None:
    """The page's script reads a fragment's or a chart's status; programs read the one JSON shape."""
    for path, code in [
        ("/dashboard/api/tasks/nope", "task_not_found"),
        ("/dashboard/fragments/tasks?state=sleeping", "input"),
        ("/dashboard/api/series/tasks?window=2d", "invalid_request"),
        ("/dashboard/api/nope", "not_found"),
    ]:
        reply = browser.get(path)  # even with a browser's Accept header
        assert reply.headers["content-type"] == "application/json", path
        assert reply.json()["error"] == code and set(reply.json()) == {"error", "message", "details"}, path
    for accept in ("*/*", "application/json"):
        reply = browser.get("/dashboard/tasks/nope", headers={"Accept": accept})
        assert reply.status_code == 404 and reply.json()["error"] == "task_not_found"
    window = browser.get("/dashboard/experts?window=2d", headers={"Accept": "application/json"})
    assert window.json()["message"] == "query.window: Input should be '15m', '1h' or '24h'"
    outside = browser.get("/api/tasks/nope", headers={"Authorization": f"Bearer {api.new_key()}"})  # not /dashboard
    assert outside.status_code == 404 and outside.json()["error"] == "task_not_found"


def test_a_fragment_without_a_session_answers_401_not_the_login_page(api: LiveApi) -> None:
    """The page's script asks for fragments with ``Accept: text/html``: redirected to the login form (which fetch
    follows), it pasted the whole login page into the overview instead of going to sign in on a 401."""
    with httpx.Client(base_url=api.url, verify=httpx_context(), headers=BROWSER) as anonymous:
        for path in ("/dashboard/fragments/overview", "/dashboard/fragments/tasks", "/dashboard/api/overview"):
            reply = anonymous.get(path)
            assert reply.status_code == 401 and reply.json()["error"] == "unauthorized", path
        page = anonymous.get("/dashboard/tasks/nope")
        assert page.status_code == 303 and page.headers["location"] == "/dashboard/login"


def test_a_form_submitted_without_a_session_goes_to_the_login_form(api: LiveApi) -> None:
    with httpx.Client(base_url=api.url, verify=httpx_context(), headers=BROWSER) as anonymous:
        reply = anonymous.post("/dashboard/run", data={"description": "say hi"})
        assert reply.status_code == 303 and reply.headers["location"] == "/dashboard/login"
        cleared = anonymous.post("/dashboard/alerts/latency/clear")
        assert cleared.status_code == 303 and cleared.headers["location"] == "/dashboard/login"
    with httpx.Client(base_url=api.url, verify=httpx_context()) as program:
        assert program.post("/dashboard/run", data={"description": "say hi"}).status_code == 401


def test_an_unknown_page_without_a_session_shows_the_error_page_without_the_header(api: LiveApi) -> None:
    with httpx.Client(base_url=api.url, verify=httpx_context(), headers=BROWSER) as anonymous:
        reply = anonymous.get("/dashboard/nope")
    assert "There is no dashboard page" in error_page(reply, 404)
    assert "Sign out" not in reply.text and "dashboard.js" not in reply.text


def test_clearing_an_alert_that_is_gone_shows_an_error_page(browser: httpx.Client) -> None:
    """Two tabs: the alert was cleared in the other one; the browser got ``{"error": "alert_not_found", ...}``."""
    reply = browser.post("/dashboard/alerts/expert_failing:<gone>/clear")
    assert error_page(reply, 404) == "no alert &#39;expert_failing:&lt;gone&gt;&#39;"


def test_a_store_outage_shows_a_503_page_without_the_stores_path(
    browser: httpx.Client, services: ApiServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*_args: Any, **_kwargs: Any) -> Any:
        raise StoreError("cannot reach the task store at /srv/secret/tasks.db: disk I/O error")

    monkeypatch.setattr(services.system, "list_tasks", down)
    monkeypatch.setattr(services.system, "get_task", down)
    for path in ("/dashboard/tasks", "/dashboard/tasks/abc"):
        message = error_page(browser.get(path), 503)
        assert message == "cannot reach the task store at &lt;path&gt;: disk I/O error", path
    assert browser.get("/dashboard/api/tasks/abc").json()["error"] == "store"


def test_an_unexpected_error_shows_a_500_page_without_a_traceback(
    browser: httpx.Client, services: ApiServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("boom in /srv/secret/module.py")

    monkeypatch.setattr(services.system, "get_task", broken)
    reply = browser.get("/dashboard/tasks/abc")
    assert error_page(reply, 500) == (
        "Something went wrong on the server (an internal error); the server&#39;s log has the details."
    )
    assert "boom" not in reply.text and "/srv/secret" not in reply.text and "RuntimeError" not in reply.text


def test_an_upload_over_the_body_limit_shows_a_413_page(browser: httpx.Client) -> None:
    files = {"file": ("big.csv", b"x" * (BODY_LIMIT + 1), "text/csv")}
    reply = browser.post("/dashboard/run", data={"description": "sum this"}, files=files)
    assert f"is over the limit of {BODY_LIMIT} bytes" in error_page(reply, 413)
    program = browser.post("/dashboard/run", data={"description": "x"}, files=files, headers={"Accept": "*/*"})
    assert program.status_code == 413 and program.json()["error"] == "content_too_large"


def test_the_run_form_over_the_rate_limit_stays_on_the_form_with_what_was_typed(browser: httpx.Client) -> None:
    """It answered a raw JSON 429; now the form says so, keeps the text, and sends ``Retry-After`` like the API."""
    for _ in range(RATE_LIMIT):
        assert browser.post("/dashboard/run", data={"description": "say hi", "expert": "general"}).status_code == 303
    reply = browser.post("/dashboard/run", data={"description": "say <b>hi</b> again", "priority": "high"})
    assert reply.status_code == 429 and reply.headers["content-type"].startswith("text/html")
    assert int(reply.headers["retry-after"]) >= 1
    assert f"rate limit of {RATE_LIMIT} requests per minute exceeded" in reply.text and 'role="alert"' in reply.text
    assert "say &lt;b&gt;hi&lt;/b&gt; again</textarea>" in reply.text
    assert '<option value="high" selected>' in reply.text


def test_a_damaged_keys_file_shows_a_500_page_naming_it_without_its_path(api: LiveApi, browser: httpx.Client) -> None:
    """The error page looks the session up for its header; with the keys file damaged that lookup failed too, and
    the browser got the JSON body."""
    keys = api.server.config.app.state.services.keys
    path = keys_file(api.settings.home)
    good, interval = path.read_bytes(), keys.recheck_seconds
    try:
        path.write_text("{broken", encoding="utf-8")
        keys.recheck_seconds = 0.0  # read the file at the next request, not up to a second later
        reply = browser.get("/dashboard/tasks")
        assert error_page(reply, 500) == "&lt;path&gt; is corrupt (JSONDecodeError); fix or remove it"
        assert str(api.settings.home) not in reply.text and "Sign out" not in reply.text
    finally:
        path.write_bytes(good)
        keys.recheck_seconds = interval
    assert browser.get("/dashboard/tasks").status_code == 200
