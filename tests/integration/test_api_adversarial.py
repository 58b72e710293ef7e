"""The REST API, the OpenAI door and the dashboard against a real uvicorn server, fed what a careless or hostile
client sends: bodies without a JSON content type or without a body, non-finite time filters, the task body on the
routing preview, a broken keys file, dashboard requests without a session or past the last page."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest

from fakes.llm import ScriptedBackend
from live_api import LiveApi, api_settings, live_api
from vy_nexus.config import Settings
from vy_nexus.interfaces.api.keys import keys_file
from vy_nexus.system import VyNexus
from vy_nexus.tls import httpx_context

TASK = b'{"description": "count the words in this sentence"}'
CHAT = b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}'


def scripted_system(settings: Settings) -> VyNexus:
    return VyNexus(settings, llm=ScriptedBackend("an answer", delay=0.0), load_plugins=False)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    with live_api(api_settings(tmp_path_factory.mktemp("adversarial") / "home"), scripted_system) as server:
        yield server


@pytest.fixture
def client(api: LiveApi) -> Iterator[httpx.Client]:
    with api.client() as http:
        yield http


@pytest.fixture
def browser(api: LiveApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, verify=httpx_context(), timeout=10.0) as signed_in:
        assert signed_in.post("/dashboard/login", data={"key": api.key}).status_code == 303
        yield signed_in


# -- bodies -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "sent"),
    [
        ({}, "it was sent without a Content-Type"),
        ({"Content-Type": "text/plain"}, "it was sent as 'text/plain'"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, "it was sent as 'application/x-www-form-urlencoded'"),
    ],
)
def test_a_json_body_without_a_json_content_type_is_a_415_naming_the_header(
    client: httpx.Client, headers: dict[str, str], sent: str
) -> None:
    """A valid JSON object was refused with "body: Input should be a valid dictionary or object": FastAPI reads a
    body as JSON only when the Content-Type says so, and the message blamed the body instead of the header."""
    before = client.get("/api/tasks").json()["total"]
    reply = client.post("/api/tasks", content=TASK, headers=headers)
    assert reply.status_code == 415
    assert reply.json() == {
        "error": "unsupported_media_type",
        "message": f"the request body must be JSON sent with Content-Type: application/json ({sent})",
        "details": {},
    }
    assert client.get("/api/tasks").json()["total"] == before
    chat = client.post("/v1/chat/completions", content=CHAT, headers=headers)
    assert chat.status_code == 415
    assert chat.json()["error"]["type"] == "invalid_request_error"
    assert chat.json()["error"]["code"] == "unsupported_media_type"
    assert "Content-Type: application/json" in chat.json()["error"]["message"]


def test_a_json_content_type_with_parameters_or_a_suffix_is_still_json(client: httpx.Client) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        reply = client.post("/api/tasks", content=TASK, headers={"Content-Type": content_type})
        assert reply.status_code == 202, reply.text


def test_an_empty_body_is_named_as_empty(client: httpx.Client) -> None:
    """It said "body: Field required"."""
    reply = client.post("/api/tasks", content=b"", headers={"Content-Type": "application/json"})
    assert reply.status_code == 422
    assert reply.json()["message"] == "the request body is empty: send a JSON object"


# -- query parameters -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/tasks", {"since": "nan"}),
        ("/api/tasks", {"until": "inf"}),
        ("/api/tasks", {"since": "1e400"}),
        ("/api/metrics/report", {"since": "inf"}),
        ("/api/metrics/report", {"since": "NaN"}),
    ],
)
def test_a_time_filter_that_is_not_a_finite_number_is_a_422(
    client: httpx.Client, path: str, query: dict[str, str]
) -> None:
    """``since=nan`` answered an empty list (and the report an empty report claiming ``"since": null``): a filter
    that matches nothing looked like a store with nothing in it."""
    reply = client.get(path, params=query)
    assert reply.status_code == 422
    name = next(iter(query))
    assert reply.json()["message"] == f"query.{name}: Input should be a finite number"


# -- the routing preview ----------------------------------------------------------------------------------------------


def test_route_takes_the_same_body_as_a_submit(client: httpx.Client) -> None:
    """docs/service.md: "POST /api/route takes the same fields". ``experts`` and ``aggregation`` were a 422
    ("Extra inputs are not permitted"), so a body could not be previewed before it was submitted."""
    body = {"description": "count the words in this sentence", "experts": ["writing"], "aggregation": "single"}
    preview = client.post("/api/route", json=body)
    assert preview.status_code == 200, preview.text
    assert preview.json()["expert_ids"] == ["writing"]
    assert preview.json()["strategy"] == "explicit"
    unknown = client.post("/api/route", json={**body, "experts": ["nosuch"]})
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_expert"
    assert client.post("/api/route", json={**body, "aggregation": "loudest"}).status_code == 422


# -- keys -------------------------------------------------------------------------------------------------------------


def test_a_corrupt_keys_file_refuses_every_keyed_request_until_it_is_fixed(api: LiveApi, client: httpx.Client) -> None:
    """The key store kept the keys it read before: one request a second got a 500, the others went through."""
    path = keys_file(api.settings.home)
    good = path.read_bytes()
    # The server notices the change at its next look at the file (up to RECHECK_SECONDS = 1 s later): it looks every
    # 0.02 s until then; the requests after the first 500 are made with the interval of 1 s again.
    keys = api.server.config.app.state.services.keys
    interval = keys.recheck_seconds
    try:
        path.write_text("{broken", encoding="utf-8")
        keys.recheck_seconds = 0.02
        deadline = time.monotonic() + 5
        while client.get("/api/status").status_code != 500:
            assert time.monotonic() < deadline, "the corrupt keys file was never noticed"
            time.sleep(0.02)
        keys.recheck_seconds = interval
        codes = [client.get("/api/status").status_code for _ in range(5)]
        assert codes == [500] * 5
        assert client.get("/api/status").json()["message"] == "<path> is corrupt (JSONDecodeError); fix or remove it"
    finally:
        keys.recheck_seconds = interval
        path.write_bytes(good)
    assert client.get("/api/status").status_code == 200


# -- the dashboard ----------------------------------------------------------------------------------------------------


def test_the_dashboards_401_has_the_one_error_shape(api: LiveApi) -> None:
    with httpx.Client(base_url=api.url, verify=httpx_context()) as anonymous:
        reply = anonymous.get("/dashboard/api/overview")
        assert reply.status_code == 401
        assert reply.json() == {"error": "unauthorized", "message": "sign in at /dashboard/login", "details": {}}


def test_an_over_long_key_on_the_login_form_is_refused_on_the_form(api: LiveApi) -> None:
    """A key longer than 256 characters got FastAPI's JSON 422 in the browser instead of the login page."""
    with httpx.Client(base_url=api.url, verify=httpx_context()) as anonymous:
        reply = anonymous.post("/dashboard/login", data={"key": api.key * 10})
        assert reply.status_code == 401
        assert reply.headers["content-type"].startswith("text/html")
        assert "That key is not a valid API key" in reply.text
        assert "vy_nexus_session" not in reply.headers.get("set-cookie", "")


def test_the_task_list_past_its_last_page_says_so_and_links_to_the_last_page(
    client: httpx.Client, browser: httpx.Client
) -> None:
    """It said "N tasks, showing 51–50" and linked "← newer" to another empty page (offset 25)."""
    assert client.post("/api/tasks", json={"description": "count the words in this sentence"}).status_code == 202
    total = client.get("/api/tasks").json()["total"]
    assert 0 < total <= 25
    fragment = browser.get("/dashboard/fragments/tasks", params={"offset": 50})
    assert fragment.status_code == 200
    count = re.search(r'<p class="count">(.*?)</p>', fragment.text)
    assert count is not None
    assert count.group(1) == f"{total} task{'' if total == 1 else 's'}, none from 51 on"
    assert 'offset=0">← newer' in fragment.text
    first = browser.get("/dashboard/fragments/tasks", params={"offset": 0})
    assert f"showing 1–{total}</p>" in first.text and "← newer" not in first.text
