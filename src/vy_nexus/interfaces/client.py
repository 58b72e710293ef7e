"""A client of the vy-nexus API (httpx): what the CLI and the shell use with ``--server URL``. Error bodies become
``RemoteError`` with the exit code the same problem has in-process (bad input 2, governance 3, shutting down 4,
backend 5), so the CLI behaves the same either way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import httpx

from vy_nexus.errors import NextStep, VyNexusError
from vy_nexus.tls import httpx_context

_EXIT_CODES = {400: 2, 401: 2, 404: 2, 409: 2, 413: 2, 422: 2, 403: 3, 429: 3, 503: 4, 502: 5}
_ERROR_EXIT_CODES = {"approval_not_found": 3, "approval_not_pending": 3, "server_config": 2}
"""Errors whose HTTP status says less than the CLI's exit codes: approvals unknown or decided are answered 404 and
409, yet they are governance's refusals in-process (exit 3); the server's own configuration is a 500, yet a
configuration error (exit 2) as it is in-process."""


class RemoteError(VyNexusError):
    """An error the server answered. A governance refusal keeps its facts as ``message`` and its ``next_step``
    (with ``approval_id``), so the CLI words the step as it does in-process instead of in the API's terms."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        error: str = "unreachable",
        next_step: NextStep | None = None,
        approval_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.exit_code = _ERROR_EXIT_CODES.get(error, _EXIT_CODES.get(status, 1))
        self.http_status = status or 502
        self.next_step = next_step
        self.approval_id = approval_id


class ApiClient:
    def __init__(self, url: str, key: str | None, *, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, verify=httpx_context())

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            reply = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach the vy-nexus server at {self.url}: {exc}") from exc
        _raise_for(reply)
        return reply.json()

    def events(self, task_id: str) -> Iterator[tuple[str, Any]]:
        """The task's Server-Sent Events as ``(event, data)``, until the stream ends (after ``result``)."""
        try:
            with self._http.stream("GET", f"/api/tasks/{task_id}/events", timeout=None) as reply:
                if reply.status_code >= 400:
                    reply.read()
                    _raise_for(reply)
                name = "message"
                for line in reply.iter_lines():
                    if line.startswith("event:"):
                        name = line.partition(":")[2].strip()
                    elif line.startswith("data:"):
                        yield name, json.loads(line.partition(":")[2])
                        name = "message"
        except httpx.HTTPError as exc:
            raise RemoteError(f"lost the event stream of task {task_id}: {exc}") from exc

    # -- the API, one method a route ----------------------------------------------------------------------------------

    def status(self) -> Any:
        return self.request("GET", "/api/status")

    def submit(self, body: dict[str, Any]) -> Any:
        return self.request("POST", "/api/tasks", json=body)

    def route(self, body: dict[str, Any]) -> Any:
        return self.request("POST", "/api/route", json=body)

    def task(self, task_id: str) -> Any:
        return self.request("GET", f"/api/tasks/{task_id}")

    def tasks(self, **params: Any) -> Any:
        return self.request("GET", "/api/tasks", params={k: v for k, v in params.items() if v not in (None, [])})

    def cancel(self, task_id: str) -> Any:
        return self.request("DELETE", f"/api/tasks/{task_id}")

    def experts(self) -> Any:
        return self.request("GET", "/api/experts")

    def approvals(self, *, include_all: bool = False) -> Any:
        return self.request("GET", "/api/approvals", params={"all": include_all})

    def decide(self, approval_id: str, *, approve: bool, note: str | None = None) -> Any:
        body = {"decision": "approve" if approve else "deny", "note": note}
        return self.request("POST", f"/api/approvals/{approval_id}", json=body)

    def metrics_report(self) -> Any:
        return self.request("GET", "/api/metrics/report")


def _raise_for(reply: httpx.Response) -> None:
    if reply.status_code < 400:
        return
    try:
        body = reply.json()
    except ValueError:
        body = {}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):  # the OpenAI door's shape
        body = {"error": body["error"].get("code"), "message": body["error"].get("message")}
    message = body.get("message") if isinstance(body, dict) else None
    error = body.get("error") if isinstance(body, dict) else None
    details = body.get("details") if isinstance(body, dict) else None
    step = _next_step(details)
    if step is not None and isinstance(details, dict):  # the facts alone: the CLI words the step itself
        message, approval_id = details.get("problem") or message, details.get("approval_id")
    else:
        approval_id = None
    raise RemoteError(
        str(message or f"the server answered {reply.status_code}"),
        status=reply.status_code,
        error=str(error),
        next_step=step,
        approval_id=None if approval_id is None else str(approval_id),
    )


def _next_step(details: Any) -> NextStep | None:
    step = details.get("next_step") if isinstance(details, dict) else None
    try:
        return NextStep(step) if isinstance(step, str) else None
    except ValueError:  # a newer server's step this client cannot word: its message says it
        return None
