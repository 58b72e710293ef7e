"""The server as its own process: `vy-nexus serve` killed with tasks queued and running loses none of them
silently; `vy-nexus start` / `stop` / `status` manage a background server through its pid file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from spine_experts import SLEEPY_SOURCE
from vy_nexus.interfaces.api.keys import KeyStore, keys_file
from vy_nexus.interfaces.api.server import pid_file
from vy_nexus.interfaces.cli import app

pytestmark = pytest.mark.slow  # each test starts server processes (a few seconds each on two cores)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become healthy")


@pytest.fixture
def sleepy_home(home: Path) -> Path:
    (home / "experts").mkdir()
    (home / "experts" / "sleepy.py").write_text(SLEEPY_SOURCE, encoding="utf-8")
    return home


def serve(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "VY_NEXUS_GOVERNANCE__MAX_CONCURRENT_TASKS": "1"}
    command = [sys.executable, "-m", "vy_nexus.interfaces.cli", "--home", str(home), "serve", "--port", str(port)]
    with (home / "server-test.log").open("ab") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    wait_healthy(f"http://127.0.0.1:{port}", process)
    return process


def test_a_killed_server_loses_no_task_silently(sleepy_home: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    key = KeyStore(keys_file(sleepy_home)).create("tester").secret
    headers = {"X-API-Key": key}
    process = serve(sleepy_home, port)
    try:
        # serve binds the socket itself, so uvicorn would not say where it listens: vy-nexus does
        assert f"Uvicorn running on {url} (Press CTRL+C to quit)" in (sleepy_home / "server-test.log").read_text()
        ids = [
            httpx.post(
                f"{url}/api/tasks", json={"description": f"nap {i}", "experts": ["sleepy"]}, headers=headers
            ).json()["id"]
            for i in range(3)
        ]
        deadline = time.monotonic() + 30  # two loaded cores: the first task may take a while to start
        while httpx.get(f"{url}/api/tasks/{ids[0]}", headers=headers).json()["state"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    restarted = serve(sleepy_home, port)
    try:
        records: list[dict[str, Any]] = [
            httpx.get(f"{url}/api/tasks/{task_id}", headers=headers).json() for task_id in ids
        ]
    finally:
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    assert [record["state"] for record in records] == ["interrupted"] * 3
    assert "while it ran" in records[0]["error"]
    assert all("before it started" in record["error"] for record in records[1:])


def test_start_status_stop_manage_a_background_server(sleepy_home: Path) -> None:
    runner = CliRunner()
    port = free_port()
    home = str(sleepy_home)
    started = runner.invoke(app, ["--home", home, "start", "--port", str(port)])
    assert started.exit_code == 0, started.output
    assert f"server running at http://127.0.0.1:{port}" in started.output
    try:
        again = runner.invoke(app, ["--home", home, "start", "--port", str(port)])
        assert again.exit_code != 0 and "already running" in again.output
        status = runner.invoke(app, ["--home", home, "status", "--json"])
        assert status.exit_code == 0, status.output
        assert f'"url": "http://127.0.0.1:{port}"' in status.output
    finally:
        stopped = runner.invoke(app, ["--home", home, "stop", "--yes", "--reason", "test over"])
    assert stopped.exit_code == 0, stopped.output
    assert "server stopped" in stopped.output
    assert not pid_file(sleepy_home).exists()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1)


def test_a_stale_pid_file_is_noticed_and_removed(home: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pid_file(home).parent.mkdir(parents=True)
    pid_file(home).write_text(f'{{"pid": {dead.pid}, "started": 1.0, "url": "http://127.0.0.1:9"}}', encoding="utf-8")
    result = CliRunner().invoke(app, ["--home", str(home), "status", "--json"])
    assert result.exit_code == 0, result.output
    assert '"stale_pid_file_removed": true' in result.output
    assert not pid_file(home).exists()
