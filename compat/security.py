"""Request guards from Ollama's router: foreign origins and DNS rebinding.

A request whose ``Origin`` is not allowed gets a 403 with an empty body, and,
while the server listens on loopback only, so does a request whose ``Host``
is not local: a web page on another site can then neither read answers nor
reach the API through a rebound DNS name.
"""

from __future__ import annotations

import ipaddress
import re
import socket

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["LOCAL_ORIGINS", "RequestGuard", "origin_pattern"]

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
