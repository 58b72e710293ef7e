"""Dependencies the routes declare: the shared services, the system, and the caller's API key (checked, and
counted against its rate limit). Every route but ``/api/health`` depends on ``api_key``.

They are ``async def`` because none of them waits on anything (the key file is reread only when it changed):
FastAPI would run a plain ``def`` dependency in its thread pool, one thread hop per dependency per request."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException

from vy_nexus.interfaces.api.keys import ApiKey
from vy_nexus.interfaces.api.services import ApiServices
from vy_nexus.system import VyNexus

UNAUTHORIZED = "a valid API key is required (Authorization: Bearer KEY or X-API-Key: KEY)"

SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "HTTPBearer": {"type": "http", "scheme": "bearer", "description": "An API key: `vy-nexus keys create NAME`."},
    "APIKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The same key, as a header.",
    },
}


async def services(request: Request) -> ApiServices:
    found: ApiServices = request.app.state.services
    return found


async def system(shared: Annotated[ApiServices, Depends(services)]) -> VyNexus:
    return shared.system


def presented_key(headers: Headers) -> str | None:
    """The key a request carries: ``Authorization: Bearer KEY``, else ``X-API-Key: KEY``."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("x-api-key") or None


async def api_key(request: Request) -> ApiKey:
    """The caller's key. Missing, unknown and revoked keys get the same 401: nothing tells them apart.

    It reads the headers itself instead of depending on FastAPI's ``HTTPBearer``/``APIKeyHeader``: each nested
    dependency cost every request more than the key check (benchmarks/api_load.py). ``document_api_keys`` puts the
    same two schemes in the OpenAPI schema."""
    presented = presented_key(request.headers)
    shared: ApiServices = request.app.state.services
    record = shared.keys.verify(presented) if presented else None
    if record is None:
        raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
    shared.limiter.check(record.id)
    return record


def document_api_keys(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Declare the two ways to send a key in the app's OpenAPI schema, on every operation of ``routers`` (each
    depends on ``api_key``); call it before the routers are included."""
    requirement: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute):
                route.openapi_extra = {**(route.openapi_extra or {}), "security": requirement}
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            generate().setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


async def actor(key: Annotated[ApiKey, Depends(api_key)]) -> str:
    """Who acts, for governance's audit log: ``api:<key name>``."""
    return f"api:{key.name}"


Services = Annotated[ApiServices, Depends(services)]
System = Annotated[VyNexus, Depends(system)]
Actor = Annotated[str, Depends(actor)]
