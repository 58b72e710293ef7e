"""Answers a client can rely on, against a real uvicorn server: the OpenAI-compatible door driven by the official
``openai`` client (a parameter it cannot honour is a 400 naming it; every message reaches the task), the approvals
API's statuses (404 unknown, 409 decided already), the dashboard's run form answering a refusal with the API's
status, and the error shape the OpenAPI schema documents."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from fakes.llm import ScriptedBackend
from live_api import LiveApi, api_settings, live_api
from spine_experts import SlowExpert
from vy_nexus.config import Settings, load_settings
from vy_nexus.execution.governance import governance_dir
from vy_nexus.interfaces.api.schemas import ErrorBody, OpenAIErrorBody
from vy_nexus.system import VyNexus
from vy_nexus.tls import httpx_context, openai_context

REPLY = "the scripted answer"
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def scripted_system(settings: Settings) -> VyNexus:
    system = VyNexus(settings, llm=ScriptedBackend(REPLY, delay=0.0), load_plugins=False)
    system.register(SlowExpert(), source="test")
    return system


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    with live_api(api_settings(tmp_path_factory.mktemp("contract") / "home"), scripted_system) as server:
        yield server


@pytest.fixture
def http(api: LiveApi) -> Iterator[httpx.Client]:
    with api.client() as client:
        yield client


@pytest.fixture
def door(api: LiveApi) -> Iterator[openai.OpenAI]:
    http_client = openai.DefaultHttpxClient(verify=openai_context())
    with openai.OpenAI(base_url=f"{api.url}/v1", api_key=api.key, max_retries=0, http_client=http_client) as client:
        yield client


def ask(door: openai.OpenAI, **fields: Any) -> Any:
    fields.setdefault("messages", [{"role": "user", "content": "say hello"}])
    return door.chat.completions.create(model=fields.pop("model", "general"), **fields)


def task_count(http: httpx.Client) -> int:
    total: int = http.get("/api/tasks").json()["total"]
    return total


# -- the OpenAI-compatible door ---------------------------------------------------------------------------------------

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"n": 2}, "n", "unsupported_value"),
        ({"tools": [TOOL]}, "tools", "unsupported_parameter"),
        ({"functions": [TOOL["function"]]}, "functions", "unsupported_parameter"),
        ({"tool_choice": "required"}, "tool_choice", "unsupported_value"),
        ({"response_format": {"type": "json_object"}}, "response_format", "unsupported_value"),
        ({"logprobs": True}, "logprobs", "unsupported_value"),
        ({"top_logprobs": 3}, "top_logprobs", "unsupported_value"),
        ({"stop": ["\n"]}, "stop", "unsupported_parameter"),
        ({"modalities": ["text", "audio"]}, "modalities", "unsupported_value"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio", "unsupported_parameter"),
        ({"web_search_options": {}}, "web_search_options", "unsupported_parameter"),
    ],
)
def test_the_door_refuses_what_it_cannot_honour_with_a_400_naming_the_parameter(
    door: openai.OpenAI, http: httpx.Client, fields: dict[str, Any], param: str, code: str
) -> None:
    """They were accepted and silently ignored: ``n=2`` got one choice, ``tools`` never a tool call, a JSON
    ``response_format`` prose."""
    before = task_count(http)
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as caught:
            ask(door, stream=stream, **fields)
        assert (caught.value.param, caught.value.code) == (param, code)
        assert caught.value.type == "invalid_request_error" and param in caught.value.message
    assert task_count(http) == before  # refused before anything ran


def test_what_the_door_can_honour_is_accepted(door: openai.OpenAI) -> None:
    reply = ask(
        door,
        n=1,
        tools=[],
        tool_choice="none",
        response_format={"type": "text"},
        logprobs=False,
        top_logprobs=0,
        modalities=["text"],
        temperature=0.2,
        seed=7,
        user="someone",
    )
    assert reply.choices[0].message.content == REPLY


def test_every_message_reaches_the_task_in_order(door: openai.OpenAI, http: httpx.Client) -> None:
    """Messages after the last user message (a prefill, a tool result, a trailing system message) were dropped."""
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    messages: list[Any] = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "looked up"},
        {"role": "user", "content": [{"type": "text", "text": "the question"}], "name": "ann"},
        {"role": "assistant", "content": "Sure:"},
        {"role": "developer", "content": "answer in French"},
    ]
    reply = ask(door, messages=messages)
    task = http.get(f"/api/tasks/{(reply.model_extra or {})['vy_nexus']['task_id']}").json()["task"]
    assert task["description"] == "the question"
    assert task["context"]["conversation"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": "looked up", "tool_call_id": "call_1"},
    ]
    assert task["context"]["conversation_after"] == [
        {"role": "assistant", "content": "Sure:"},
        {"role": "developer", "content": "answer in French"},
    ]


def test_a_task_message_with_parts_it_cannot_read_is_refused(door: openai.OpenAI) -> None:
    """Its text was answered and the image silently left out."""
    image = {"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/cat.png"}}
    question: list[Any] = [{"type": "text", "text": "what is in this picture?"}, image]
    with pytest.raises(openai.BadRequestError) as caught:
        ask(door, messages=[{"role": "system", "content": "hi"}, {"role": "user", "content": question}])
    assert (caught.value.param, caught.value.code) == ("messages[1].content", "unsupported_value")
    assert "the last user message has image_url parts: vy-nexus reads text only" in caught.value.message
    earlier: list[Any] = [{"type": "text", "text": "an earlier picture"}, image]
    history = [{"role": "user", "content": earlier}, {"role": "user", "content": "say hello"}]
    assert ask(door, messages=history).choices[0].message.content == REPLY  # context keeps the text


def test_a_task_message_longer_than_a_task_is_refused_not_cut(door: openai.OpenAI) -> None:
    """It was cut at 100,000 characters without a word."""
    with pytest.raises(openai.BadRequestError) as caught:
        ask(door, messages=[{"role": "user", "content": "x" * 100_001}])
    assert (caught.value.param, caught.value.code) == ("messages[0].content", "invalid_value")
    assert "100001 characters long; a task takes at most 100000" in caught.value.message


def test_a_request_that_does_not_validate_is_a_400_naming_the_parameter(door: openai.OpenAI) -> None:
    """It was a 422 (OpenAI never answers one) with ``param`` null and the location ``body.messages.0.role``."""
    with pytest.raises(openai.BadRequestError) as caught:
        ask(door, messages=[{"role": "robot", "content": "hi"}])
    assert caught.value.param == "messages[0].role"
    assert "400 - messages[0].role: Input should be 'system'" in caught.value.message
    with pytest.raises(openai.BadRequestError) as zero:
        ask(door, max_completion_tokens=0)
    assert zero.value.param == "max_completion_tokens"


@pytest.mark.parametrize("path", ["/api/tasks", "/v1/chat/completions"])
def test_a_body_that_is_not_json_is_a_400_naming_the_problem(http: httpx.Client, path: str) -> None:
    """It was a 422 saying ``body.9: JSON decode error``, while a body that is not UTF-8 was already a 400."""
    reply = http.post(path, content=b'{"model": nope}', headers={"Content-Type": "application/json"})
    assert reply.status_code == 400
    body = reply.json()
    message = body["error"]["message"] if path.startswith("/v1") else body["message"]
    assert message == "the request body is not valid JSON: Expecting value (at character 10)"


# -- approvals --------------------------------------------------------------------------------------------------------


def file_request(http: httpx.Client, expert: str) -> str:
    refused = http.delete(f"/api/experts/{expert}")
    assert refused.status_code == 403 and refused.json()["details"]["verdict"] == "needs_approval"
    approval_id: str = refused.json()["details"]["approval_id"]
    return approval_id


def test_an_unknown_approval_is_a_404_to_read_approve_or_deny(http: httpx.Client) -> None:
    """Approving or denying an id that names no request was a 403, as if governance had refused the decision."""
    for reply in (
        http.get("/api/approvals/0123456789"),
        http.post("/api/approvals/0123456789", json={"decision": "approve"}),
        http.post("/api/approvals/0123456789", json={"decision": "deny"}),
    ):
        assert reply.status_code == 404, reply.text
        assert reply.json()["error"] == "approval_not_found"
        assert reply.json()["message"].startswith("no approval request with id '0123456789'")


def test_deciding_an_approval_again_is_a_409_saying_what_it_is_now(http: httpx.Client) -> None:
    approval_id = file_request(http, "writing")
    assert http.get(f"/api/approvals/{approval_id}").json()["status"] == "pending"
    approved = http.post(f"/api/approvals/{approval_id}", json={"decision": "approve"})
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    for decision in ("approve", "deny"):
        again = http.post(f"/api/approvals/{approval_id}", json={"decision": decision})
        assert again.status_code == 409, again.text
        assert again.json()["error"] == "approval_not_pending"
        assert f"approval '{approval_id}' is already approved" in again.json()["message"]
    assert http.get(f"/api/approvals/{approval_id}").json()["status"] == "approved"


def test_deciding_an_expired_approval_is_a_409(api: LiveApi, http: httpx.Client) -> None:
    approval_id = file_request(http, "research")
    path = governance_dir(api.settings) / "approvals.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    for approval in data["approvals"]:
        if approval["id"] == approval_id:
            approval["requested_at"] -= 2 * api.settings.governance.approval_ttl_seconds
    path.write_text(json.dumps(data), encoding="utf-8")
    reply = http.post(f"/api/approvals/{approval_id}", json={"decision": "approve"})
    assert reply.status_code == 409 and f"approval '{approval_id}' is already expired" in reply.json()["message"]
    assert http.get(f"/api/approvals/{approval_id}").json()["status"] == "expired"


def test_a_governed_action_naming_an_unknown_approval_is_refused_not_missing(http: httpx.Client) -> None:
    """The action is refused (403): a 404 would say the expert is gone."""
    reply = http.delete("/api/experts/code", params={"approval_id": "0123456789"})
    assert reply.status_code == 403 and reply.json()["error"] == "governance"
    assert reply.json()["message"].startswith("no approval request with id '0123456789'")
    assert http.get("/api/experts/code").status_code == 200


def test_the_cli_through_the_server_exits_as_it_does_in_process(api: LiveApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown or decided approval is governance's refusal in-process (exit 3); over HTTP it is now a 404 or a
    409, which the client mapped to 2."""
    from typer.testing import CliRunner

    from vy_nexus.interfaces.cli import app

    monkeypatch.setenv("VY_NEXUS_API_KEY", api.key)
    result = CliRunner().invoke(app, ["--server", api.url, "approvals", "approve", "0123456789"])
    assert result.exit_code == 3, result.output
    assert "no approval request with id '0123456789'" in result.output


# -- the error shape, as documented -----------------------------------------------------------------------------------


def test_the_openapi_schema_documents_the_error_shape_the_api_sends(http: httpx.Client) -> None:
    """It documented FastAPI's ``{"detail": [...]}`` for a 422 (never sent) and no other error."""
    schema = http.get("/openapi.json").json()
    assert "HTTPValidationError" not in json.dumps(schema)
    for path, operations in schema["paths"].items():
        if path == "/api/health":
            continue
        expected = "OpenAIErrorBody" if path.startswith("/v1/") else "ErrorBody"
        for method, operation in operations.items():
            for status in ("4XX", "5XX"):
                ref = operation["responses"][status]["content"]["application/json"]["schema"]["$ref"]
                assert ref == f"#/components/schemas/{expected}", (method, path, status)
    ErrorBody.model_validate(http.get("/api/tasks/nope").json())
    ErrorBody.model_validate(http.get("/api/tasks", params={"limit": 0}).json())
    OpenAIErrorBody.model_validate(http.post("/v1/chat/completions", json={"model": "auto"}).json())


# -- the dashboard's run form -----------------------------------------------------------------------------------------


def test_the_run_form_answers_a_refusal_with_the_apis_status_and_keeps_what_was_typed(tmp_path: Path) -> None:
    """With the kill switch engaged the form answered 422 (a form that does not validate) where the API says 503."""
    settings = load_settings(
        tmp_path / "home", store={"flush_interval_seconds": 0.02}, safety={"grace_period_seconds": 60}
    )
    with live_api(settings, scripted_system) as api, api.client() as http:
        # A running task (30 s) holds the server up for its grace period while the kill switch is engaged; a grace
        # of 60 s keeps it up however slowly the machine answers the form.
        accepted = http.post("/api/tasks", json={"description": "wait", "experts": ["slow"]})
        assert accepted.status_code == 202
        deadline = time.monotonic() + 20  # accepted is not yet admitted: the kill switch would refuse it instead
        while http.get(f"/api/tasks/{accepted.json()['id']}").json()["state"] != "running":
            assert time.monotonic() < deadline, "the slow task never started"
            time.sleep(0.02)
        services = api.server.config.app.state.services
        services.system.safety.request_shutdown("maintenance window")
        with httpx.Client(base_url=api.url, verify=httpx_context(), timeout=10.0, headers=BROWSER) as browser:
            assert browser.post("/dashboard/login", data={"key": api.key}).status_code == 303
            started = time.monotonic()
            form = browser.post("/dashboard/run", data={"description": "say <b>hi</b>", "priority": "high"})
            assert time.monotonic() - started < 5
        refused = http.post("/api/tasks", json={"description": "say hi"})
    assert refused.status_code == 503 and refused.json()["error"] == "safety"
    assert form.status_code == 503 and form.headers["content-type"].startswith("text/html")
    assert "vy-nexus is shutting down (maintenance window); no new tasks accepted" in form.text
    assert 'role="alert"' in form.text and "say &lt;b&gt;hi&lt;/b&gt;</textarea>" in form.text
    assert '<option value="high" selected>' in form.text
