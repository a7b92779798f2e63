"""``/api/pull`` and ``/api/push``: registry transfers streamed as NDJSON progress.

The transfer itself is :mod:`llamaport.storage.registry`, a blocking
generator; here it is driven from a worker thread, one event at a time, so
the event loop never waits on the network or the disk. A client that goes
away closes the generator, which stops the transfer (a pull keeps its
partial files to resume). With ``stream: false`` the reply is the last
status, or the error with its status code.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from llamaport.compat.errors import ApiError, error_body, error_response
from llamaport.compat.native.protocol import RegistryBody, decode
from llamaport.compat.streaming import NDJSON, dumps, json_response
from llamaport.runtime.service import Service
from llamaport.storage.registry import Progress, pull_model, push_model

__all__ = ["router"]

router = APIRouter()

Transfer = Callable[..., Iterator[Progress]]
"""``pull_model`` or ``push_model``."""


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
            # generator must still be closed to stop the transfer and free its locks.
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(close)


async def _progress_response(events: Iterator[Progress], stream: bool) -> Response:
    driven = _drive(events)
    if not stream:
        last = Progress("success")
        async for event in driven:
            last = event
        return json_response(last.to_dict())
    try:
        first = await anext(driven)
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


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


async def _transfer(request: Request, start: Transfer, *, require_model: bool) -> Response:
    body = decode(RegistryBody, await request.body())
    if require_model and not body.model_name:
        raise ApiError(400, "model is required")
    service = _service(request)
    events = start(service.store, body.model_name, service.settings, insecure=bool(body.insecure))
    return await _progress_response(events, body.stream is not False)


@router.post("/api/pull")
async def pull(request: Request) -> Response:
    return await _transfer(request, pull_model, require_model=False)


@router.post("/api/push")
async def push(request: Request) -> Response:
    return await _transfer(request, push_model, require_model=True)
