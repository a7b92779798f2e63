"""OpenAI's Responses API: ``POST /v1/responses``, ``GET`` and ``DELETE /v1/responses/{id}``.

A response runs through the one core (:meth:`Service.generate`), stateless or
with history from a ``conversation`` (whose turns are serialised and stored
there) or a ``previous_response_id`` chain. With ``store`` (the default) the
response is saved and can be retrieved, chained from, or deleted. A stream
cut off by the client is stored with what was generated, ``incomplete``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncGenerator, AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response

from llamaport.compat.errors import ApiError
from llamaport.compat.history import History, ready_history
from llamaport.compat.metrics import observed
from llamaport.compat.openai.items import (
    JSONObject,
    normalize_items,
    to_messages,
    turn_items,
)
from llamaport.compat.openai.protocol import ResponsesBody, decode
from llamaport.compat.openai.responses_translate import (
    ResponseRun,
    ResponseStream,
    conversation_id,
    settings,
)
from llamaport.compat.openapi import json_body
from llamaport.compat.state import service_of
from llamaport.compat.streaming import (
    collected_headers,
    json_response,
    named_sse_frame,
    reply_headers,
    sse_response,
    unless_disconnected,
)
from llamaport.runtime.reply import GeneratedReply
from llamaport.runtime.types import Chunk, Message

__all__ = ["router"]

router = APIRouter(prefix="/v1/responses")


def _save(
    history: History, run: ResponseRun, items: list[JSONObject], reply: GeneratedReply
) -> None:
    """Blocking: in a conversation the turn's items, always (the conversation is the
    state); the response itself only with ``store``."""
    body = run.finish(reply)
    turn = turn_items(items, body["output"], run.body.model, reply)
    if run.body.store is not False:
        history.store.save_response(body, items, turn if run.conversation else None)
    elif run.conversation is not None:
        history.store.add_items(run.conversation, turn)


def _affinity(run: ResponseRun, chain: list[JSONObject]) -> str | None:
    """The conversation's id, or the key of the response chain (:func:`_chain_key`)."""
    if run.conversation is not None:
        return run.conversation
    return _chain_key(chain)


def _chain_key(chain: list[JSONObject]) -> str | None:
    """The id of a response chain's first item, which every later response of the
    chain has first in its history too."""
    first = chain[0].get("id") if chain else None
    return first if isinstance(first, str) else None


def _stored(run: ResponseRun) -> bool:
    """A turn of a stored conversation: in a conversation, continuing a stored
    response, or stored itself (a chain's next turn continues it)."""
    body = run.body
    return (
        run.conversation is not None or bool(body.previous_response_id) or body.store is not False
    )


def _turn(
    request: Request, run: ResponseRun, items: list[JSONObject]
) -> AsyncGenerator[Chunk, None]:
    history: History = request.app.state.history  # turn() waits for its store
    base = settings(run.body)

    async def start() -> AsyncGenerator[Chunk, None]:
        past: list[JSONObject] = []
        if run.conversation is not None:
            page = await history.call(history.store.list_items, run.conversation)
            past = [item.data for item in page.items]
        elif run.body.previous_response_id is not None:
            past = await history.call(history.store.response_chain, run.body.previous_response_id)
        head = (
            [Message(role="system", content=run.body.instructions)] if run.body.instructions else []
        )
        messages = head + to_messages(past + items)
        turn = dataclasses.replace(
            base, messages=messages, affinity=_affinity(run, past + items), stored=_stored(run)
        )
        return service_of(request).generate(turn)

    return history.turn(run.conversation, start, lambda reply: _save(history, run, items, reply))


async def _collect(chunks: AsyncIterator[Chunk]) -> list[Chunk]:
    return [chunk async for chunk in chunks]


@router.post("", openapi_extra=json_body(ResponsesBody))
async def create_response(request: Request) -> Response:
    body = decode(ResponsesBody, await request.body())
    conversation = conversation_id(body)
    if body.input is None:
        raise ApiError(400, "Missing required parameter: 'input'.", "input")
    items = normalize_items(body.input, "input")
    run = ResponseRun(body, int(time.time()), conversation)
    chunks = observed(request, run.body.model, _turn(request, run, items))
    if body.stream:
        stream = ResponseStream(run)
        return await sse_response(
            request,
            chunks,
            stream.render,
            lambda: [],
            reply_headers,
            frame=named_sse_frame,
            fail=stream.fail,
            done=b"",
        )
    collected = await unless_disconnected(request, _collect(chunks))
    assert run.final is not None, "a finished turn is stored before it is answered"
    return json_response(run.final, headers=collected_headers(collected))


@router.get("/{response_id}")
async def retrieve_response(request: Request, response_id: str) -> Response:
    history = await ready_history(request)
    record = await history.call(history.store.get_response, response_id)
    return json_response(record.body)


@router.delete("/{response_id}")
async def delete_response(request: Request, response_id: str) -> Response:
    """The chain's KV files go too: the chain's later turns wrote them, and they hold
    this response's text."""
    history = await ready_history(request)
    chain = await history.call(history.store.response_chain, response_id)
    await history.call(history.store.delete_response, response_id)
    await service_of(request).forget(_chain_key(chain) or "")
    return json_response({"id": response_id, "object": "response.deleted", "deleted": True})


@router.get("/{response_id}/input_items")
async def input_items(request: Request, response_id: str) -> Response:
    history = await ready_history(request)
    record = await history.call(history.store.get_response, response_id)
    data = record.input_items
    return json_response(
        {
            "object": "list",
            "data": data,
            "first_id": data[0].get("id", "") if data else "",
            "last_id": data[-1].get("id", "") if data else "",
            "has_more": False,
        }
    )
