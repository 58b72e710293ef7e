"""Building the configured backend from settings.reasoning_core."""

from __future__ import annotations

import pytest

from vy_nexus.config import ReasoningCoreSettings
from vy_nexus.errors import ConfigError
from vy_nexus.events import EventBus
from vy_nexus.reasoning.embedded import EmbeddedBackend
from vy_nexus.reasoning.factory import build_backend, build_reasoning_core, default_options
from vy_nexus.reasoning.llm import GenerationOptions, LLMBackend
from vy_nexus.reasoning.ollama import OllamaBackend
from vy_nexus.reasoning.openai_compat import OpenAICompatBackend


def test_default_is_the_embedded_model_and_nothing_loads() -> None:
    backend = build_backend(ReasoningCoreSettings())
    assert isinstance(backend, EmbeddedBackend) and isinstance(backend, LLMBackend)
    assert backend.model == "smollm2-135m-instruct" and not backend.loaded
    custom = build_backend(
        ReasoningCoreSettings(model_path="/models/qwen2.5-0.5b.gguf", threads=3, context_window=4096)
    )
    assert isinstance(custom, EmbeddedBackend)
    assert custom.model == "qwen2.5-0.5b" and custom.threads == 3 and custom.context_window == 4096


def test_ollama_defaults_to_llama3_on_localhost() -> None:
    backend = build_backend(ReasoningCoreSettings(provider="ollama"))
    assert isinstance(backend, OllamaBackend)
    assert backend.model == "llama3:latest" and backend.base_url == "http://localhost:11434"
    other = build_backend(ReasoningCoreSettings(provider="ollama", model="mistral", base_url="http://gpu:11434/"))
    assert isinstance(other, OllamaBackend) and other.model == "mistral" and other.base_url == "http://gpu:11434"


def test_openai_needs_a_model_or_a_local_server() -> None:
    with pytest.raises(ConfigError, match=r"set reasoning_core\.model"):
        build_backend(ReasoningCoreSettings(provider="openai"))
    hosted = build_backend(ReasoningCoreSettings(provider="openai", model="gpt-4o-mini", api_key_env="K"), {"K": "s"})
    assert isinstance(hosted, OpenAICompatBackend) and hosted.base_url == "https://api.openai.com/v1"
    assert hosted._key() == "s"
    local = build_backend(ReasoningCoreSettings(provider="openai", base_url="http://127.0.0.1:8080/v1"), {})
    assert isinstance(local, OpenAICompatBackend) and local._key() == ""


def test_reasoning_core_takes_defaults_from_settings() -> None:
    settings = ReasoningCoreSettings(temperature=0.2, max_tokens=64, timeout_seconds=9)
    assert default_options(settings) == GenerationOptions(temperature=0.2, max_tokens=64, timeout_seconds=9)
    events = EventBus()
    core = build_reasoning_core(settings, events=events)
    assert core.events is events and core.provider == "embedded" and core.defaults.max_tokens == 64
