"""The OpenAI-compatible door: ``POST /v1/chat/completions`` (plain and streaming) and ``GET /v1/models``. Any
OpenAI client works with only ``base_url`` (``http://HOST:PORT/v1``) and ``api_key`` (a vy-nexus key) changed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from vy_nexus.errors import VyNexusError
from vy_nexus.interfaces.api import sse
from vy_nexus.interfaces.api.deps import System, api_key
from vy_nexus.interfaces.api.errors import NO_RETRY, error_code, openai_error, scrub
from vy_nexus.interfaces.api.openai_format import (
    AUTO,
    ChatCompletionRequest,
    answer_text,
    chunk,
    completion,
    finish_reason,
    routing_extension,
    stream_ending,
    usage,
)
from vy_nexus.reasoning.llm import TokenEvent
from vy_nexus.reasoning.streaming import stream_tokens_to
from vy_nexus.reasoning.token_limits import cap_tokens
from vy_nexus.system import VyNexus
from vy_nexus.tasks import AggregatedResult, Task

router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Depends(api_key)])

EXPERTS_HEADER = "X-Vy-Nexus-Experts"


@router.get("/models")
def models(system: System) -> dict[str, Any]:
    """``auto`` (let vy-nexus route) and every registered expert."""
    created = int(time.time())
    ids = [AUTO, *(expert.id for expert in system.registry.list())]
    return {
        "object": "list",
        "data": [{"id": model, "object": "model", "created": created, "owned_by": "vy-nexus"} for model in ids],
    }


@router.post("/chat/completions", response_model=None)
async def chat_completions(system: System, body: ChatCompletionRequest) -> Response:
    """The conversation becomes a task (its last user message; the other messages, in order, in the task's context),
    routed when ``model`` is ``auto``, else given to that expert. ``vy_nexus`` in the answer carries the routing
    decision. A parameter the door cannot honour is a ``400`` naming it, before anything runs."""
    if body.model != AUTO and body.model not in system.registry:  # a 404 before anything runs
        return _model_not_found(body.model)
    task = body.to_task()
    if body.stream:
        return sse.stream(_chunks(system, body, task))
    with cap_tokens(body.token_cap()):
        result = await system.submit(task, durable=True)
    if not result.ok:
        return _failed(result)
    reply = completion(body, result, answer_text(result.output))
    return JSONResponse(reply, headers={EXPERTS_HEADER: ",".join(result.experts)})


def _model_not_found(model: str) -> JSONResponse:
    """OpenAI's answer to a model it does not have, with what to ask for instead."""
    message = (
        f"the model {model!r} does not exist here: use {AUTO!r} (vy-nexus routes the task) or an expert's id"
        " (GET /v1/models lists them)"
    )
    return openai_error(404, "model_not_found", message, {"param": "model"})


def _failed(result: AggregatedResult) -> JSONResponse:
    """A ``502`` a retry would only repeat: the server retried each expert's retryable failures already
    (``executor.max_retries``, with backoff), so OpenAI's clients are told not to run the whole task twice more."""
    errors = "; ".join(f"{item.expert_id}: {item.error}" for item in result.results if not item.ok)
    return openai_error(502, "experts_failed", scrub(f"every chosen expert failed ({errors})"), {}, NO_RETRY)


async def _chunks(system: VyNexus, body: ChatCompletionRequest, task: Task) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    tokens: asyncio.Queue[str] = asyncio.Queue()

    def sink(token: TokenEvent) -> None:
        loop.call_soon_threadsafe(tokens.put_nowait, token.text)

    async def run() -> AggregatedResult:
        with stream_tokens_to(sink), cap_tokens(body.token_cap()):
            return await system.submit(task, durable=True)

    completion_id = f"chatcmpl-{task.id}"
    job = asyncio.create_task(run())
    streamed: list[str] = []
    try:
        yield sse.frame(None, chunk(completion_id, body.model, {"role": "assistant", "content": ""}))
        while True:
            getter = asyncio.ensure_future(tokens.get())
            await asyncio.wait({getter, job}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                break
            streamed.append(getter.result())
            yield sse.frame(None, chunk(completion_id, body.model, {"content": streamed[-1]}))
        while not tokens.empty():
            streamed.append(tokens.get_nowait())
            yield sse.frame(None, chunk(completion_id, body.model, {"content": streamed[-1]}))
        try:
            result = job.result()
        except VyNexusError as exc:
            error = {"message": scrub(str(exc)), "type": "server_error", "param": None, "code": error_code(exc)}
            yield sse.frame(None, {"error": error})
            return
        if not result.ok:
            yield sse.frame(None, bytes(_failed(result).body).decode())
            return
        text = answer_text(result.output)
        ending = stream_ending(result.output, "".join(streamed))
        if ending:
            yield sse.frame(None, chunk(completion_id, body.model, {"content": ending}))
        yield sse.frame(
            None,
            chunk(
                completion_id,
                body.model,
                {},
                finish_reason=finish_reason(result),
                extra={"vy_nexus": routing_extension(result)},
            ),
        )
        if body.stream_options is not None and body.stream_options.include_usage:
            final = usage(body.prompt_tokens(), len(streamed) or len(text.split()))
            yield sse.frame(None, {**chunk(completion_id, body.model, {}), "choices": [], "usage": final})
        yield sse.frame(None, "[DONE]")
    finally:
        if not job.done():
            job.cancel()
            with contextlib.suppress(BaseException):
                await job
