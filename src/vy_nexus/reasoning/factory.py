"""Build the configured backend from ``settings.reasoning_core``. Nothing is loaded or connected here."""

from __future__ import annotations

import os
from collections.abc import Mapping

from vy_nexus.config import ReasoningCoreSettings
from vy_nexus.errors import ConfigError
from vy_nexus.events import EventBus
from vy_nexus.reasoning.core import ReasoningCore
from vy_nexus.reasoning.embedded import DEFAULT_MODEL_NAME, EmbeddedBackend
from vy_nexus.reasoning.llm import GenerationOptions, LLMBackend


def build_embedded_backend(settings: ReasoningCoreSettings) -> LLMBackend:
    """The in-process GGUF backend; the model file is opened on the first call."""
    return EmbeddedBackend(
        model_path=settings.model_path,
        model=settings.model,
        context_window=settings.context_window,
        threads=settings.threads,
    )


def build_backend(settings: ReasoningCoreSettings, environ: Mapping[str, str] | None = None) -> LLMBackend:
    """The backend ``settings.provider`` names, configured from ``settings``."""
    if settings.provider == "embedded":
        return build_embedded_backend(settings)
    # The model key defaults to the embedded model's name; other providers then use their own default.
    model = settings.model
    # The HTTP backends import their clients (ollama, openai) only when chosen: a CLI call should not pay for them.
    if settings.provider == "ollama":
        from vy_nexus.reasoning.ollama import DEFAULT_MODEL as OLLAMA_DEFAULT_MODEL
        from vy_nexus.reasoning.ollama import OllamaBackend

        return OllamaBackend(
            OLLAMA_DEFAULT_MODEL if model == DEFAULT_MODEL_NAME else model,
            base_url=settings.base_url,
            timeout_seconds=settings.timeout_seconds,
            context_window=settings.context_window,
        )
    if settings.provider == "openai":
        if model == DEFAULT_MODEL_NAME and not settings.base_url:
            raise ConfigError(
                "reasoning_core.provider is openai: set reasoning_core.model (and base_url for local servers)"
            )
        from vy_nexus.reasoning.openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(
            model,
            base_url=settings.base_url,
            api_key_env=settings.api_key_env,
            timeout_seconds=settings.timeout_seconds,
            environ=os.environ if environ is None else environ,
        )
    raise ConfigError(f"unknown reasoning_core.provider '{settings.provider}'")  # pragma: no cover - Literal-checked


def default_options(settings: ReasoningCoreSettings) -> GenerationOptions:
    return GenerationOptions(
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        timeout_seconds=settings.timeout_seconds,
    )


def build_reasoning_core(
    settings: ReasoningCoreSettings, *, events: EventBus | None = None, backend: LLMBackend | None = None
) -> ReasoningCore:
    """A ``ReasoningCore`` over ``backend`` (default: the configured one) with defaults from ``settings``."""
    return ReasoningCore(
        backend if backend is not None else build_backend(settings),
        defaults=default_options(settings),
        events=events,
    )
