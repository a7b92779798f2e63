"""Request guards: Ollama's origin and DNS-rebinding checks, the API key and
the body-size limit.

A request whose ``Origin`` is not allowed gets a 403 with an empty body, and,
while the server listens on loopback only, so does a request whose ``Host``
is not local: a web page on another site can then neither read answers nor
reach the API through a rebound DNS name.

Beyond Ollama: with ``LLAMAPORT_API_KEY`` set, every route but ``/`` and the
static chat page under ``/ui`` (which asks for the key and sends it) wants
``Authorization: Bearer <key>`` (a 401 otherwise), and a JSON body larger
than ``LLAMAPORT_MAX_REQUEST_BYTES`` gets a 413 (blob uploads have their own
limit, see ``routes_manage``). Both answer in the envelope of
the route that was asked (OpenAI's on ``/v1``).
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import socket

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llamaport.compat.errors import ApiError, error_response_for

__all__ = [
    "BLOB_UPLOADS",
    "LOCAL_ORIGINS",
    "ApiKeyGuard",
    "BodyLimit",
    "RequestGuard",
    "origin_pattern",
]

LOCAL_ORIGINS = (
    r"https?://(localhost|127\.0\.0\.1|0\.0\.0\.0)(:\d+)?",
    r"(app|file|tauri|vscode-webview|vscode-file)://.*",
)
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal")


def origin_pattern(extra: tuple[str, ...]) -> str:
    """One regex for the built-in local origins plus ``LLAMAPORT_ORIGINS`` (``*`` wildcards)."""
    escaped = [re.escape(o).replace(r"\*", ".*") for o in extra]
    return "^(" + "|".join([*LOCAL_ORIGINS, *escaped]) + ")$"


def _host_is_local(host: str) -> bool:
    if host.startswith("["):
        name = host[1:].partition("]")[0]
    else:
        name = host.rpartition(":")[0] if host.count(":") == 1 else host
    name = name.lower()
    if name in ("", "localhost", socket.gethostname().lower()) or name.endswith(_LOCAL_SUFFIXES):
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_unspecified


class RequestGuard:
    """ASGI middleware applying both checks before anything else runs."""

    def __init__(self, app: ASGIApp, origins: str, check_host: bool) -> None:
        self.app = app
        self._origins = re.compile(origins)
        self._check_host = check_host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            foreign = origin is not None and not self._origins.match(origin)
            if foreign or (self._check_host and not _host_is_local(headers.get("host", ""))):
                await Response(status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _is_open(path: str) -> bool:
    return path in ("/", "/ui") or path.startswith("/ui/")


class ApiKeyGuard:
    """``Authorization: Bearer <key>`` on every route but ``/`` (the liveness check)
    and the static files of the chat page (``/ui``, which asks for the key)."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self._want = f"Bearer {key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _is_open(scope["path"]):
            given = Headers(scope=scope).get("authorization", "").encode()
            if not hmac.compare_digest(given, self._want):
                error = ApiError(
                    401,
                    "invalid or missing API key: send Authorization: Bearer <LLAMAPORT_API_KEY>",
                    code="invalid_api_key",
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await error_response_for(scope["path"], error)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"request body too large: the limit is {limit} bytes (LLAMAPORT_MAX_REQUEST_BYTES)",
    )


BLOB_UPLOADS = "/api/blobs/"
"""Where bodies are raw model files streamed to disk under their own limit
(``LLAMAPORT_MAX_BLOB_BYTES`` and the free space), not JSON held in memory."""


class BodyLimit:
    """A 413 for JSON bodies over ``limit`` bytes: at once when ``Content-Length``
    says so, else as soon as the streamed body passes the limit (the route's
    read raises, and the app's handlers answer). Blob uploads are exempt."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(BLOB_UPLOADS):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self._limit:
            await error_response_for(scope["path"], _too_large(self._limit))(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self._limit:
                    raise _too_large(self._limit)
            return message

        await self.app(scope, counted, send)
