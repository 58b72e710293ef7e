"""The HTTP clients vy-nexus makes share one TLS context per process instead of loading the CA certificates again."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest

from vy_nexus.interfaces.client import ApiClient
from vy_nexus.reasoning.ollama import OllamaBackend
from vy_nexus.reasoning.openai_compat import OpenAICompatBackend
from vy_nexus.tls import httpx_context, openai_context


def test_new_clients_load_no_certificates_and_still_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    ollama_backend = OllamaBackend(base_url="https://ollama.example")
    openai_backend = OpenAICompatBackend(model="m", base_url="https://llm.example/v1")

    async def make_backend_clients() -> None:
        for backend in (ollama_backend, openai_backend):
            backend.clients.get()
            await backend.aclose()

    def make_clients() -> None:
        with ApiClient("https://vy.example", "key"):
            pass
        asyncio.run(make_backend_clients())

    make_clients()  # the first clients may make the contexts
    loads: list[Any] = []
    real_load = ssl.SSLContext.load_verify_locations

    def counting_load(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        real_load(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting_load)
    for _ in range(3):
        make_clients()
    assert loads == []
    for context in (httpx_context(), openai_context()):
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
        assert context.cert_store_stats()["x509_ca"] > 0
