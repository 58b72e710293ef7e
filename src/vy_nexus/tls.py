"""One TLS context per process for the HTTP clients vy-nexus makes.

Building a context loads the CA certificates (certifi's bundle, or the system's), about 30 ms of CPU, and httpx builds
one for every client unless it is given one. A backend makes a client per event loop (every CLI task, every
``asyncio.run``) and the CLI one per ``--server`` command, so that cost was paid again and again for the same
certificates. An ``ssl.SSLContext`` may be shared by any number of clients and threads. Each context is the one the
library would have built itself (same certificates, same ``SSL_CERT_FILE``/``SSL_CERT_DIR`` rules), made on first use.
"""

from __future__ import annotations

import functools
import importlib
import ssl
from typing import Any


@functools.cache
def httpx_context() -> ssl.SSLContext:
    """httpx's default context, for ``httpx`` clients (``verify=``)."""
    import httpx

    return httpx.create_ssl_context()


@functools.cache
def openai_context() -> ssl.SSLContext:
    """The default context of the HTTP library the installed ``openai`` SDK is built on (httpx, or its fork httpx2 in
    newer SDKs), for ``openai.DefaultAsyncHttpxClient(verify=...)``."""
    import openai

    http_client_base = next(
        base for base in openai.DefaultAsyncHttpxClient.__mro__[1:] if base.__name__ == "AsyncClient"
    )
    library: Any = importlib.import_module(http_client_base.__module__.partition(".")[0])
    context: ssl.SSLContext = library.create_ssl_context()
    return context
