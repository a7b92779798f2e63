"""OpenAI's ``/v1`` routes: chat completions, completions, embeddings, models.

Each route decodes its body (:mod:`.protocol`), lowers it (:mod:`.translate`),
calls the same :class:`Service` the native routes call, and renders what comes
back. ``n`` choices are ``n`` concurrent ``Service.generate`` calls whose
chunks are tagged with their choice index. Errors are raised, never built
here: ``compat/errors.py`` gives ``/v1`` paths OpenAI's envelope.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from llamaport.compat.metrics import noted, observed
from llamaport.compat.openai.protocol import ChatBody, CompletionBody, EmbeddingBody, decode
from llamaport.compat.openai.render import (
    ChatStream,
    CompletionStream,
    ResponseHead,
    chat_completion,
    completion,
    embedding_response,
    model_object,
)
from llamaport.compat.openai.translate import (
    chat_request,
    choice_count,
    completion_request,
    embed_request,
    encoding_format,
    fan_out,
)
from llamaport.compat.openapi import json_body
from llamaport.compat.state import service_of
from llamaport.compat.streaming import (
    collected_headers,
    json_response,
    reply_headers,
    served_by,
    sse_response,
    unless_disconnected,
)
from llamaport.runtime.types import Chunk, GenerateRequest
from llamaport.storage.gguf_meta import read_gguf_info

__all__ = ["interleave", "router"]

router = APIRouter(prefix="/v1")

Tagged = tuple[int, Chunk]
"""A chunk and the index of the choice it belongs to."""


async def interleave(streams: list[AsyncGenerator[Chunk, None]]) -> AsyncGenerator[Tagged, None]:
    """Merge several chunk streams as chunks arrive, tagging each with its stream's index.

    The first error from any stream is raised and ends the others; closing
    this generator (client gone) cancels every stream, which frees their
    engine sequences.
    """
    if len(streams) == 1:
        try:
            async for chunk in streams[0]:
                yield 0, chunk
        finally:
            await streams[0].aclose()
        return
    queue: asyncio.Queue[tuple[int, Chunk | Exception | None]] = asyncio.Queue()

    async def pump(index: int, chunks: AsyncGenerator[Chunk, None]) -> None:
        try:
            async for chunk in chunks:
                await queue.put((index, chunk))
            await queue.put((index, None))
        except Exception as exc:
            await queue.put((index, exc))
        finally:
            await chunks.aclose()

    tasks = [asyncio.ensure_future(pump(i, s)) for i, s in enumerate(streams)]
    try:
        running = len(tasks)
        while running:
            index, item = await queue.get()
            if item is None:
                running -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                yield index, item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _generate(request: Request, reqs: list[GenerateRequest]) -> AsyncGenerator[Tagged, None]:
    service = service_of(request)
    return interleave([observed(request, r.model, service.generate(r)) for r in reqs])


async def _collect(items: AsyncIterator[Tagged]) -> list[Tagged]:
    return [item async for item in items]


def _first_headers(item: Tagged) -> dict[str, str]:
    return reply_headers(item[1])


async def _answer(
    request: Request,
    body: ChatBody | CompletionBody,
    req: GenerateRequest,
    prefix: str,
    stream_type: type[ChatStream | CompletionStream],
    whole: Callable[[ResponseHead, list[Tagged]], dict[str, Any]],
) -> Response:
    """Run ``n`` choices of ``req``; stream them as SSE or answer one body.

    One id (random) and one ``created`` time serve every chunk of the response.
    """
    n = choice_count(body)
    rid = f"{prefix}-{secrets.token_hex(12)}"
    head = ResponseHead(rid, int(time.time()), body.model, n, req.logprobs, body.include_usage)
    items = _generate(request, fan_out(req, n))
    if body.stream:
        stream = stream_type(head)
        return await sse_response(request, items, stream.render, stream.tail, _first_headers)
    collected = await unless_disconnected(request, _collect(items))
    out = whole(head, collected)
    return json_response(out, headers=collected_headers([c for _, c in collected]))


@router.post("/chat/completions", openapi_extra=json_body(ChatBody))
async def chat_completions(request: Request) -> Response:
    body = decode(ChatBody, await request.body())
    return await _answer(request, body, chat_request(body), "chatcmpl", ChatStream, chat_completion)


@router.post("/completions", openapi_extra=json_body(CompletionBody))
async def completions(request: Request) -> Response:
    body = decode(CompletionBody, await request.body())
    req = completion_request(body)
    return await _answer(request, body, req, "cmpl", CompletionStream, completion)


@router.post("/embeddings", openapi_extra=json_body(EmbeddingBody))
async def embeddings(request: Request) -> Response:
    body = decode(EmbeddingBody, await request.body())
    fmt = encoding_format(body)
    req = embed_request(body)
    result = noted(req.model, await unless_disconnected(request, service_of(request).embed(req)))
    return json_response(embedding_response(body.model, result, fmt), served_by(result.upstream))


@router.get("/models")
async def list_models(request: Request) -> Response:
    data: list[dict[str, Any]] = [
        model_object(record, read_gguf_info(record.model_path))
        for record in service_of(request).store.list()
    ]
    data += [_remote_object(m.name, m.upstreams[0]) for m in service_of(request).remote_models()]
    return json_response({"object": "list", "data": data})


def _remote_object(name: str, upstream: str) -> dict[str, Any]:
    """A routed model in OpenAI's shape, owned by the upstream that serves it."""
    return {"id": name, "object": "model", "created": 0, "owned_by": upstream}


@router.get("/models/{model:path}")
async def retrieve_model(request: Request, model: str) -> Response:
    """``model`` may hold ``:`` and ``/`` (``library/smollm2:135m``); the SDK sends it as is."""
    upstream = service_of(request).remote_upstream(model)
    if upstream is not None:
        return json_response(_remote_object(model, upstream))
    record = service_of(request).store.get(model)
    return json_response(model_object(record, read_gguf_info(record.model_path)))
