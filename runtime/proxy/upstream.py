"""What every upstream client offers the router, and what the clients share.

A client speaks one upstream kind's protocol and gives back the runtime's own
:class:`Chunk`s, so every face, its framing and the stored conversations work
unchanged. Clients raise :mod:`llamaport.runtime.proxy.errors` types only;
the router decides about retries and failover.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any, Protocol

import httpx

from llamaport.runtime.proxy.errors import (
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from llamaport.runtime.types import Chunk, EmbedRequest, EmbedResult, GenerateRequest

__all__ = [
    "UpstreamClient",
    "dropped_warning",
    "error_text",
    "scrub",
    "status_error",
    "transport_error",
]


class UpstreamClient(Protocol):
    name: str

    def generate(self, req: GenerateRequest, model: str) -> AsyncGenerator[Chunk, None]:
        """Stream the reply as Chunks; the first carries the dropped-option warning,
        the last has ``done``. The caller must close the iterator."""
        ...

    async def embed(self, req: EmbedRequest, model: str) -> EmbedResult: ...

    async def models(self) -> list[str]:
        """The model names the upstream lists (``/v1/models`` or ``/api/tags``)."""
        ...

    async def aclose(self) -> None: ...


def dropped_warning(upstream: str, kind: str, dropped: list[str]) -> list[str]:
    """The ``X-Llamaport-Warning`` text for options an upstream kind cannot take."""
    if not dropped:
        return []
    return [f'upstream "{upstream}" ({kind}) cannot take {", ".join(dropped)}; dropped']


def error_text(body: bytes, secret: str | None) -> str:
    """The message of an upstream's error body (either envelope), without the key."""
    text = body.decode("utf-8", "replace")[:500]
    try:
        data: Any = json.loads(text)
        err = data.get("error", text) if isinstance(data, dict) else text
        text = str(err.get("message", err)) if isinstance(err, dict) else str(err)
    except ValueError:
        pass
    return scrub(text.strip() or "no message", secret)


def scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def status_error(upstream: str, status: int, message: str) -> UpstreamError | UpstreamRejected:
    """An upstream's non-200 status as the router's error kinds.

    429 and 5xx are worth retrying; 401/403 is a configuration fault that
    retrying cannot fix (the breaker opens at once); other 4xx refuse the request.
    """
    if status == 429 or status >= 500:
        return UpstreamUnavailable(upstream, f"status {status}: {message}")
    if status in (401, 403):
        return UpstreamUnavailable(upstream, f"status {status}: {message}", fatal=True)
    return UpstreamRejected(upstream, status, message)


def transport_error(upstream: str, exc: Exception) -> UpstreamError:
    """A connection that failed, stalled or broke (httpx's errors, or aiohttp's
    and the ``TimeoutError`` it raises), as the router's error kinds."""
    if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
        return UpstreamTimeout(upstream, f"no reply within the timeout ({type(exc).__name__})")
    return UpstreamUnavailable(upstream, f"{type(exc).__name__}: {exc}")
