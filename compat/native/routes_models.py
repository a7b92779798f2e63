"""Ollama's informational routes: ``/``, version, tags, ps, show."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from llamaport.compat.client import ShowBody
from llamaport.compat.errors import ApiError
from llamaport.compat.models_info import (
    model_capabilities,
    model_details,
    parameters_text,
    show_modelfile,
)
from llamaport.compat.native.protocol import decode
from llamaport.compat.openapi import json_body
from llamaport.compat.state import service_of
from llamaport.compat.streaming import json_response
from llamaport.compat.version import OLLAMA_API_VERSION, __version__
from llamaport.runtime.options import validate_options
from llamaport.runtime.scheduler import Runner
from llamaport.storage.errors import CorruptModel
from llamaport.storage.gguf_meta import read_gguf_info

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter()

_COPILOT = "GitHubCopilotChat/"
"""Copilot Chat names models by ``general.basename``; Ollama echoes the requested name there."""
_FOREVER = timedelta(days=365 * 292)
"""Ollama's keep_alive -1 prints an ``expires_at`` about 292 years ahead."""


@router.api_route("/", methods=["GET", "HEAD"])
async def root() -> Response:
    return PlainTextResponse("Ollama is running")


@router.api_route("/api/version", methods=["GET", "HEAD"])
async def version() -> Response:
    return json_response({"version": OLLAMA_API_VERSION, "llamaport": __version__})


@router.api_route("/api/tags", methods=["GET", "HEAD"])
async def tags(request: Request) -> Response:
    models = []
    store = service_of(request).store
    for record in store.list():
        try:
            info = store.gguf_info(record.model_path, record.short_name)
        except CorruptModel as exc:
            log.warning("skipping model %s: %s", record.short_name, exc)
            continue
        models.append(
            {
                "name": record.short_name,
                "model": record.short_name,
                "modified_at": record.modified_at.isoformat(),
                "size": record.size,
                "digest": record.digest,
                "details": model_details(record, info),
                "capabilities": model_capabilities(record, info),
            }
        )
    return json_response({"models": models + _remote(request, ps=False)})


def _remote(request: Request, ps: bool) -> list[dict[str, Any]]:
    """Routed models, marked with their upstreams (``/api/tags`` and ``/api/ps``)."""
    out = []
    for remote in service_of(request).remote_models():
        entry: dict[str, Any] = {
            "name": remote.name,
            "model": remote.name,
            "size": 0,
            "digest": "",
            "details": {},
            "remote_model": remote.upstream_model,
            "upstream": remote.upstreams[0],
            "upstreams": remote.upstreams,
        }
        if ps:
            entry.update(expires_at=(datetime.now().astimezone() + _FOREVER).isoformat())
            entry.update(size_vram=0, remote=True)
        else:
            entry["modified_at"] = datetime.now().astimezone().isoformat()
        out.append(entry)
    return out


def _remote_show(request: Request, name: str) -> dict[str, Any]:
    """``/api/show`` of a routed model: what llamaport knows, the upstream has the rest."""
    remote = service_of(request).remote_upstream(name)
    listed = [m for m in service_of(request).remote_models() if m.name == name]
    return {
        "modelfile": "",
        "parameters": "",
        "template": "",
        "details": {},
        "model_info": {},
        "capabilities": ["completion", "tools"],
        "remote_model": listed[0].upstream_model if listed else name,
        "upstream": remote,
    }


@router.get("/api/upstreams")
async def upstreams(request: Request) -> Response:
    """Each upstream's breaker state, outstanding requests and last error (never a key)."""
    return json_response({"upstreams": service_of(request).upstreams()})


def _expires(runner: Runner) -> str:
    now = datetime.now().astimezone()
    if runner.expires_at == float("inf"):
        return (now + _FOREVER).isoformat()
    return (now + timedelta(seconds=runner.expires_at - time.time())).isoformat()


@router.get("/api/ps")
async def ps(request: Request) -> Response:
    models = []
    for runner in service_of(request).running():
        record, info = runner.record, runner.info
        vram = info.model_size * info.n_gpu_layers // max(1, info.n_layer + 1)
        models.append(
            {
                "name": record.short_name,
                "model": record.short_name,
                "size": info.model_size,
                "digest": record.digest,
                "details": model_details(record, read_gguf_info(record.model_path)),
                "expires_at": _expires(runner),
                "size_vram": min(vram, info.model_size),
                "context_length": info.n_ctx,
            }
        )
    return json_response({"models": models + _remote(request, ps=True)})


@router.post("/api/show", openapi_extra=json_body(ShowBody))
async def show(request: Request) -> Response:
    body = decode(ShowBody, await request.body())
    if not body.model_name:
        raise ApiError(400, "model is required")
    if service_of(request).remote_upstream(body.model_name) is not None:
        return json_response(_remote_show(request, body.model_name))
    record = service_of(request).store.get(body.model_name)
    info = read_gguf_info(record.model_path)
    system = body.system or record.system
    shown_params = {**record.params, **validate_options(body.options)}
    out: dict[str, Any] = {
        "license": "\n".join(record.license),
        "modelfile": show_modelfile(record, system, shown_params),
        "parameters": parameters_text(record.params),
        "template": record.template or info.chat_template or "",
        "system": system or "",
        "details": model_details(record, info),
        "messages": [{"role": m["role"], "content": m["content"]} for m in record.messages],
        "model_info": info.shown_info(body.verbose is True),
    }
    if request.headers.get("user-agent", "").startswith(_COPILOT):
        out["model_info"]["general.basename"] = body.model_name
    if record.projectors:
        projector = read_gguf_info(record.projectors[0])
        out["projector_info"] = projector.shown_info(body.verbose is True)
    if body.verbose:
        out["tensors"] = [
            {"name": t.name, "type": t.type, "shape": list(t.shape)} for t in info.tensors
        ]
    out["capabilities"] = model_capabilities(record, info)
    out["modified_at"] = record.modified_at.isoformat()
    out["requires"] = record.config.get("requires") or ""
    kept = ("license", "modelfile", "parameters", "template", "model_info")
    return json_response({k: v for k, v in out.items() if v or k in kept})
