"""The real embedded model (SmolLM2-135M-Instruct GGUF through llama.cpp). Slow: run with `make test-slow`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vy_nexus.config import Settings
from vy_nexus.interfaces.cli import app
from vy_nexus.reasoning.core import ReasoningCore
from vy_nexus.reasoning.embedded import EmbeddedBackend, packaged_model_path
from vy_nexus.reasoning.llm import GenerationOptions, ReasoningTimeoutError
from vy_nexus.system import VyNexus
from vy_nexus.tasks import Task

pytestmark = pytest.mark.slow

GREEDY = GenerationOptions(temperature=0.0, max_tokens=48, timeout_seconds=60)


@pytest.fixture(scope="module")
def backend() -> EmbeddedBackend:
    return EmbeddedBackend()


def wait_idle(backend: EmbeddedBackend, seconds: float = 5.0) -> float:
    started = time.perf_counter()
    while backend.busy and time.perf_counter() - started < seconds:
        time.sleep(0.01)
    return time.perf_counter() - started


def test_answers_with_real_token_counts(backend: EmbeddedBackend) -> None:
    tokens: list[str] = []
    core = ReasoningCore(backend, defaults=GREEDY)
    response = asyncio.run(core.generate("What is the capital of France?", on_token=lambda t: tokens.append(t.text)))
    assert "Paris" in response.text
    assert "".join(tokens) == response.text and len(tokens) >= 2
    assert response.usage.input_tokens > 10 and 0 < response.usage.output_tokens <= 48
    assert response.finish_reason in ("stop", "length") and "<|im_end|>" not in response.text
    assert response.time_to_first_token_ms is not None and response.time_to_first_token_ms < response.duration_ms


def test_greedy_decoding_is_repeatable_and_max_tokens_is_respected(backend: EmbeddedBackend) -> None:
    core = ReasoningCore(backend, defaults=GREEDY)
    options = GenerationOptions(max_tokens=12)
    first = asyncio.run(core.generate("Write a long story about a dragon.", options=options))
    second = asyncio.run(core.generate("Write a long story about a dragon.", options=options))
    assert first.text == second.text
    assert first.usage.output_tokens == 12 and first.finish_reason == "length"


def test_stop_sequences_cut_the_answer(backend: EmbeddedBackend) -> None:
    core = ReasoningCore(backend, defaults=GREEDY)
    prompt = "List the numbers from 1 to 10, one per line, nothing else."
    full = asyncio.run(core.generate(prompt))
    assert "3" in full.text
    cut = asyncio.run(core.generate(prompt, options=GenerationOptions(stop=("3",))))
    assert "3" not in cut.text and full.text.startswith(cut.text)


def test_cancellation_stops_generation_within_a_token(backend: EmbeddedBackend) -> None:
    core = ReasoningCore(backend, defaults=GenerationOptions(temperature=0.7, max_tokens=1500, timeout_seconds=60))

    async def cancel_after_first_token() -> None:
        first = asyncio.Event()
        job = asyncio.create_task(core.generate("Tell a very long story.", on_token=lambda _: first.set()))
        await first.wait()
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job

    asyncio.run(cancel_after_first_token())
    assert wait_idle(backend) < 1.0 and not backend.busy


def test_timeout_stops_generation(backend: EmbeddedBackend) -> None:
    core = ReasoningCore(backend, defaults=GenerationOptions(max_tokens=1500, timeout_seconds=0.3))
    with pytest.raises(ReasoningTimeoutError):
        asyncio.run(core.generate("Tell a very long story about the sea."))
    assert wait_idle(backend) < 1.0


def test_model_path_points_at_any_gguf(tmp_path: Path) -> None:
    copy = tmp_path / "my-model.gguf"
    copy.symlink_to(packaged_model_path())
    backend = EmbeddedBackend(model_path=copy)
    response = asyncio.run(ReasoningCore(backend, defaults=GREEDY).generate("Say hello."))
    assert response.model == "my-model" and response.text


def test_default_system_answers_with_the_embedded_model(settings: Settings) -> None:
    settings.reasoning_core.max_tokens = 32
    result = VyNexus(settings, observe=False).run(Task(description="hello, what is the capital of Italy?"))
    assert result.ok and result.experts == ["general"]
    assert result.output["reasoning"]["provider"] == "embedded" and result.output["answer"]


def test_code_expert_generates_and_checks_with_the_embedded_model(settings: Settings) -> None:
    settings.reasoning_core.temperature = 0.0
    task = Task(description="write a python function that adds two numbers", type="code")
    result = VyNexus(settings, observe=False).run(task)
    assert result.experts == ["code"] and result.ok
    assert result.output["summary"].startswith("Generated") and "valid" in result.output["analysis"]


def test_cli_run_streams_the_embedded_models_tokens(home: Path) -> None:
    (home / "config.yaml").write_text("reasoning_core:\n  max_tokens: 24\n")
    result = CliRunner().invoke(app, ["--home", str(home), "run", "hello, who are you?"])
    assert result.exit_code == 0, result.output
    assert "general · embedded/smollm2-135m-instruct" in result.stdout.splitlines()  # the streamed answer's header
    assert "answered by general: embedded/smollm2-135m-instruct" in result.stdout
