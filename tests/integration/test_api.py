"""The REST API against a real uvicorn server on a free port: keys, limits, tasks (submit, poll, events, cancel),
experts, routing, approvals, metrics, stop."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fakes.llm import ScriptedBackend
from live_api import LiveApi, api_settings, get, live_api, request
from spine_experts import SlowExpert
from vy_nexus.config import Settings
from vy_nexus.system import VyNexus

CSV = "region,units\nnorth,3\nsouth,4\nnorth,2\n"


def scripted_system(settings: Settings) -> VyNexus:
    system = VyNexus(settings, llm=ScriptedBackend("streamed answer from the model", delay=0.01), load_plugins=False)
    system.register(SlowExpert(), source="test")
    return system


RATE_LIMIT = 10_000


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    # The module's tests share one key: a limit well above what they send, so polling on a slow machine never meets
    # it (test_rate_limit_answers_429_with_retry_after_per_key tests the limit on a server of its own).
    settings = api_settings(
        tmp_path_factory.mktemp("api") / "home", max_body_bytes=64 * 1024, rate_limit_per_minute=RATE_LIMIT
    )
    with live_api(settings, scripted_system) as server:
        yield server


@pytest.fixture
def client(api: LiveApi) -> Iterator[httpx.Client]:
    with api.client() as http:
        yield http


def wait_finished(client: httpx.Client, task_id: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record: dict[str, Any] = client.get(f"/api/tasks/{task_id}").json()
        if record["state"] not in ("queued", "running"):
            return record
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish")


def sse_events(response: httpx.Response) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []
    name = "message"
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            events.append((name, json.loads(line.split(":", 1)[1])))
            name = "message"
    return events


# -- health and auth ------------------------------------------------------------------------------------------------


def test_health_needs_no_key_and_says_why_it_is_ready(api: LiveApi) -> None:
    reply = get(f"{api.url}/api/health")
    assert reply.status_code == 200
    assert reply.json()["ready"] is True and reply.json()["reason"] == "accepting tasks"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer nope"}, {"X-API-Key": "vyn_000000000000_" + "a" * 43}]
)
def test_every_route_but_health_refuses_a_missing_or_wrong_key_with_the_same_401(
    api: LiveApi, headers: dict[str, str]
) -> None:
    for method, path in [("GET", "/api/status"), ("GET", "/api/tasks"), ("GET", "/metrics"), ("GET", "/v1/models")]:
        reply = request(method, f"{api.url}{path}", headers=headers)
        assert reply.status_code == 401, path
        assert reply.headers["www-authenticate"] == "Bearer"
    body = get(f"{api.url}/api/status", headers=headers).json()
    assert body == {
        "error": "unauthorized",
        "message": "a valid API key is required (Authorization: Bearer KEY or X-API-Key: KEY)",
        "details": {},
    }


@pytest.mark.slow  # waits out the key store's one-second recheck
def test_a_revoked_key_is_refused_within_a_second(api: LiveApi) -> None:
    from vy_nexus.interfaces.api.keys import RECHECK_SECONDS, KeyStore, keys_file

    key = api.new_key("short-lived")
    assert get(f"{api.url}/api/status", headers={"X-API-Key": key}).status_code == 200
    KeyStore(keys_file(api.settings.home)).revoke("short-lived")
    revoked_at = time.monotonic()
    while (reply := get(f"{api.url}/api/status", headers={"X-API-Key": key})).status_code == 200:
        assert time.monotonic() - revoked_at < RECHECK_SECONDS + 1.0, "the revoked key still works"
        time.sleep(0.05)
    assert reply.status_code == 401
    assert key not in reply.text


def test_the_keys_file_keeps_only_hashes(api: LiveApi) -> None:
    from vy_nexus.interfaces.api.keys import keys_file

    assert api.key not in keys_file(api.settings.home).read_text(encoding="utf-8")


def test_a_body_that_cannot_be_parsed_is_named(client: httpx.Client) -> None:
    """FastAPI said only "There was an error parsing the body" for a body that is not UTF-8 or nests too deeply."""
    headers = {"Content-Type": "application/json"}
    reply = client.post("/api/tasks", content=b'{"description": "\xff"}', headers=headers)
    assert reply.status_code == 400 and reply.json()["message"] == "the request body is not UTF-8 text (byte 17)"
    deep = b'{"description": "a", "input": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    reply = client.post("/api/tasks", content=deep, headers=headers)
    assert reply.status_code == 400 and reply.json()["message"] == "the request body's JSON is nested too deeply"
    reply = client.post("/api/tasks", content=b"{not json", headers=headers)
    assert reply.status_code == 400 and reply.json()["message"].startswith("the request body is not valid JSON: ")


def test_a_body_over_the_limit_gets_413_before_it_is_read(api: LiveApi, client: httpx.Client) -> None:
    big = {"description": "summarise this", "input": "x" * (80 * 1024)}
    reply = client.post("/api/tasks", json=big)
    assert reply.status_code == 413
    assert reply.json()["error"] == "content_too_large"
    # A client that announces a huge body and sends none of it still gets its answer.
    host, port = api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(
            b"POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {api.key}\r\nContent-Length: 1000000000\r\n\r\n{{".encode()
        )
        answer = raw.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 413")
    assert "request body of 1000000000 bytes is over the limit of 65536 bytes" in answer
    # A body without a length is counted as it arrives.
    chunks = (b"x" * 8192 for _ in range(20))
    streamed = client.post("/api/tasks", content=chunks, headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert streamed.json()["error"] == "content_too_large"


# -- tasks ----------------------------------------------------------------------------------------------------------


def test_naming_an_expert_that_does_not_exist_is_refused_before_anything_is_recorded(client: httpx.Client) -> None:
    """It was accepted (202), then failed in the store: a client learnt of its typo only by polling."""
    before = client.get("/api/tasks", params={"limit": 500}).json()["total"]
    reply = client.post("/api/tasks", json={"description": "hello", "experts": ["nosuch"]})
    assert reply.status_code == 404 and "no expert with id 'nosuch'" in reply.json()["message"]
    assert client.get("/api/tasks", params={"limit": 500}).json()["total"] == before


def test_submit_answers_202_with_the_task_already_in_the_store_then_poll_to_the_result(
    api: LiveApi, client: httpx.Client
) -> None:
    reply = client.post("/api/tasks", json={"description": "total units by region in this csv", "input": CSV})
    assert reply.status_code == 202
    accepted = reply.json()
    assert reply.headers["location"] == accepted["location"] == f"/api/tasks/{accepted['id']}"
    import sqlite3

    database = api.settings.home / "tasks" / "tasks.db"  # committed: another reader sees it at once
    with contextlib.closing(sqlite3.connect(database)) as connection:
        rows = connection.execute("SELECT description FROM tasks WHERE id = ?", (accepted["id"],)).fetchall()
    assert rows == [("total units by region in this csv",)]
    record = wait_finished(client, accepted["id"])
    assert record["state"] == "succeeded"
    assert record["experts"] == ["data-analysis"]
    assert record["output"]["result"] == [{"region": "north", "sum_units": 5}, {"region": "south", "sum_units": 4}]


def test_a_filename_picks_the_payload_format_like_the_cli(client: httpx.Client) -> None:
    body = {"description": "average units", "input": '[{"units": 2}, {"units": 4}]', "filename": "rows.json"}
    accepted = client.post("/api/tasks", json=body).json()
    record = wait_finished(client, accepted["id"])
    assert record["task"]["input"] == [{"units": 2}, {"units": 4}]


def test_an_sqlite_upload_is_spooled_and_queried(client: httpx.Client, tmp_path: Path) -> None:
    import base64
    import sqlite3

    db = tmp_path / "sales.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE sales (region TEXT, units INTEGER)")
        connection.executemany("INSERT INTO sales VALUES (?, ?)", [("north", 3), ("south", 4)])
    connection.close()
    body = {
        "description": "total units by region",
        "input_base64": base64.b64encode(db.read_bytes()).decode(),
        "filename": "sales.db",
    }
    record = wait_finished(client, client.post("/api/tasks", json=body).json()["id"])
    assert record["state"] == "succeeded", record["error"]
    assert str(tmp_path) not in json.dumps(record)


def test_bad_input_is_a_422_naming_the_problem(client: httpx.Client) -> None:
    reply = client.post("/api/tasks", json={"description": "x", "input_base64": "!!!"})
    assert reply.status_code == 422
    assert reply.json() == {"error": "input", "message": "input_base64 is not valid base64", "details": {}}
    missing = client.post("/api/tasks", json={"type": "code"})
    assert missing.status_code == 422
    assert missing.json()["error"] == "invalid_request"
    assert "description" in missing.json()["message"]


def test_a_task_carries_its_context_priority_and_deadline(client: httpx.Client) -> None:
    body = {
        "description": "average units by region",
        "input": CSV,
        "context": {"explain": False, "note": "[/] kept as is"},
        "priority": "high",
        "deadline": "2999-01-01T00:00:00Z",
    }
    record = wait_finished(client, client.post("/api/tasks", json=body).json()["id"])
    assert record["state"] == "succeeded", record["error"]
    task = record["task"]
    assert task["context"] == body["context"] and task["priority"] == "high"
    assert task["deadline"].startswith("2999-01-01T00:00:00")
    routed = client.post("/api/route", json={"description": "anything", "context": {"experts": ["code"]}}).json()
    assert routed["expert_ids"] == ["code"] and routed["reason"] == "experts named in the task context"
    late = client.post("/api/tasks", json={"description": "x", "deadline": "2001-01-01T00:00:00"})
    assert late.status_code == 422 and late.json()["message"].startswith("the deadline 2001-01-01T00:00:00+00:00")
    for field, value in (("context", [1]), ("priority", "urgent"), ("deadline", "soon")):
        bad = client.post("/api/tasks", json={"description": "x", field: value})
        assert bad.status_code == 422 and bad.json()["message"].startswith(f"body.{field}"), bad.json()


def test_events_stream_the_routing_decision_tokens_and_the_result(client: httpx.Client) -> None:
    accepted = client.post("/api/tasks", json={"description": "tell me a story", "experts": ["general"]}).json()
    with client.stream("GET", accepted["events"]) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    kinds = [name for name, _ in events]
    assert kinds[0] == "state" and events[0][1] == {"state": "queued"}
    assert "task.routed" in kinds and "task.governed" in kinds
    assert kinds.index("task.routed") < kinds.index("token") < kinds.index("result")
    assert "".join(data["text"] for name, data in events if name == "token") == "streamed answer from the model"
    assert [data["state"] for name, data in events if name == "state"] == ["queued", "running", "succeeded"]
    assert events[-1][0] == "result" and events[-1][1]["id"] == accepted["id"]
    # A late reader gets the same story, ending with the result.
    with client.stream("GET", accepted["events"]) as response:
        assert [name for name, _ in sse_events(response)] == kinds


def test_cancel_stops_a_running_task_and_the_store_says_so(client: httpx.Client) -> None:
    accepted = client.post("/api/tasks", json={"description": "slow", "experts": ["slow"]}).json()
    deadline = time.monotonic() + 5
    while client.get(accepted["location"]).json()["state"] != "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    reply = client.delete(accepted["location"])
    assert reply.status_code == 200
    record = wait_finished(client, accepted["id"])
    assert record["state"] == "cancelled"
    assert SlowExpert.cancelled[-1] == accepted["id"]


def test_list_filters_and_pages(client: httpx.Client) -> None:
    ids = [client.post("/api/tasks", json={"description": f"summarise note {i}"}).json()["id"] for i in range(3)]
    for task_id in ids:
        wait_finished(client, task_id)
    page = client.get("/api/tasks", params={"limit": 2, "state": "succeeded"}).json()
    assert len(page["items"]) == 2 and page["next_offset"] == 2
    assert all(item["state"] == "succeeded" for item in page["items"])
    assert client.get("/api/tasks", params={"state": "bogus"}).status_code == 422


def test_unknown_task_is_a_404_in_the_one_error_shape(client: httpx.Client) -> None:
    for method in ("GET", "DELETE"):
        reply = client.request(method, "/api/tasks/doesnotexist")
        assert reply.status_code == 404
        assert reply.json()["error"] == "task_not_found"
    assert client.get("/api/tasks/doesnotexist/events").status_code == 404
    assert client.get("/api/nowhere").json() == {"error": "not_found", "message": "Not Found", "details": {}}


# -- experts, routing, approvals, stop --------------------------------------------------------------------------------


def test_experts_are_listed_and_described(client: httpx.Client) -> None:
    ids = [expert["id"] for expert in client.get("/api/experts").json()["experts"]]
    assert {"code", "data-analysis", "general", "slow"} <= set(ids)
    code = client.get("/api/experts/code").json()
    assert code["source"] == "builtin" and "python" in code["capabilities"]
    assert client.get("/api/experts/nope").json()["error"] == "unknown_expert"


def test_route_decides_without_running(client: httpx.Client) -> None:
    before = client.get("/api/tasks").json()["total"]
    decision = client.post("/api/route", json={"description": "fix the bug in this python function"}).json()
    assert decision["expert_ids"] == ["code"]
    assert client.get("/api/tasks").json()["total"] == before


def test_removing_an_expert_needs_an_approval_then_uses_it(api: LiveApi, client: httpx.Client) -> None:
    refused = client.delete("/api/experts/writing")
    assert refused.status_code == 403
    details = refused.json()["details"]
    assert details["verdict"] == "needs_approval"
    approval_id = details["approval_id"]
    pending = client.get("/api/approvals").json()
    assert [a["id"] for a in pending] == [approval_id]
    assert pending[0]["requested_by"] == "api:tester"
    decided = client.post(f"/api/approvals/{approval_id}", json={"decision": "approve", "note": "ok"}).json()
    assert decided["status"] == "approved" and decided["decided_by"] == "api:tester"
    removed = client.delete("/api/experts/writing", params={"approval_id": approval_id})
    assert removed.json() == {"id": "writing", "removed": True}
    assert client.get("/api/experts/writing").status_code == 404
    assert client.get("/api/approvals", params={"all": True}).json()[0]["status"] == "consumed"


def test_status_and_metrics_report_record_every_request(client: httpx.Client) -> None:
    # A `GET /api/tasks/{task_id}` of its own (a 404 is a request too): the test does not lean on earlier ones.
    assert client.get("/api/tasks/0000000000000000").status_code == 404
    status = client.get("/api/status").json()
    assert status["server"]["rate_limit_per_minute"] == RATE_LIMIT
    assert "experts" in status and "store" in status
    report = client.get("/api/metrics/report").json()
    routes = {(group["group"]["method"], group["group"]["route"]) for group in report["api"]}
    assert ("GET", "/api/status") in routes
    assert ("GET", "/api/tasks/{task_id}") in routes


def test_prometheus_exposition_parses_and_counts_requests(client: httpx.Client) -> None:
    client.get("/api/experts")
    reply = client.get("/metrics")
    assert reply.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(reply.text)}
    requests = families["vy_nexus_api_request_duration_seconds"]
    counts = {(s.labels["route"], s.labels["status"]): s.value for s in requests.samples if s.name.endswith("_count")}
    assert counts[("/api/experts", "200")] >= 1


def test_no_error_body_carries_a_path_or_a_key(api: LiveApi, client: httpx.Client) -> None:
    replies = [
        client.post("/api/approvals/nope", json={"decision": "approve"}),
        get(f"{api.url}/api/status", headers={"X-API-Key": api.key + "x"}),
        client.post("/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "hi"}]}),
    ]
    for reply in replies:
        assert reply.status_code >= 400
        assert str(api.settings.home) not in reply.text
        assert api.key not in reply.text
        assert "Traceback" not in reply.text


def test_an_error_naming_a_file_names_no_path(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with live_api(api_settings(home)) as api, api.client() as client:
        (home / "governance").mkdir(exist_ok=True)
        (home / "governance" / "approvals.json").write_text("{broken", encoding="utf-8")
        reply = client.get("/api/approvals")
        assert reply.status_code == 500
        body = reply.json()
        assert body["error"] == "state"
        assert body["message"].startswith("<path> is corrupt")
        assert str(home) not in reply.text


# -- servers of their own: limits, stop -------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after_per_key(tmp_path: Path) -> None:
    with live_api(api_settings(tmp_path / "home", rate_limit_per_minute=5)) as api, api.client() as client:
        codes = [client.get("/api/status").status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        limited = client.get("/api/status")
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.json()["error"] == "too_many_requests"
        with api.client(api.new_key("second")) as other:
            assert other.get("/api/status").status_code == 200


def test_stop_is_governed_then_shuts_the_server_down(tmp_path: Path) -> None:
    with live_api(api_settings(tmp_path / "home")) as api, api.client() as client:
        refused = client.post("/api/system/stop", json={"reason": "maintenance"})
        assert refused.status_code == 403
        approval_id = refused.json()["details"]["approval_id"]
        client.post(f"/api/approvals/{approval_id}", json={"decision": "approve"})
        accepted = client.post("/api/system/stop", json={"reason": "maintenance", "approval_id": approval_id})
        assert accepted.status_code == 202
        deadline = time.monotonic() + 5
        while not api.exits and time.monotonic() < deadline:
            time.sleep(0.02)
        assert api.exits == ["exit"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the server stops serving
            try:
                get(f"{api.url}/api/health", timeout=1)
            except httpx.ConnectError:
                break
            except (httpx.ReadError, httpx.RemoteProtocolError):  # accepted while closing, then reset or closed
                pass
            time.sleep(0.05)
        else:
            raise AssertionError("the server still serves after the stop")


# -- the CLI as a client ----------------------------------------------------------------------------------------------


def test_the_cli_talks_to_the_server_with_server_url(
    api: LiveApi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from vy_nexus.interfaces.cli import app

    monkeypatch.setenv("VY_NEXUS_API_KEY", api.key)
    runner = CliRunner()

    def cli(*args: str) -> Any:
        result = runner.invoke(app, ["--server", api.url, *args])
        return result

    ran = cli("run", "tell me a story", "--expert", "general", "--context", '{"tone": "dry"}', "--priority", "low")
    assert ran.exit_code == 0, ran.output
    assert "streamed answer from the model" in ran.output
    sent = json.loads(
        cli("tasks", "show", json.loads(cli("tasks", "list", "--json").output)["items"][0]["id"], "--json").output
    )
    assert sent["task"]["context"] == {"tone": "dry", "experts": ["general"]} and sent["task"]["priority"] == "low"
    (tmp_path / "sales.csv").write_text(CSV, encoding="utf-8")
    computed = cli("run", "total units by region in this csv", "--input", str(tmp_path / "sales.csv"), "--json")
    assert computed.exit_code == 0, computed.output
    assert json.loads(computed.output)["output"]["result"][0] == {"region": "north", "sum_units": 5}
    decision = json.loads(cli("route", "fix the bug in this python function", "--json").output)
    assert decision["expert_ids"] == ["code"]
    table = json.loads(cli("route", "what does this show", "--input", str(tmp_path / "sales.csv"), "--json").output)
    assert table["expert_ids"] == ["data-analysis"] and "table" in table["reason"]
    named = json.loads(cli("route", "what does this show", "--context", '{"experts": ["general"]}', "--json").output)
    assert named["expert_ids"] == ["general"] and named["reason"] == "experts named in the task context"
    experts = json.loads(cli("experts", "--json").output)
    assert "slow" in [expert["id"] for expert in experts["experts"]]
    page = json.loads(cli("tasks", "list", "--json", "--limit", "1").output)
    task_id = page["items"][0]["id"]
    assert json.loads(cli("tasks", "show", task_id, "--json").output)["id"] == task_id
    assert "already ended" in cli("tasks", "cancel", task_id).output
    assert json.loads(cli("status", "--json").output)["server"]["rate_limit_per_minute"] == RATE_LIMIT
    assert cli("approvals", "list", "--json").exit_code == 0
    missing = cli("tasks", "show", "nope")
    assert missing.exit_code == 2 and "no task" in missing.output
    monkeypatch.setenv("VY_NEXUS_API_KEY", "wrong")
    refused = cli("experts")
    assert refused.exit_code == 2 and "API key" in refused.output


def test_a_server_that_is_not_there_is_a_clear_error() -> None:
    from typer.testing import CliRunner

    from vy_nexus.interfaces.cli import app

    result = CliRunner().invoke(app, ["--server", "http://127.0.0.1:9", "experts"])
    assert result.exit_code == 1
    assert "cannot reach the vy-nexus server at http://127.0.0.1:9" in result.output
