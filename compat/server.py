"""Serving the app with uvicorn, and stopping it gracefully.

On SIGTERM or SIGINT the server stops accepting connections and lets running
requests finish for ``LLAMAPORT_SHUTDOWN_GRACE`` seconds. When that passes,
every generation still running is ended with a
:class:`~llamaport.runtime.errors.ShuttingDown` error, which each stream
sends as its in-band error line (NDJSON) or error event (SSE); then the
lifespan unloads the engines and closes SQLite, and the process exits 0.
A second signal exits at once.

Once it listens, every object made so far (some 86,000: the app, its modules
and models) is moved out of the garbage collector's reach (``gc.freeze()``, as
vLLM does). Before, a full collection walked them all: 45 ms once in about 300
requests, 0.14 ms of the server's CPU per request on average.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
import os
import signal
import socket
import sys
from collections.abc import Callable, Generator
from types import FrameType

import uvicorn
from fastapi import FastAPI
from sse_starlette.sse import AppStatus

from llamaport.compat.app import create_app
from llamaport.runtime.engine.spawn import Spawner
from llamaport.runtime.proxy import ConfigError
from llamaport.storage.settings import Settings

__all__ = ["serve"]

_BACKSTOP_SECONDS = 5.0
"""After the grace period, how long ended streams get to flush their error
line before uvicorn cancels whatever is left (a request that never yields)."""
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_IDLE_CONNECTION_SECONDS = 600
"""How long an idle keep-alive connection stays open: longer than clients keep one
in their pools (httpx 5 s, aiohttp 15 s, Go 90 s), so the client closes it first.
With uvicorn's 5 s, an httpx client (ollama-python's) that reused a connection
idle for about 5 s raced the server's close and failed with "Server
disconnected without sending a response" (1 in 50 tries at 4.99 s). Ollama's
Go server never closes an idle connection."""


class _GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, grace: float, on_grace: Callable[[], None]) -> None:
        super().__init__(config)
        self._grace = grace
        self._on_grace = on_grace

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:
            os._exit(128 + sig)  # a second signal: the operator wants it gone now
        self.should_exit = True

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Uvicorn's own re-raises the signal once stopped, so the exit status
        would be the signal's; a graceful stop here exits 0."""
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        gc.freeze()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        deadline = asyncio.get_running_loop().call_later(self._grace, self._on_grace)
        try:
            await super().shutdown(sockets)
        finally:
            deadline.cancel()


def _end_requests(app: FastAPI) -> None:
    service = getattr(app.state, "service", None)
    if service is not None:
        service.end_requests()


def serve(settings: Settings, spawner: Spawner | None = None) -> int:
    """Run the HTTP server in the foreground until a signal stops it; 0 when it
    stopped gracefully. ``spawner`` gives engines their processes; the caller
    closes it (which ends a spare no load took)."""
    # sse-starlette would otherwise cut every SSE stream the moment a signal
    # arrives; the grace period here ends them, with an error event.
    AppStatus.enable_automatic_graceful_drain = False
    try:
        settings.models.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = "it is not a folder" if isinstance(exc, FileExistsError) else exc.strerror
        sys.stderr.write(f"Error: the model store {settings.models} cannot be used: {why}\n")
        return 1
    try:
        app = create_app(settings, spawner)
    except ConfigError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["loggers"]["llamaport"] = {"handlers": ["default"], "level": "INFO"}
    # loop and http stay "auto": uvloop and httptools (dependencies) when they
    # import. Against asyncio's loop and h11 they took the proxy hop's first
    # token from about +5.5 ms to +2.5-3.5 ms (benchmarks/bench_proxy.py).
    config = uvicorn.Config(
        app,
        host=settings.host.bind_host,
        port=settings.host.port,
        log_level="info",
        log_config=log_config,
        access_log=False,  # the app writes one JSON line per request (compat/metrics.py)
        timeout_keep_alive=_IDLE_CONNECTION_SECONDS,
        timeout_graceful_shutdown=int(settings.shutdown_grace + _BACKSTOP_SECONDS),
    )
    server = _GracefulServer(config, settings.shutdown_grace, lambda: _end_requests(app))
    server.run()
    return 0
