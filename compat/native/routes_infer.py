"""Ollama's inference routes: generate, chat, embed, embeddings."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from llamaport.compat.client import (
    ChatBody,
    DetokenizeBody,
    EmbedBody,
    EmbeddingsBody,
    GenerateBody,
    TokenizeBody,
)
from llamaport.compat.errors import ApiError, Route
from llamaport.compat.history import History
from llamaport.compat.metrics import noted, observed
from llamaport.compat.native.protocol import decode
from llamaport.compat.native.translate import (
    chat_chunk,
    chat_request,
    embed_request,
    embeddings_request,
    generate_chunk,
    generate_request,
    now,
    tokenize_request,
)
from llamaport.compat.openai.items import (
    from_messages,
    output_items,
    to_messages,
    turn_items,
)
from llamaport.compat.openapi import json_body
from llamaport.compat.state import service_of
from llamaport.compat.streaming import (
    json_response,
    ndjson_response,
    reply_headers,
    served_by,
    unless_disconnected,
)
from llamaport.runtime.reply import GeneratedReply
from llamaport.runtime.types import Chunk, GenerateRequest, link_tool_results
from llamaport.storage.conversations import new_item_id

__all__ = ["router"]

router = APIRouter()


async def _collect(chunks: AsyncIterator[Chunk]) -> list[Chunk]:
    return [chunk async for chunk in chunks]


async def _respond(
    request: Request,
    req: GenerateRequest,
    render: Callable[[Chunk], dict[str, Any]],
    stream: bool | None,
    chunks: AsyncGenerator[Chunk, None] | None = None,
) -> Response:
    """Stream NDJSON, or answer one object for ``stream: false`` and load/unload."""
    chunks = observed(request, req.model, chunks or service_of(request).generate(req))
    if stream is not False and not req.is_load_only:
        return await ndjson_response(request, chunks, render, Route.GENERATE, reply_headers)
    merged = GeneratedReply.of(await unless_disconnected(request, _collect(chunks))).as_chunk()
    return json_response(render(merged), headers=reply_headers(merged))


def _rendered(request: Request, req: GenerateRequest, out: dict[str, Any]) -> Response:
    """Ollama's ``_debug_render_only`` answer: the prompt, not a generation."""
    prompt, images = service_of(request).render(req)
    info: dict[str, Any] = {"rendered_template": prompt}
    if images:
        info["image_count"] = images
    return json_response({"model": req.model, "created_at": now(), **out, "_debug_info": info})


@router.post("/api/generate", openapi_extra=json_body(GenerateBody))
async def generate(request: Request) -> Response:
    body = decode(GenerateBody, await request.body())
    if not body.model_name:
        raise ApiError(404, "model '' not found")
    req = generate_request(body)
    if body.debug_render_only and not req.is_load_only:
        return _rendered(request, req, {"response": "", "done": False})
    return await _respond(request, req, partial(generate_chunk, model=body.model_name), body.stream)


@router.post("/api/chat", openapi_extra=json_body(ChatBody))
async def chat(request: Request) -> Response:
    body = decode(ChatBody, await request.body())
    if not body.model_name:
        raise ApiError(400, "model is required")
    req = chat_request(body)
    if body.debug_render_only and not req.is_load_only:
        message = {"role": "", "content": ""}
        return _rendered(request, req, {"message": message, "done": False})
    render = partial(chat_chunk, model=body.model_name)
    if body.conversation is None:
        return await _respond(request, req, render, body.stream)
    if not req.messages:
        raise ApiError(400, "messages are required with conversation")
    chunks = _conversation_turn(request, body.conversation, req)
    return await _respond(
        request, req, partial(_with_conversation, render, body.conversation), body.stream, chunks
    )


def _with_conversation(
    render: Callable[[Chunk], dict[str, Any]], conversation: str, chunk: Chunk
) -> dict[str, Any]:
    """The final chunk echoes the conversation id (llamaport extension)."""
    out = render(chunk)
    if chunk.done:
        out["conversation"] = conversation
    return out


def _conversation_turn(
    request: Request, conversation: str, req: GenerateRequest
) -> AsyncGenerator[Chunk, None]:
    """Stored history, then the request's messages; both and the reply are stored."""
    history: History = request.app.state.history  # turn() waits for its store
    new = req.messages or []

    async def start() -> AsyncGenerator[Chunk, None]:
        nonlocal new
        page = await history.call(history.store.list_items, conversation)
        past = to_messages([item.data for item in page.items])
        new = link_tool_results(past + new)[len(past) :]  # results keep their calls' ids
        turn = dataclasses.replace(req, messages=past + new, affinity=conversation, stored=True)
        return service_of(request).generate(turn)

    def save(reply: GeneratedReply) -> None:
        outputs = output_items(reply, new_item_id("message"))
        items = turn_items(from_messages(new), outputs, req.model, reply)
        history.store.add_items(conversation, items)

    return history.turn(conversation, start, save)


@router.post("/api/embed", openapi_extra=json_body(EmbedBody))
async def embed(request: Request) -> Response:
    body = decode(EmbedBody, await request.body())
    if not body.model:
        raise ApiError(400, "model is required")
    req = embed_request(body)
    result = noted(req.model, await unless_disconnected(request, service_of(request).embed(req)))
    return json_response(
        {
            "model": body.model,
            "embeddings": result.embeddings,
            "total_duration": result.total_duration,
            "load_duration": result.load_duration,
            "prompt_eval_count": result.prompt_eval_count,
        },
        served_by(result.upstream),
    )


@router.post("/api/embeddings", openapi_extra=json_body(EmbeddingsBody))
async def embeddings(request: Request) -> Response:
    body = decode(EmbeddingsBody, await request.body())
    if not body.model:
        raise ApiError(400, "model is required")
    req = embeddings_request(body)
    result = noted(req.model, await unless_disconnected(request, service_of(request).embed(req)))
    embedding = result.embeddings[0] if result.embeddings else []
    return json_response({"embedding": embedding}, served_by(result.upstream))


@router.post("/api/tokenize", openapi_extra=json_body(TokenizeBody))
async def tokenize(request: Request) -> Response:
    """llamaport extension: count a prompt's tokens against the context it will run in."""
    body = decode(TokenizeBody, await request.body())
    if not body.model:
        raise ApiError(400, "model is required")
    if body.prompt is None and body.messages is None:
        raise ApiError(400, "prompt or messages is required")
    req = tokenize_request(body)
    tokens, num_ctx = await unless_disconnected(request, service_of(request).tokenize(req))
    return json_response(
        {"model": body.model, "tokens": tokens, "count": len(tokens), "num_ctx": num_ctx}
    )


@router.post("/api/detokenize", openapi_extra=json_body(DetokenizeBody))
async def detokenize(request: Request) -> Response:
    """llamaport extension: the text that token ids decode to."""
    body = decode(DetokenizeBody, await request.body())
    if not body.model:
        raise ApiError(400, "model is required")
    work = service_of(request).detokenize(tokenize_request(body), body.tokens)
    text = await unless_disconnected(request, work)
    return json_response({"model": body.model, "text": text})
