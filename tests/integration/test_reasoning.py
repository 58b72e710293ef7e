"""The reasoning core wired into the system and the CLI: injected backends, configured Ollama/OpenAI servers,
``llm.completed`` events, streamed tokens in ``vy-nexus run``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakes.http_server import serving
from fakes.llm import ScriptedBackend
from fakes.ollama_server import OllamaServer
from fakes.openai_server import OpenAIServer
from vy_nexus.config import Settings, load_settings
from vy_nexus.events import Event
from vy_nexus.interfaces.cli import app
from vy_nexus.reasoning.ollama import OllamaBackend
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task

runner = CliRunner()


@pytest.fixture
def ollama_server() -> Iterator[OllamaServer]:
    with serving(OllamaServer(reply=lambda messages: "Hi! I am a local llama.")) as server:
        yield server


def configure(home: Path, **reasoning: object) -> Settings:
    lines = ["reasoning_core:", *(f"  {key}: {json.dumps(value)}" for key, value in reasoning.items())]
    (home / "config.yaml").write_text("\n".join(lines) + "\n")
    return load_settings(home, environ={})


def test_an_injected_backend_answers_and_each_call_is_an_event(settings: Settings) -> None:
    backend = ScriptedBackend("Hello from the injected backend.")
    vy = VyNexus(settings, llm=backend, observe=False)
    seen: list[Event] = []
    vy.events.subscribe(seen.append)
    task = Task(description="hello there, how are you")
    result = vy.run(task)
    assert result.experts == ["general"]
    assert result.output["answer"] == "Hello from the injected backend."
    (event,) = [e for e in seen if e.kind == "llm.completed"]
    assert event.task_id == task.id and event.expert_id == "general"
    assert event.metadata["provider"] == "scripted" and event.metadata["output_tokens"] == 5
    assert {"duration_ms", "model", "input_tokens", "time_to_first_token_ms"} <= set(event.metadata)
    assert vy.reasoning is vy.reasoning  # built once


def test_configured_ollama_answers_through_the_system(home: Path, ollama_server: OllamaServer) -> None:
    settings = configure(home, provider="ollama", base_url=ollama_server.url)
    vy = VyNexus(settings, observe=False)
    result = vy.run(Task(description="hello"))
    assert result.output["answer"] == "Hi! I am a local llama."
    assert result.output["reasoning"]["provider"] == "ollama"
    assert result.output["reasoning"]["model"] == "llama3:latest"
    # run() has its own event loop; the pooled client was closed before that loop ended.
    backend = vy.reasoning.backend
    assert isinstance(backend, OllamaBackend) and backend.clients.open == 0 and ollama_server.wait_until_closed()
    assert vy.run(Task(description="hello again")).output["answer"] == "Hi! I am a local llama."
    assert backend.clients.created == 2 and ollama_server.wait_until_closed()


def test_astop_closes_the_reasoning_backend_in_the_running_loop(settings: Settings) -> None:
    backend = ScriptedBackend("hi")
    vy = VyNexus(settings, llm=backend, observe=False)

    async def serve() -> None:
        vy.start()
        await vy.submit(Task(description="hello there"))
        await vy.astop()

    asyncio.run(serve())
    assert backend.closed


def test_a_missing_ollama_model_fails_the_task_with_the_fix(home: Path, ollama_server: OllamaServer) -> None:
    settings = configure(home, provider="ollama", model="llama3:70b", base_url=ollama_server.url)
    result = VyNexus(settings, observe=False).run(Task(description="hello"))
    assert not result.ok
    assert "run `ollama pull llama3:70b`" in (result.results[0].error or "")


def test_configured_openai_server_with_key_from_env(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with serving(OpenAIServer(models=("qwen",), api_key="k-123", reply=lambda m: "Answer via SSE.")) as server:
        monkeypatch.setenv("LOCAL_LLM_KEY", "k-123")
        settings = configure(home, provider="openai", model="qwen", base_url=f"{server.url}/v1",
                             api_key_env="LOCAL_LLM_KEY")  # fmt: skip
        result = VyNexus(settings, observe=False).run(Task(description="hello"))
    assert result.output["answer"] == "Answer via SSE." and result.output["reasoning"]["provider"] == "openai"


def test_cli_run_streams_tokens_and_names_expert_and_backend(home: Path, ollama_server: OllamaServer) -> None:
    configure(home, provider="ollama", base_url=ollama_server.url)
    result = runner.invoke(app, ["--home", str(home), "run", "hello"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].strip() == "Routing decision"  # the decision comes first, then the answer as it streams
    start = lines.index("general · ollama/llama3:latest")
    assert lines[start + 1] == "Hi! I am a local llama."
    assert lines[-1] == "answered by general: ollama/llama3:latest"
    assert ollama_server.wait_until_closed()  # the CLI's loop closed its pooled connection


def test_cli_run_json_output_stays_clean(home: Path, ollama_server: OllamaServer) -> None:
    configure(home, provider="ollama", base_url=ollama_server.url)
    result = runner.invoke(app, ["--home", str(home), "run", "hello", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)  # nothing but the JSON document
    assert data["output"]["answer"] == "Hi! I am a local llama."


def test_cli_run_by_default_uses_the_embedded_provider(home: Path) -> None:
    # Default-run tests swap the embedded model for a scripted backend (see conftest); slow tests run the real one.
    result = runner.invoke(app, ["--home", str(home), "run", "hello", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["output"]["answer"] == "A scripted answer from the test reasoning core."


def test_cli_reads_sqlite_input_files(home: Path, tmp_path: Path) -> None:
    import sqlite3

    db_path = tmp_path / "shop.db"
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE TABLE orders (status TEXT, total REAL)")
        db.executemany("INSERT INTO orders VALUES (?, ?)", [("paid", 12.5), ("open", 3), ("paid", 7.5)])
    db.close()
    result = runner.invoke(app, ["--home", str(home), "run", "total by status", "--input", str(db_path), "--json",
                                 "--expert", "data-analysis"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output"]["result"] == [
        {"status": "open", "sum_total": 3},
        {"status": "paid", "sum_total": 20},
    ]
