"""The dashboard's login: the API key travels once in a form post, then lives in a session cookie the page's scripts
cannot read (HttpOnly), that other sites' pages do not send (SameSite=Strict), scoped to ``/dashboard`` and gone when
the browser closes. It never appears in a URL. Each request checks the key again, so a revoked key logs out at once."""

from __future__ import annotations

from fastapi import Request, Response

from vy_nexus.interfaces.api.keys import ApiKey, KeyStore

COOKIE = "vy_nexus_session"
PATH = "/dashboard"


class LoginRequiredError(Exception):
    """No valid session: pages redirect to the login form, data routes answer 401."""


def start(response: Response, request: Request, key: str) -> None:
    response.set_cookie(
        COOKIE,
        key,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def end(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")


def current_key(request: Request, keys: KeyStore) -> ApiKey:
    presented = request.cookies.get(COOKIE)
    record = keys.verify(presented) if presented else None
    if record is None:
        raise LoginRequiredError
    return record
