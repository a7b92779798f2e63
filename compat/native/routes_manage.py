"""Ollama's model-management routes: blobs, create, copy, delete.

Uploads stream straight into the store (hashed while written, renamed into
place only when the digest matches), under their own size limit. Create
checks everything it can before the first byte of the reply, so bad input is
a 4xx with nothing written;
the work itself (copying layers, quantizing) runs off the event loop and
streams Ollama's progress lines.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from llamaport.compat.client import CopyBody, CreateBody, DeleteBody
from llamaport.compat.errors import ApiError
from llamaport.compat.native.protocol import decode
from llamaport.compat.openapi import BINARY_BODY, json_body
from llamaport.compat.state import service_of
from llamaport.compat.streaming import progress_response
from llamaport.runtime.errors import RequestCanceled
from llamaport.runtime.options import validate_options
from llamaport.runtime.prompt.gotemplate import check_template
from llamaport.storage.create import CreateRequest, plan_create, run_create
from llamaport.storage.errors import CorruptModel, CreateError, InvalidModelName, ModelNotFound
from llamaport.storage.modelfile import parse_modelfile
from llamaport.storage.names import Name, parse_name
from llamaport.storage.params import (
    DEPRECATED_PARAMETERS,
    OPTION_TYPES,
    ParameterError,
    parse_parameter,
)
from llamaport.storage.store import Store

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter()


def _store(request: Request) -> Store:
    return service_of(request).store


def _go_quote(text: str) -> str:
    """Go's ``%q``, which Ollama uses to quote names in its messages."""
    return json.dumps(text, ensure_ascii=False)


def _name(text: str, field: str) -> Name:
    try:
        return parse_name(text)
    except InvalidModelName:
        raise ApiError(400, f"{field} {_go_quote(text)} is invalid") from None


# -- blobs ---------------------------------------------------------------------


class _BodyReader:
    """A blocking ``read()`` over the request body, for the thread writing the blob.

    Each call waits for the event loop to deliver the next chunk, so the
    upload streams to disk without being held in memory. A client that goes
    away raises in the writer, which then removes its temp file.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, chunks: AsyncIterator[bytes]) -> None:
        self._loop = loop
        self._chunks = chunks

    async def _next(self) -> bytes:
        async for chunk in self._chunks:
            if chunk:
                return chunk
        return b""

    def read(self, size: int, /) -> bytes:
        del size  # whole chunks as they arrive; the writer only needs b"" at the end
        return asyncio.run_coroutine_threadsafe(self._next(), self._loop).result()


@router.head("/api/blobs/{digest}")
async def head_blob(request: Request, digest: str) -> Response:
    if _store(request).has_blob(digest):
        return Response(status_code=200)
    raise ApiError(404, f"blob {_go_quote(digest)} not found")


@router.post("/api/blobs/{digest}", openapi_extra=BINARY_BODY)
async def create_blob(request: Request, digest: str) -> Response:
    """201 once stored, 200 if it already was; a digest mismatch keeps nothing.

    The body streams to disk whatever its size (no JSON body limit here). A
    ``Content-Length`` past ``LLAMAPORT_MAX_BLOB_BYTES`` is a 413 and one past
    the free disk space a 507, both before a byte is written.
    """
    store = _store(request)
    if store.has_blob(digest):
        store.touch_blob(digest)
        return Response(status_code=200)
    declared = request.headers.get("content-length", "")
    size = int(declared) if declared.isdigit() else None
    limit = service_of(request).settings.max_blob_bytes
    reader = _BodyReader(asyncio.get_running_loop(), request.stream())
    try:
        await asyncio.to_thread(store.write_blob_stream, reader, digest, size=size, limit=limit)
    except ClientDisconnect:
        raise RequestCanceled() from None  # the writer already removed its temp file
    return Response(status_code=201)


# -- copy and delete -------------------------------------------------------------


@router.post("/api/copy", openapi_extra=json_body(CopyBody))
async def copy(request: Request) -> Response:
    body = decode(CopyBody, await request.body())
    _name(body.source, "source")
    _name(body.destination, "destination")
    try:
        await asyncio.to_thread(_store(request).copy, body.source, body.destination)
    except ModelNotFound:
        raise ApiError(404, f"model {_go_quote(body.source)} not found") from None
    return Response(status_code=200)


@router.delete("/api/delete", openapi_extra=json_body(DeleteBody))
async def delete(request: Request) -> Response:
    """Unload the model, remove its manifest and the blobs nothing else uses."""
    body = decode(DeleteBody, await request.body())
    name = body.model_name
    _name(name, "name")
    service = service_of(request)
    service.check_local(name, "delete")
    try:
        record = service.store.get(name)
    except ModelNotFound:
        raise ApiError(404, f"model '{name}' not found") from None
    except CorruptModel:
        record = None  # nothing of it can be loaded; delete what is there
    if record is not None:
        await service.scheduler.unload(record)
    await asyncio.to_thread(service.store.delete, name)
    if not service.settings.noprune:
        await asyncio.to_thread(service.store.collect_garbage)
    return Response(status_code=200)


# -- create --------------------------------------------------------------------


def _parameter(key: str, value: Any) -> Any:
    """One typed parameter; text is typed as a Modelfile's PARAMETER would be."""
    if key not in OPTION_TYPES:
        raise ApiError(400, f"unknown parameter '{key}'")
    if isinstance(value, str) and OPTION_TYPES[key] is not list:
        try:
            return parse_parameter(key, [value])
        except ParameterError as exc:
            raise ApiError(400, str(exc)) from None
    return validate_options({key: value})[key]


def _parameters(raw: dict[str, Any] | None) -> dict[str, Any]:
    """Check ``parameters`` against the option table; deprecated names are dropped."""
    items = (raw or {}).items()
    return {
        k: _parameter(k, v) for k, v in items if v is not None and k not in DEPRECATED_PARAMETERS
    }


def _blob_ref(value: str, instruction: str) -> str:
    """``@sha256:...``: how pre-0.5.5 clients point a Modelfile at an uploaded blob."""
    if not value.startswith("@"):
        raise CreateError(
            f"{instruction} {value}: upload the file with POST /api/blobs and "
            "refer to it as @sha256:<digest>"
        )
    return value[1:]


def _legacy_request(body: CreateBody) -> CreateRequest:
    """The old ``modelfile`` text form, parsed with the one Modelfile parser."""
    modelfile = parse_modelfile(body.modelfile or "")
    files: dict[str, str] = {}
    base = ""
    for index, value in enumerate(modelfile.froms):
        if value.startswith(("@", "/", ".", "~")) or value.endswith(".gguf"):
            files[f"model-{index}.gguf"] = _blob_ref(value, "FROM")
        else:
            base = value
    adapters = {
        f"adapter-{index}.gguf": _blob_ref(value, "ADAPTER")
        for index, value in enumerate(modelfile.adapters)
    }
    return CreateRequest(
        name=body.model_name,
        from_=base if not files else "",
        files=files,
        adapters=adapters,
        template=modelfile.template,
        system=modelfile.system,
        parameters=modelfile.parameters,
        messages=modelfile.messages,
        license=modelfile.licenses,
        quantize=body.quantize or body.quantization or "",
        requires=modelfile.requires or "",
    )


def _create_request(body: CreateBody) -> CreateRequest:
    if body.modelfile is not None:
        return _legacy_request(body)
    licenses = [body.license] if isinstance(body.license, str) else body.license or []
    messages = [{"role": m.role, "content": m.content or ""} for m in body.messages or []]
    return CreateRequest(
        name=body.model_name,
        from_=body.from_ or "",
        files=body.files or {},
        adapters=body.adapters or {},
        template=body.template,
        system=body.system,
        parameters=_parameters(body.parameters),
        messages=messages,
        license=licenses,
        quantize=body.quantize or body.quantization or "",
        requires=body.requires or "",
    )


@router.post("/api/create", openapi_extra=json_body(CreateBody))
async def create(request: Request) -> Response:
    """Check the request (a 4xx before any byte), then build and stream progress."""
    body = decode(CreateBody, await request.body())
    parse_name(body.model_name)
    service_of(request).check_local(body.model_name, "create")
    req = _create_request(body)
    if req.template:
        check_template(req.template)
    service = service_of(request)
    store = service.store
    plan = await asyncio.to_thread(plan_create, store, req)
    events = run_create(store, plan, prune=not service.settings.noprune)
    return await progress_response(events, body.stream is not False)
