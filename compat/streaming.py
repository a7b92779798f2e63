"""NDJSON and SSE framing, and the rule for errors around the first byte.

An error raised before anything was sent becomes a status plus an error body;
one raised after becomes a final in-band ``{"error": ...}`` line (NDJSON) or
``data:`` frame (SSE), since the 200 status is already on the wire (Ollama's
``streamResponse``). Starlette's ``StreamingResponse`` and sse-starlette's
``EventSourceResponse`` listen for the client leaving and cancel the producer,
which closes the runtime's iterator and frees the engine sequence.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from typing import Any, TypeVar

import anyio
from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from llamaport.compat.errors import (
    Route,
    error_body,
    error_response,
    openai_error_body,
    openai_error_response,
)
from llamaport.runtime.errors import RequestCanceled
from llamaport.runtime.types import Chunk
from llamaport.storage.progress import Progress

__all__ = [
    "CLOSED_FIELD",
    "CLOSED_HEADER",
    "SSE_DONE",
    "UPSTREAM_HEADER",
    "WARNING_HEADER",
    "collected_headers",
    "dumps",
    "json_response",
    "named_sse_frame",
    "ndjson_response",
    "progress_response",
    "reply_headers",
    "served_by",
    "sse_frame",
    "sse_response",
    "unless_disconnected",
]

T = TypeVar("T")

NDJSON = "application/x-ndjson"
SSE_DONE = b"data: [DONE]\n\n"
"""OpenAI's terminator; the SDK stops reading at it."""
_SSE_PING_SECONDS = 15
"""Keep-alive ``:`` comments for proxies; every SSE parser skips them."""


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
"""One encoder for every chunk: ``json.dumps`` with options builds a new one per call."""


def dumps(obj: Any) -> bytes:
    return _ENCODER.encode(obj).encode() + b"\n"


CLOSED_HEADER = "X-Llamaport-Closed"
"""``json`` on a reply whose document the engine closed at the token limit."""
CLOSED_FIELD = "llamaport_closed"
"""The same in the body (``true``), for streams whose headers went out first:
the final native chunk, and the finishing choice on ``/v1``."""


UPSTREAM_HEADER = "X-Llamaport-Upstream"
"""Which link of a routed model's chain served the reply (``local``: this server)."""
WARNING_HEADER = "X-Llamaport-Warning"
"""Notes on the request (an option dropped or clamped), ``; ``-separated."""


def served_by(upstream: str | None) -> dict[str, str]:
    return {UPSTREAM_HEADER: upstream} if upstream else {}


def reply_headers(chunk: Chunk) -> dict[str, str]:
    """Warnings, the closed mark and the upstream travel as headers, where every
    client can ignore them safely."""
    headers = served_by(chunk.upstream)
    if chunk.warnings:
        headers[WARNING_HEADER] = "; ".join(chunk.warnings)
    if chunk.closed:
        headers[CLOSED_HEADER] = "json"
    return headers


def collected_headers(chunks: Sequence[Chunk]) -> dict[str, str]:
    """:func:`reply_headers` of a whole collected reply (every choice of ``n``): all
    warnings, closed if any part was, each upstream that served a part."""
    upstreams = ", ".join(dict.fromkeys(c.upstream for c in chunks if c.upstream))
    warnings = [w for c in chunks for w in c.warnings]
    closed = any(c.closed for c in chunks)
    return reply_headers(Chunk(warnings=warnings, closed=closed, upstream=upstreams or None))


async def ndjson_response(
    request: Request,
    items: AsyncGenerator[T, None],
    render: Callable[[T], dict[str, Any]],
    route: Route = Route.GENERATE,
    headers: Callable[[T], dict[str, str]] | None = None,
) -> Response:
    """Stream ``render(item)`` lines, peeking the first item to pick the status.

    One watcher covers the whole request: the peek (loading and prefill) and
    then the stream (:class:`_Stream`). ``headers(first)`` adds response
    headers known from the first item.
    """
    gone = asyncio.ensure_future(_client_gone(request))
    try:
        first = await unless_disconnected(request, anext(items), gone)
    except StopAsyncIteration:
        gone.cancel()
        return StreamingResponse(iter(()), media_type=NDJSON)
    except Exception as exc:
        gone.cancel()
        return error_response(exc, route)

    async def body() -> AsyncGenerator[bytes, None]:
        try:
            yield dumps(render(first))
            async for item in items:
                yield dumps(render(item))
        except Exception as exc:
            yield dumps(error_body(exc, route))
        finally:
            await items.aclose()

    extra = headers(first) if headers is not None else {}
    return _Stream(body(), gone, media_type=NDJSON, headers=extra)


class _Stream(Response):
    """Starlette's ``StreamingResponse`` without its task group per response.

    The body is sent from the request's own task; ``gone`` (the watcher that
    covered the peek) cancels that task if the client leaves first, which
    closes the body and so the runtime's iterator. Starlette starts the body
    in a task of its own and ends with a cancel that formats a task's repr;
    timed inside the proxy (bench_proxy, 1 stream), the first chunk took
    0.77 ms from the response start to its send that way and 0.28 ms this way.
    """

    def __init__(
        self,
        body: AsyncGenerator[bytes, None],
        gone: asyncio.Future[None],
        media_type: str,
        headers: dict[str, str],
    ) -> None:
        self._body = body
        self._gone = gone
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sender = asyncio.current_task()
        assert sender is not None
        sending = True

        def left(_: asyncio.Future[None]) -> None:
            if sending and not self._gone.cancelled():
                sender.cancel()

        self._gone.add_done_callback(left)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for chunk in self._body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not self._gone.done() or self._gone.cancelled():
                raise
            sender.uncancel()  # the client left: nothing more to send, nothing to report
        finally:
            sending = False
            self._gone.cancel()
            await self._body.aclose()


def _next(events: Iterator[Progress]) -> Progress | None:
    return next(events, None)


async def _drive(events: Iterator[Progress]) -> AsyncGenerator[Progress, None]:
    """Advance the blocking generator in a thread; close it however we stop."""
    try:
        while (event := await run_in_threadpool(_next, events)) is not None:
            yield event
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            # Shielded: on a disconnect this runs in a cancelled scope, and the
            # generator must still be closed to stop the work and free its locks.
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(close)


async def progress_response(events: Iterator[Progress], stream: bool) -> Response:
    """Ollama's progress replies (create, pull, push): ``{"status": ...}`` objects
    from a blocking generator, driven in a worker thread one event at a time.

    An error before the first line is a status plus body, a later one an
    in-band error line; a client that goes away closes the generator. With
    ``stream: false`` the reply is the last status, or the error with its
    status code, as Ollama's ``waitForStream`` answers.
    """
    driven = _drive(events)
    if not stream:
        last = Progress("success")
        try:
            async for event in driven:
                last = event
        except Exception as exc:
            return error_response(exc)
        return json_response(last.to_dict())
    try:
        first = await anext(driven)
    except StopAsyncIteration:
        return StreamingResponse(iter(()), media_type=NDJSON)
    except Exception as exc:
        return error_response(exc)

    async def body() -> AsyncIterator[bytes]:
        try:
            yield dumps(first.to_dict())
            async for event in driven:
                yield dumps(event.to_dict())
        except Exception as exc:
            yield dumps(error_body(exc))
        finally:
            await driven.aclose()

    return StreamingResponse(body(), media_type=NDJSON)


def sse_frame(obj: Any) -> bytes:
    """One SSE event, ``data: <json>`` and the blank line that ends it.

    Without the blank line the OpenAI SDK silently yields nothing.
    """
    return b"data: " + dumps(obj)[:-1] + b"\n\n"


def named_sse_frame(obj: dict[str, Any]) -> bytes:
    """An SSE event named by its ``type`` (``event: response.created``), as the
    Responses API sends them."""
    return f"event: {obj['type']}\n".encode() + sse_frame(obj)


def _error_frames(exc: Exception) -> list[dict[str, Any]]:
    return [openai_error_body(exc)]


async def sse_response(
    request: Request,
    items: AsyncGenerator[T, None],
    render: Callable[[T], Iterable[dict[str, Any]]],
    tail: Callable[[], Iterable[dict[str, Any]]],
    headers: Callable[[T], dict[str, str]] | None = None,
    *,
    frame: Callable[[dict[str, Any]], bytes] = sse_frame,
    fail: Callable[[Exception], Iterable[dict[str, Any]]] = _error_frames,
    done: bytes = SSE_DONE,
) -> Response:
    """Stream OpenAI SSE: ``render(item)`` frames, then ``tail()``, then ``done``.

    Like :func:`ndjson_response` it peeks the first item while watching for a
    disconnect, so an error before the first byte is a status plus OpenAI's
    envelope. A later error is sent as ``fail(exc)`` frames, by default one
    ``data: {"error": ...}`` (the SDK raises ``APIError`` on it), and the
    stream ends without ``done``. ``items`` is closed however the stream ends.
    The Responses API names its events (``frame=named_sse_frame``), reports
    errors as ``response.failed`` and sends no ``[DONE]``.
    """
    try:
        first = [await unless_disconnected(request, anext(items))]
    except StopAsyncIteration:
        first = []
    except Exception as exc:
        return openai_error_response(exc)

    async def body() -> AsyncIterator[bytes]:
        try:
            for item in first:
                for obj in render(item):
                    yield frame(obj)
            if first:
                async for item in items:
                    for obj in render(item):
                        yield frame(obj)
            for obj in tail():
                yield frame(obj)
            if done:
                yield done
        except Exception as exc:
            for obj in fail(exc):
                yield frame(obj)
        finally:
            await items.aclose()

    extra = headers(first[0]) if first and headers is not None else {}
    return EventSourceResponse(body(), headers=extra, sep="\n", ping=_SSE_PING_SECONDS)


async def _client_gone(request: Request) -> None:
    """Returns when the client has gone away. After the body is read, the next
    ASGI ``receive`` only returns when the client disconnects."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(
    request: Request, work: Awaitable[T], gone: asyncio.Future[None] | None = None
) -> T:
    """Await ``work`` but cancel it if the client goes away first, so a vanished
    client is noticed even while the engine is still prefilling. ``gone`` is a
    watcher the caller keeps running afterwards (:func:`ndjson_response`);
    without one, a watcher lives only as long as ``work``."""
    task = asyncio.ensure_future(work)
    watcher = gone if gone is not None else asyncio.ensure_future(_client_gone(request))
    try:
        done, _ = await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if gone is None:
            watcher.cancel()
    if task not in done:
        task.cancel()
        raise RequestCanceled()
    return task.result()


def json_response(obj: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(obj, headers=headers, media_type="application/json; charset=utf-8")
