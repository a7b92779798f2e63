"""``/api/pull`` and ``/api/push``: registry transfers streamed as NDJSON progress.

The transfer itself is :mod:`llamaport.storage.registry`, a blocking
generator; here it is driven from a worker thread, one event at a time, so
the event loop never waits on the network or the disk. A client that goes
away closes the generator, which stops the transfer (a pull keeps its
partial files to resume). With ``stream: false`` the reply is the last
status, or the error with its status code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response

from llamaport.compat.client import RegistryBody
from llamaport.compat.errors import ApiError
from llamaport.compat.native.protocol import decode
from llamaport.compat.openapi import json_body
from llamaport.compat.state import service_of
from llamaport.compat.streaming import progress_response
from llamaport.storage.registry import Progress, pull_model, push_model

__all__ = ["router"]

router = APIRouter()

Transfer = Callable[..., Iterator[Progress]]
"""``pull_model`` or ``push_model``."""


async def _transfer(
    request: Request, start: Transfer, *, require_model: bool, action: str
) -> Response:
    body = decode(RegistryBody, await request.body())
    if require_model and not body.model_name:
        raise ApiError(400, "model is required")
    service = service_of(request)
    service.check_local(body.model_name, action)
    events = start(service.store, body.model_name, service.settings, insecure=bool(body.insecure))
    return await progress_response(events, body.stream is not False)


@router.post("/api/pull", openapi_extra=json_body(RegistryBody))
async def pull(request: Request) -> Response:
    return await _transfer(request, pull_model, require_model=False, action="pull")


@router.post("/api/push", openapi_extra=json_body(RegistryBody))
async def push(request: Request) -> Response:
    return await _transfer(request, push_model, require_model=True, action="push")
