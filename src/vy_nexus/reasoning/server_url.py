"""The HTTP backends' ``reasoning_core.base_url``, checked before a client is built from it.

The clients take any text and fail later with their own words: a bracket left open (``http://[::1``) raised a bare
``ValueError`` or ``InvalidURL``, and another scheme (``ftp://``) or a missing host read as "cannot reach the server:
is it running?", which sends the user to the wrong fix. These errors name the setting instead.
"""

from __future__ import annotations

import httpx

from vy_nexus.reasoning.llm import BackendUnavailableError

SETTING = "reasoning_core.base_url"


def check_base_url(url: str, *, example: str, scheme_optional: bool = False) -> None:
    """Raise ``BackendUnavailableError`` naming ``reasoning_core.base_url`` unless ``url`` is an http(s) URL with a
    host and a valid port. ``scheme_optional``: ``host:port`` without a scheme is fine too (Ollama reads it so)."""
    if scheme_optional and "://" not in url and url.strip():
        return
    try:
        parsed = httpx.URL(url)
        port = parsed.port
    except (httpx.InvalidURL, ValueError) as exc:
        raise _invalid(url, str(exc), example) from None
    if parsed.scheme not in ("http", "https"):
        raise _invalid(url, "it does not start with http:// or https://", example)
    if not parsed.host:
        raise _invalid(url, "it names no host", example)
    if port is not None and not 0 < port < 65536:
        raise _invalid(url, f"the port {port} is not one from 1 to 65535", example)


def _invalid(url: str, problem: str, example: str) -> BackendUnavailableError:
    return BackendUnavailableError(f"{SETTING} {url!r} is not a server address ({problem}); write it like {example}")
