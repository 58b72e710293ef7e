"""`vy-nexus serve` as an operator meets it: the server's own misconfiguration answered as the server's (500), not
the client's (400); OpenAI's clients told not to retry what a retry cannot fix; governance's next step worded for
API clients in the API's terms; and the operator's attacks on `serve` (a taken port, TLS files it cannot use, a home
it cannot write, signals while tasks run, `vy-nexus stop`, a pid file left by a killed server), each answered with
one line naming the problem and the documented exit code."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import psutil
import pytest
from typer.testing import CliRunner

from fakes.llm import ScriptedBackend
from live_api import LiveApi, api_settings, live_api
from spine_experts import SLEEPY_SOURCE, CrashingExpert, SlowExpert, make_expert
from vy_nexus.config import Settings, load_settings
from vy_nexus.errors import (
    ConfigError,
    GovernanceError,
    SafetyError,
    StoreError,
    TaskCancelledError,
    VyNexusError,
)
from vy_nexus.interfaces.api.errors import NO_RETRY, retry_headers
from vy_nexus.interfaces.api.keys import KeyStore, keys_file
from vy_nexus.interfaces.api.server import pid_file
from vy_nexus.interfaces.cli import app
from vy_nexus.store import TaskState
from vy_nexus.system import VyNexus
from vy_nexus.tls import httpx_context, openai_context

runner = CliRunner()
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def invoke(home: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--home", str(home), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def scripted_system(settings: Settings) -> VyNexus:
    system = VyNexus(settings, llm=ScriptedBackend("the scripted answer", delay=0.0), load_plugins=False)
    for expert in (SlowExpert(), CrashingExpert(), make_expert("spare", ("spare",))):
        system.register(expert, source="test")
    return system


def services(api: LiveApi) -> Any:
    return api.server.config.app.state.services


def door(api: LiveApi, *, retries: int = 2) -> openai.OpenAI:
    """The official client as an application uses it: its default two retries."""
    http = openai.DefaultHttpxClient(verify=openai_context())
    return openai.OpenAI(base_url=f"{api.url}/v1", api_key=api.key, max_retries=retries, http_client=http)


def received(api: LiveApi) -> int:
    """Requests the server has received so far (uvicorn counts every one)."""
    count: int = api.server.server_state.total_requests
    return count


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    with live_api(api_settings(tmp_path_factory.mktemp("operator") / "home"), scripted_system) as server:
        yield server


@pytest.fixture
def http(api: LiveApi) -> Iterator[httpx.Client]:
    with api.client() as client:
        yield client


# -- the server's misconfiguration is the server's ---------------------------------------------------------------------


def test_a_server_misconfiguration_met_by_a_request_is_a_500_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The ONNX model semantic routing needs is missing: that answered 400 "config", as if the client were wrong."""
    model = tmp_path / "models" / "missing.onnx"
    settings = load_settings(
        tmp_path / "home",
        store={"flush_interval_seconds": 0.02},
        routing={"strategy": "semantic", "semantic": {"model_path": str(model)}},
    )
    with live_api(settings, scripted_system) as server, server.client() as client, door(server) as openai_client:
        with caplog.at_level("ERROR", logger="vy_nexus.interfaces.api.errors"):
            routed = client.post("/api/route", json={"description": "what is 2 + 2"})
        before = received(server)
        with pytest.raises(openai.InternalServerError) as raised:
            openai_client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "2 + 2?"}])
        after = received(server)
    assert routed.status_code == 500 and routed.json()["error"] == "server_config"
    message = routed.json()["message"]
    assert message.startswith("the server's configuration is wrong (not the request): ")
    assert "routing.semantic.model_path: ONNX model not found: <path>" in message and str(tmp_path) not in message
    assert raised.value.status_code == 500 and raised.value.code == "server_config"
    assert raised.value.response.headers["x-should-retry"] == "false"
    assert after - before == 1  # not retried twice: the configuration does not change between retries
    assert f"fix it and restart the server: routing.semantic.model_path: ONNX model not found: {model}" in caplog.text


def test_a_deadline_the_run_form_cannot_read_is_the_clients_error(api: LiveApi) -> None:
    """The form's deadline parser says ConfigError; the form keeps it the person's typing (422), not the server's."""
    with httpx.Client(base_url=api.url, verify=httpx_context(), timeout=10.0, headers=BROWSER) as browser:
        assert browser.post("/dashboard/login", data={"key": api.key}).status_code == 303
        form = browser.post("/dashboard/run", data={"description": "say hi", "deadline": "whenever"})
    assert form.status_code == 422, form.text
    assert "cannot read the deadline &#39;whenever&#39;" in form.text and "configuration" not in form.text


# -- what OpenAI's clients retry ---------------------------------------------------------------------------------------


def test_the_openai_client_does_not_retry_a_cancelled_task(api: LiveApi) -> None:
    """A 409 for a task someone cancelled was sent again twice, each time a new task."""
    system = services(api).system
    failures: list[openai.APIStatusError] = []

    def ask() -> None:
        with door(api) as client:
            try:
                client.chat.completions.create(model="slow", messages=[{"role": "user", "content": "take your time"}])
            except openai.APIStatusError as exc:
                failures.append(exc)

    before = received(api)
    asking = threading.Thread(target=ask)
    asking.start()
    deadline = time.monotonic() + 30
    while asking.is_alive() and time.monotonic() < deadline:  # cancel every attempt the client makes
        for record in system.list_tasks(states=[TaskState.RUNNING], expert="slow").items:
            system.cancel(record.id, "cancelled by the operator")
        time.sleep(0.05)
    asking.join(timeout=5)
    assert len(failures) == 1 and isinstance(failures[0], openai.ConflictError)
    assert failures[0].code == "task_cancelled" and failures[0].response.headers["x-should-retry"] == "false"
    assert received(api) - before == 1


def test_the_openai_client_does_not_retry_an_answer_every_expert_failed(api: LiveApi) -> None:
    """Each expert's retryable failures were retried by the server already: the client ran the whole task 3 times."""
    before = received(api)
    with door(api) as client, pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="crash", messages=[{"role": "user", "content": "go"}])
    assert raised.value.status_code == 502 and raised.value.response.headers["x-should-retry"] == "false"
    assert received(api) - before == 1


def test_the_openai_client_does_not_retry_while_the_server_shuts_down(tmp_path: Path) -> None:
    """A 503 "shutting down" was sent again twice; the server would not take the task on any of them."""
    settings = load_settings(
        tmp_path / "home", store={"flush_interval_seconds": 0.02}, safety={"grace_period_seconds": 60}
    )
    with live_api(settings, scripted_system) as server, server.client() as client:
        # A running task (30 s) holds the server up for its grace period while it shuts down.
        assert client.post("/api/tasks", json={"description": "wait", "experts": ["slow"]}).status_code == 202
        services(server).system.safety.request_shutdown("maintenance window")
        before = received(server)
        with door(server) as openai_client, pytest.raises(openai.InternalServerError) as raised:
            openai_client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hello"}])
        after = received(server)
    assert raised.value.status_code == 503 and "shutting down (maintenance window)" in raised.value.message
    assert raised.value.response.headers["x-should-retry"] == "false"
    assert after - before == 1


@pytest.mark.parametrize(
    ("status", "error", "retry"),
    [
        (409, TaskCancelledError("task cancelled"), NO_RETRY),
        (503, SafetyError("vy-nexus is shutting down"), NO_RETRY),
        (500, ConfigError("semantic routing has no routes"), NO_RETRY),
        (503, StoreError("the task store cannot be reached"), {}),  # an outage may pass: the client's retries stay
        (429, GovernanceError("too many tasks", verdict="throttled"), {}),  # the client waits Retry-After, retries
    ],
)
def test_retries_are_refused_only_where_they_cannot_help(
    status: int, error: VyNexusError, retry: dict[str, str]
) -> None:
    assert retry_headers(status, error) == retry


# -- governance's next step in the API's words -------------------------------------------------------------------------


def test_api_clients_get_governances_next_step_in_the_apis_terms(http: httpx.Client) -> None:
    """The API answered "repeat the command with --approval ID" and "`vy-nexus approvals list --all`"."""
    refused = http.delete("/api/experts/spare")
    assert refused.status_code == 403, refused.text
    approval = refused.json()["details"]["approval_id"]
    assert refused.json()["message"].endswith(
        f"it needs approval. Approve it with POST /api/approvals/{approval} (decision: approve), then send this"
        f" request again with approval_id {approval}"
    )
    assert refused.json()["details"]["next_step"] == "approve_then_repeat"
    assert refused.json()["details"]["problem"].endswith("it needs approval")
    assert http.post(f"/api/approvals/{approval}", json={"decision": "approve"}).status_code == 200
    again = http.post(f"/api/approvals/{approval}", json={"decision": "approve"})
    assert again.status_code == 409 and again.headers["x-should-retry"] == "false"
    assert again.json()["message"] == (
        f"approval '{approval}' is already approved: send the action's request again with approval_id {approval}"
        " to use it"
    )
    assert http.delete("/api/experts/spare", params={"approval_id": approval}).status_code == 200
    unknown = http.get("/api/approvals/0123456789")
    assert unknown.status_code == 404
    assert unknown.json()["message"] == (
        "no approval request with id '0123456789': GET /api/approvals?all=true lists every request"
    )
    for reply in (refused, again, unknown):
        assert "--approval" not in reply.text and "vy-nexus approvals" not in reply.text


def test_the_cli_through_a_server_words_the_next_step_as_the_cli(api: LiveApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI with --server relays the server's facts and words the step itself, as it does in-process."""
    monkeypatch.setenv("VY_NEXUS_API_KEY", api.key)
    result = runner.invoke(app, ["--server", api.url, "approvals", "approve", "0123456789"])
    assert result.exit_code == 3, result.output
    assert "no approval request with id '0123456789': `vy-nexus approvals list --all` shows every request" in (
        result.output
    )
    assert "GET /api" not in result.output


# -- serve, attacked by an operator (no server process) ----------------------------------------------------------------


def test_a_port_in_use_names_the_process_holding_it(home: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code, output = invoke(home, "serve", "--port", str(port))
    assert code == 2, output
    assert f"cannot listen on 127.0.0.1:{port}: address already in use by pid {os.getpid()} (" in output
    assert "choose another --port, or stop that process" in output and "Traceback" not in output


def test_a_port_held_by_this_homes_server_says_how_to_stop_it(home: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        me = psutil.Process()
        pid_file(home).parent.mkdir(parents=True)
        record = {"pid": me.pid, "started": me.create_time(), "url": f"http://127.0.0.1:{port}"}
        pid_file(home).write_text(json.dumps(record), encoding="utf-8")
        code, output = invoke(home, "serve", "--port", str(port))
    assert code == 2, output
    assert (
        f"address already in use by this home's server (pid {me.pid}, http://127.0.0.1:{port}):"
        " `vy-nexus stop` stops it"
    ) in output


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two self-signed certificates with their keys (a.*, b.*), a.key encrypted as enc.key, and a file of junk."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    request = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    request += ["-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"]
    for name in ("a", "b"):
        written = ["-keyout", str(folder / f"{name}.key"), "-out", str(folder / f"{name}.crt")]
        subprocess.run([*request, *written], check=True, capture_output=True)
    encrypt = [openssl, "pkey", "-in", str(folder / "a.key"), "-aes256", "-passout", "pass:secret"]
    subprocess.run([*encrypt, "-out", str(folder / "enc.key")], check=True, capture_output=True)
    (folder / "junk.pem").write_text("not a certificate\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("cert", "key", "message"),
    [
        ("a.crt", None, "--tls-cert needs --tls-key: HTTPS takes the certificate and its private key together"),
        ("missing.crt", "a.key", "--tls-cert {dir}/missing.crt: no such file or directory; name a PEM file"),
        ("a.crt", "b.key", "--tls-key {dir}/b.key is not the private key of --tls-cert {dir}/a.crt: they do not match"),
        ("junk.pem", "a.key", "--tls-cert {dir}/junk.pem holds no PEM certificate"),
        ("a.key", "a.crt", "--tls-cert {dir}/a.key holds no PEM certificate"),
        ("a.crt", "junk.pem", "--tls-key {dir}/junk.pem holds no PEM private key"),
        ("a.crt", "enc.key", "--tls-key {dir}/enc.key is encrypted: serve needs a key without a passphrase"),
    ],
)
def test_tls_files_serve_cannot_use_are_named_before_anything_loads(
    home: Path, tls_files: Path, cert: str, key: str | None, message: str
) -> None:
    args = ["--tls-cert", str(tls_files / cert), *([] if key is None else ["--tls-key", str(tls_files / key)])]
    for command in ("serve", "start"):
        code, output = invoke(home, command, "--port", "8000", *args)
        assert code == 2, output
        assert message.format(dir=tls_files) in " ".join(output.split()), output
        assert "Traceback" not in output
    assert not (home / "tasks").exists() and not (home / "api").exists()


def test_a_home_that_cannot_be_written_is_named_by_serve_start_and_keys(tmp_path: Path) -> None:
    """`start` and `keys create` answered a traceback (NotADirectoryError, PermissionError)."""
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    home = tmp_path / "a-file" / "home"
    for command in (["serve", "--port", "8000"], ["start", "--port", "8000"]):
        code, output = invoke(home, *command)
        assert code == 2, output
        assert f"the home directory {home} cannot be written (Not a directory)" in " ".join(output.split())
    code, output = invoke(home, "keys", "create", "ops")
    assert code == 6 and f"cannot write the API keys file {home}/api/keys.json: Not a directory" in output, output
    code, output = invoke(home, "status", "--json")
    assert code == 0 and '"running": false' in output, output


def test_stop_after_a_killed_server_removes_its_pid_file(home: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pid_file(home).parent.mkdir(parents=True)
    pid_file(home).write_text(json.dumps({"pid": dead.pid, "started": 1.0, "url": "http://127.0.0.1:9"}))
    code, output = invoke(home, "stop", "--yes", "--reason", "after a crash")
    assert code == 0, output
    assert "removed a stale server pid file (its process was gone)" in output and not pid_file(home).exists()


# -- serve, attacked by an operator (a server process) -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """`vy-nexus serve` in its own process (a sleepy expert in its home), and a client for its API."""

    def __init__(self, home: Path, *args: str, grace: float = 10.0) -> None:
        (home / "experts").mkdir(parents=True, exist_ok=True)
        (home / "experts" / "sleepy.py").write_text(SLEEPY_SOURCE, encoding="utf-8")
        self.home = home
        self.log = home / "serve.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers = {"X-API-Key": KeyStore(keys_file(home)).create("ops").secret}
        env = {**os.environ, "VY_NEXUS_SAFETY__GRACE_PERIOD_SECONDS": str(grace)}
        command = [sys.executable, "-m", "vy_nexus.interfaces.cli", "--home", str(home), "serve"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port), *args], env=env, stdout=log, stderr=log
            )

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("the server did not become healthy")

    def submit(self, seconds: float) -> str:
        body = {"description": "nap", "experts": ["sleepy"], "context": {"seconds": seconds}}
        task_id: str = httpx.post(f"{self.url}/api/tasks", json=body, headers=self.headers).json()["id"]
        return task_id

    def wait_running(self, task_id: str) -> None:
        self.wait_for(lambda: self.record(task_id)["state"] == "running")

    def record(self, task_id: str) -> dict[str, Any]:
        found: dict[str, Any] = httpx.get(f"{self.url}/api/tasks/{task_id}", headers=self.headers).json()
        return found

    def wait_for(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.05)

    def stored(self, task_id: str) -> Any:
        with VyNexus(load_settings(self.home)) as system:
            return system.get_task(task_id)

    def stored_running(self) -> list[Any]:
        with VyNexus(load_settings(self.home)) as system:
            return system.list_tasks(states=[TaskState.RUNNING]).items

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.kill()


@pytest.mark.slow  # a server process, and a grace period
@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_lets_running_tasks_finish_within_the_grace_period_then_exits_0(
    home: Path, servers: list[ServerProcess], sent: signal.Signals
) -> None:
    """SIGTERM and Ctrl-C interrupted running tasks at once, and the process died of the signal (-15, -2)."""
    server = ServerProcess(home, grace=4.0)
    servers.append(server)
    server.wait_healthy()
    quick, long = server.submit(1.0), server.submit(120.0)
    server.wait_running(quick)
    server.wait_running(long)
    server.process.send_signal(sent)
    started = time.monotonic()
    assert server.process.wait(timeout=60) == 0, server.log.read_text()
    assert time.monotonic() - started < 30
    assert server.stored(quick).state is TaskState.SUCCEEDED
    interrupted = server.stored(long)
    assert interrupted.state is TaskState.INTERRUPTED
    assert f"vy-nexus is shutting down ({sent.name} received)" in (interrupted.error or "")
    log = server.log.read_text()
    assert f"{sent.name} received: taking no new tasks; running ones get 4 s to finish" in log
    assert "Traceback" not in log


@pytest.mark.slow  # a server process
def test_a_second_signal_stops_at_once(home: Path, servers: list[ServerProcess]) -> None:
    """Only a signal handled as the first counted as the first: sent before the shutdown had begun, the second one
    waited out the grace period again; and a request waiting on its task (/v1) held the server up until it ended."""
    server = ServerProcess(home, grace=120.0)
    servers.append(server)
    server.wait_healthy()
    task_id = server.submit(120.0)
    server.wait_running(task_id)
    answers: list[httpx.Response] = []
    body = {"model": "sleepy", "messages": [{"role": "user", "content": "nap"}]}
    waiting = threading.Thread(
        target=lambda: answers.append(
            httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=server.headers, timeout=60)
        )
    )
    waiting.start()
    server.wait_for(lambda: len(server.stored_running()) == 2)
    server.process.send_signal(signal.SIGTERM)
    server.wait_for(lambda: "SIGTERM again stops it now" in server.log.read_text())  # two at once would be one
    server.process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    assert server.process.wait(timeout=30) == 0, server.log.read_text()
    assert time.monotonic() - started < 20
    waiting.join(timeout=10)
    assert answers and answers[0].status_code == 503, answers
    assert "vy-nexus is shutting down (SIGTERM received)" in answers[0].json()["error"]["message"]
    assert server.stored(task_id).state is TaskState.INTERRUPTED
    assert "SIGTERM received: stopping now" in server.log.read_text()


@pytest.mark.slow  # a server process
def test_stop_lets_a_foreground_servers_task_finish_then_it_exits_0(home: Path, servers: list[ServerProcess]) -> None:
    server = ServerProcess(home, grace=30.0)
    servers.append(server)
    server.wait_healthy()
    task_id = server.submit(2.0)
    server.wait_running(task_id)
    code, output = invoke(home, "stop", "--yes", "--reason", "maintenance")
    assert code == 0, output
    assert server.process.wait(timeout=60) == 0, server.log.read_text()
    assert server.stored(task_id).state is TaskState.SUCCEEDED


@pytest.mark.slow  # a server process
def test_start_serves_https_with_usable_tls_files_and_stop_stops_it(home: Path, tls_files: Path) -> None:
    port = free_port()
    tls = ["--tls-cert", str(tls_files / "a.crt"), "--tls-key", str(tls_files / "a.key")]
    code, output = invoke(home, "start", "--port", str(port), *tls)
    try:
        assert code == 0, output
        assert f"server running at https://127.0.0.1:{port}" in output
        trusted = ssl.create_default_context(cafile=tls_files / "a.crt")
        health = httpx.get(f"https://127.0.0.1:{port}/api/health", verify=trusted)
        assert health.status_code == 200 and health.json()["ready"] is True
    finally:
        stopped = invoke(home, "stop", "--yes")
    assert stopped[0] == 0 and "server stopped" in stopped[1], stopped[1]


@pytest.mark.slow  # a server process
def test_a_home_whose_store_cannot_open_is_one_line_and_the_stores_exit_code(home: Path) -> None:
    """uvicorn printed the traceback of the lifespan's StoreError and exited 3."""
    (home / "metrics").write_text("a file where the metrics folder goes", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "vy_nexus.interfaces.cli", "--home", str(home), "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 7, done.stderr
    assert f"error: cannot create the metrics folder {home}/metrics" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow  # a server process
def test_a_home_without_write_permission_is_named(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o500)
    command = [sys.executable, "-m", "vy_nexus.interfaces.cli", "--home", str(home), "serve", "--port", "8000"]
    if os.geteuid() == 0:  # root writes anywhere, unless it runs without the capabilities that let it
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: every directory is writable")
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert f"the home directory {home} cannot be written (Permission denied)" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_cli_through_a_server_exits_2_for_the_servers_configuration_as_in_process() -> None:
    from vy_nexus.errors import ConfigError
    from vy_nexus.interfaces.client import RemoteError

    remote = RemoteError("the configuration is wrong (not the request): ...", status=500, error="server_config")
    assert remote.exit_code == ConfigError.exit_code == 2
    assert RemoteError("internal error", status=500, error="internal").exit_code == 1
