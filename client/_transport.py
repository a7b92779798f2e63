"""The HTTP transport both integrations use: JSON and NDJSON over httpx, with retries.

A :class:`Transport` talks to a llamaport server, or to an Ollama server, on
the native routes. Requests are retried with tenacity on connection errors
and on ``503`` (a full queue or a model still loading) only: a bad request
would fail the same way again, and a generation that has started streaming
is never sent twice. Errors raise :class:`~._errors.ResponseError` with the
server's own message, whether they come as an HTTP status or as an in-band
NDJSON line; a connection that never opens raises httpx's own error.

The sync client is kept for the transport's lifetime; every async call opens
its own ``httpx.AsyncClient``, because a pooled async connection is bound to
the event loop that opened it and callers (notebooks, test runners) switch
loops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from llamaport.client._errors import JSONObject, ResponseError, decode_line, error_message

__all__ = ["DEFAULT_BASE_URL", "ModelInfo", "Transport"]

DEFAULT_BASE_URL = "http://127.0.0.1:11434"


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, ResponseError):
        return exc.status_code == 503
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)


@dataclass(frozen=True)
class ModelInfo:
    """What ``/api/show`` (and ``/api/version``) say about a model."""

    context_length: int | None
    capabilities: frozenset[str]
    llamaport: bool
    """The server is llamaport: it enforces ``tool_choice`` and serves tools to every model."""

    @property
    def tool_calling(self) -> bool:
        return self.llamaport or "tools" in self.capabilities

    @classmethod
    def parse(cls, show: Mapping[str, Any], version: Mapping[str, Any]) -> ModelInfo:
        info = show.get("model_info") or {}
        lengths = [v for k, v in info.items() if k.endswith(".context_length") and v]
        return cls(
            context_length=int(lengths[0]) if lengths else None,
            capabilities=frozenset(show.get("capabilities") or ()),
            llamaport="llamaport" in version,
        )


@dataclass
class Transport:
    """A base URL plus the policy every request follows (timeout, retries, headers)."""

    base_url: str = DEFAULT_BASE_URL
    timeout: float | None = None
    """Seconds for each read and connect; None waits as long as a generation takes."""
    max_retries: int = 2
    headers: Mapping[str, str] = field(default_factory=dict)
    _client: httpx.Client | None = field(default=None, init=False, repr=False)

    def _options(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "timeout": self.timeout,
            "headers": dict(self.headers),
            "follow_redirects": True,
        }

    def _policy(self) -> dict[str, Any]:
        return {
            "stop": stop_after_attempt(self.max_retries + 1),
            "wait": wait_exponential(multiplier=0.25, max=4),
            "retry": retry_if_exception(_retryable),
            "reraise": True,
        }

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(**self._options())
        return self._client

    def _open(self, method: str, path: str, body: Any) -> httpx.Response:
        for attempt in Retrying(**self._policy()):
            with attempt:
                request = self.client.build_request(method, path, json=body)
                response = self.client.send(request, stream=True)
                if response.is_error:
                    response.read()
                    response.close()
                    raise ResponseError(response.status_code, error_message(response.text))
                return response
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _aopen(
        self, client: httpx.AsyncClient, method: str, path: str, body: Any
    ) -> httpx.Response:
        async for attempt in AsyncRetrying(**self._policy()):
            with attempt:
                request = client.build_request(method, path, json=body)
                response = await client.send(request, stream=True)
                if response.is_error:
                    await response.aread()
                    await response.aclose()
                    raise ResponseError(response.status_code, error_message(response.text))
                return response
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = self._open(method, path, body)
        try:
            response.read()
        finally:
            response.close()
        data: JSONObject = response.json()
        return data

    def stream(self, path: str, body: Any) -> Iterator[dict[str, Any]]:
        """POST ``body`` and yield each NDJSON object of the answer."""
        response = self._open("POST", path, body)
        try:
            for raw in response.iter_lines():
                part = decode_line(raw, response.status_code)
                if part is not None:
                    yield part
        finally:
            response.close()

    async def arequest(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        async with httpx.AsyncClient(**self._options()) as client:
            response = await self._aopen(client, method, path, body)
            try:
                await response.aread()
            finally:
                await response.aclose()
        data: JSONObject = response.json()
        return data

    async def astream(self, path: str, body: Any) -> AsyncIterator[dict[str, Any]]:
        async with httpx.AsyncClient(**self._options()) as client:
            response = await self._aopen(client, "POST", path, body)
            try:
                async for raw in response.aiter_lines():
                    part = decode_line(raw, response.status_code)
                    if part is not None:
                        yield part
            finally:
                await response.aclose()

    def model_info(self, model: str) -> ModelInfo:
        show = self.request("POST", "/api/show", {"model": model})
        return ModelInfo.parse(show, self.request("GET", "/api/version"))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
