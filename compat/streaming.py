"""NDJSON framing, and the rule for errors around the first byte.

An error raised before anything was sent becomes a status plus an error body;
one raised after becomes a final in-band ``{"error": ...}`` line, since the
200 status is already on the wire (Ollama's ``streamResponse``). Starlette's
``StreamingResponse`` listens for the client leaving and cancels the producer,
which closes the runtime's iterator and frees the engine sequence.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from llamaport.compat.errors import Route, error_body, error_response
from llamaport.runtime.errors import RequestCanceled
from llamaport.runtime.types import Chunk

__all__ = ["dumps", "json_response", "ndjson_response", "unless_disconnected", "warning_headers"]

T = TypeVar("T")

NDJSON = "application/x-ndjson"


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def warning_headers(chunk: Chunk) -> dict[str, str]:
    """Warnings travel as headers, where every client can ignore them safely."""
    if not chunk.warnings:
        return {}
    return {"X-Llamaport-Warning": "; ".join(chunk.warnings)}


async def ndjson_response(
    request: Request,
    chunks: AsyncGenerator[Chunk, None],
    render: Callable[[Chunk], dict[str, Any]],
    route: Route,
) -> Response:
    """Stream ``render(chunk)`` lines, peeking the first chunk to pick the status.

    The peek covers loading and prefill, so it watches for the client leaving
    too; once streaming, Starlette does.
    """
    try:
        first = await unless_disconnected(request, anext(chunks))
    except StopAsyncIteration:
        return StreamingResponse(iter(()), media_type=NDJSON)
    except Exception as exc:
        return error_response(exc, route)

    async def body() -> AsyncIterator[bytes]:
        try:
            yield dumps(render(first))
            async for chunk in chunks:
                yield dumps(render(chunk))
        except Exception as exc:
            yield dumps(error_body(exc, route))
        finally:
            await chunks.aclose()

    return StreamingResponse(body(), media_type=NDJSON, headers=warning_headers(first))


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await ``work`` but cancel it if the client goes away first.

    After the body is read, the next ASGI ``receive`` only returns when the
    client disconnects, so a watcher on it notices a vanished client even
    while the engine is still prefilling.
    """
    task = asyncio.ensure_future(work)

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(watch())
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if task not in done:
        task.cancel()
        raise RequestCanceled()
    return task.result()


def json_response(obj: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(obj, headers=headers, media_type="application/json; charset=utf-8")
