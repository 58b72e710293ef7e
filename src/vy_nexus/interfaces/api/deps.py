"""Dependencies the routes declare: the shared services, the system, and the caller's API key (checked, and
counted against its rate limit). Every route but ``/api/health`` depends on ``api_key``.

They are ``async def`` because none of them waits on anything (the key file is reread only when it changed):
FastAPI would run a plain ``def`` dependency in its thread pool, one thread hop per dependency per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from vy_nexus.interfaces.api.keys import ApiKey
from vy_nexus.interfaces.api.services import ApiServices
from vy_nexus.system import VyNexus

_bearer = HTTPBearer(auto_error=False, description="An API key: `vy-nexus keys create NAME`.")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The same key, as a header.")

UNAUTHORIZED = "a valid API key is required (Authorization: Bearer KEY or X-API-Key: KEY)"


async def services(request: Request) -> ApiServices:
    found: ApiServices = request.app.state.services
    return found


async def system(shared: Annotated[ApiServices, Depends(services)]) -> VyNexus:
    return shared.system


async def api_key(
    shared: Annotated[ApiServices, Depends(services)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> ApiKey:
    """The caller's key. Missing, unknown and revoked keys get the same 401: nothing tells them apart."""
    presented = bearer.credentials if bearer is not None else header
    record = shared.keys.verify(presented) if presented else None
    if record is None:
        raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
    shared.limiter.check(record.id)
    return record


async def actor(key: Annotated[ApiKey, Depends(api_key)]) -> str:
    """Who acts, for governance's audit log: ``api:<key name>``."""
    return f"api:{key.name}"


Services = Annotated[ApiServices, Depends(services)]
System = Annotated[VyNexus, Depends(system)]
Actor = Annotated[str, Depends(actor)]
