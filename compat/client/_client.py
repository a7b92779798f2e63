"""The one HTTP client of llamaport's (and Ollama's) native API: the CLI's and the integrations'.

:class:`Client` sends the request bodies of :mod:`._requests` (checked
before they leave) and returns the answers of :mod:`._responses`, over
httpx, synchronously or asynchronously. Requests are retried with tenacity
on connection errors and on ``503`` (a full queue or a model still
loading) only: a bad request would fail the same way again, and a
generation that has started streaming is never sent twice. Every failure
raises the tree of :mod:`._errors`, with the server's own message whether it
came as an HTTP status or as an in-band NDJSON line.

Streaming methods (:meth:`Client.generate`, :meth:`Client.chat`, ...) return
generators. The request is sent on the first ``next()``; the caller must
either exhaust the generator or call its ``close()`` (for example on
Ctrl+C), which closes the HTTP response and so tells the server to stop.

The sync connection pool is kept for the client's lifetime; every async call
opens its own ``httpx.AsyncClient``, because a pooled async connection is
bound to the event loop that opened it and callers (notebooks, test
runners) switch loops.
"""

from __future__ import annotations

import platform
from collections.abc import AsyncIterator, Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel
from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from llamaport.compat.client._errors import (
    ClientError,
    ConnectError,
    JSONObject,
    ResponseError,
    decode_line,
    error_message,
)
from llamaport.compat.client._requests import (
    ChatBody,
    CreateBody,
    EmbedBody,
    GenerateBody,
    RegistryBody,
    ShowBody,
)
from llamaport.compat.client._responses import (
    ChatChunk,
    EmbedResponse,
    GenerateChunk,
    ProgressLine,
    PsResponse,
    ShowResponse,
    TagsResponse,
    VersionResponse,
)

__all__ = ["DEFAULT_BASE_URL", "Client", "ModelInfo", "Stream"]

DEFAULT_BASE_URL = "http://127.0.0.1:11434"

A = TypeVar("A", bound=BaseModel)

Stream = Generator[A, None, None]
"""Answers of a streaming call; ``close()`` it to abandon the reply early."""

Body = BaseModel | Mapping[str, Any]
"""A request body: its model, or a mapping the model is checked against."""

HEARTBEAT_TIMEOUT = 5.0
"""Seconds to wait for ``HEAD /`` and ``/api/version``: a live server answers at once."""

REQUEST_TIMEOUT = 60.0
"""Seconds for calls that generate nothing (tags, ps, show, copy, ...)."""

GENERATION_TIMEOUT = httpx.Timeout(None, connect=30.0)
"""Generations and embeddings: 30 s to connect, then reads wait as long as they take."""

_NDJSON = {"Accept": "application/x-ndjson"}


def _user_agent() -> str:
    try:
        own = version("llamaport")
    except PackageNotFoundError:  # a source tree that was never installed
        own = "0.0.0"
    system = f"{platform.machine().lower()} {platform.system().lower()}"
    return f"llamaport/{own} ({system}) Python/{platform.python_version()}"


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, ResponseError):
        return exc.status_code == 503
    return isinstance(exc, ConnectError)


def _payload(model: type[BaseModel], body: Body) -> JSONObject:
    """``body`` checked against its request model, as JSON: the fields it sets, nothing more."""
    checked = body if isinstance(body, model) else model.model_validate(body)
    return checked.model_dump(mode="json", by_alias=True, exclude_unset=True)


def _object(response: httpx.Response) -> JSONObject:
    """A read response's JSON object (``{}`` for an empty body)."""
    if not response.content:
        return {}
    try:
        decoded = response.json()
    except ValueError as exc:
        raise ResponseError(response.status_code, response.text) from exc
    if not isinstance(decoded, dict):
        raise ResponseError(response.status_code, response.text)
    return decoded


@dataclass(frozen=True)
class ModelInfo:
    """What ``/api/show`` and ``/api/version`` say about a model, as the integrations need it."""

    context_length: int | None
    capabilities: frozenset[str]
    llamaport: bool
    """The server is llamaport: it enforces ``tool_choice`` and serves tools to every model."""

    @property
    def tool_calling(self) -> bool:
        return self.llamaport or "tools" in self.capabilities

    @classmethod
    def parse(cls, show: ShowResponse, version: VersionResponse) -> ModelInfo:
        return cls(
            context_length=show.context_length,
            capabilities=frozenset(show.capabilities),
            llamaport=version.llamaport is not None,
        )


class Client:
    """One server's native routes, with the policy every request follows.

    ``timeout`` (seconds) bounds every connect and read when set; when
    ``None``, each call has its own bound (:data:`REQUEST_TIMEOUT`,
    :data:`GENERATION_TIMEOUT`). ``max_retries`` counts retries after the
    first attempt. Use it as a context manager, or call :meth:`close`, to
    release the connection pool.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str = "",
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        max_retries: int = 2,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self._headers = {"User-Agent": _user_agent(), **(headers or {})}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._pool: httpx.Client | None = None

    def close(self) -> None:
        """Close pooled connections."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plain requests -------------------------------------------------

    def heartbeat(self) -> bool:
        """Whether a server answers ``HEAD /`` with a success status (never retried)."""
        try:
            response = self._http.head("/", timeout=self._timeout(HEARTBEAT_TIMEOUT))
        except httpx.HTTPError:
            return False
        return response.is_success

    def version(self) -> VersionResponse:
        """``GET /api/version``; ``llamaport`` is set by llamaport only."""
        answer = self._json("GET", "/api/version", timeout=HEARTBEAT_TIMEOUT)
        return VersionResponse.model_validate(answer)

    def tags(self) -> TagsResponse:
        """``GET /api/tags``: the local models."""
        return TagsResponse.model_validate(self._json("GET", "/api/tags"))

    def ps(self) -> PsResponse:
        """``GET /api/ps``: the loaded models."""
        return PsResponse.model_validate(self._json("GET", "/api/ps"))

    def upstreams(self) -> JSONObject:
        """``GET /api/upstreams``: the proxy's upstreams and their health (llamaport only)."""
        return self._json("GET", "/api/upstreams")

    def show(
        self,
        model: str,
        *,
        system: str | None = None,
        options: JSONObject | None = None,
        verbose: bool = False,
    ) -> ShowResponse:
        """``POST /api/show`` for ``model``.

        ``system`` and ``options`` are merged into the generated modelfile
        and parameters, as the REPL's ``/show`` needs.
        """
        body = ShowBody(model=model)
        if system:
            body.system = system
        if options:
            body.options = options
        if verbose:
            body.verbose = True
        return ShowResponse.model_validate(
            self._json("POST", "/api/show", _payload(ShowBody, body))
        )

    def model_info(self, model: str) -> ModelInfo:
        """``/api/show`` and ``/api/version`` read together."""
        return ModelInfo.parse(self.show(model), self.version())

    def embed(self, request: EmbedBody | Mapping[str, Any]) -> EmbedResponse:
        """``POST /api/embed``."""
        body = _payload(EmbedBody, request)
        answer = self._json("POST", "/api/embed", body, timeout=GENERATION_TIMEOUT)
        return EmbedResponse.model_validate(answer)

    # -- conversations (llamaport's server-side history, OpenAI's shapes) -

    def create_conversation(self, metadata: dict[str, str] | None = None) -> JSONObject:
        """``POST /v1/conversations``: a new, empty conversation."""
        return self._json("POST", "/v1/conversations", {"metadata": metadata or {}})

    def conversations(self) -> list[JSONObject]:
        """``GET /v1/conversations``: every conversation, most recently used first."""
        return list(self._json("GET", "/v1/conversations").get("data") or [])

    def conversation(self, conversation_id: str) -> JSONObject:
        """``GET /v1/conversations/{id}``."""
        return self._json("GET", f"/v1/conversations/{conversation_id}")

    def conversation_items(self, conversation_id: str) -> list[JSONObject]:
        """Every item of a conversation, oldest first (all pages)."""
        items: list[JSONObject] = []
        query = "order=asc&limit=100"
        while True:
            page = self._json("GET", f"/v1/conversations/{conversation_id}/items?{query}")
            items.extend(page.get("data") or [])
            if not page.get("has_more"):
                return items
            query = f"order=asc&limit=100&after={page['last_id']}"

    def delete_conversation(self, conversation_id: str) -> JSONObject:
        """``DELETE /v1/conversations/{id}`` (its items go with it)."""
        return self._json("DELETE", f"/v1/conversations/{conversation_id}")

    # -- streams --------------------------------------------------------

    def generate(self, request: GenerateBody | Mapping[str, Any]) -> Stream[GenerateChunk]:
        """``POST /api/generate``'s chunks (one, the whole answer, when not streaming)."""
        return self._lines("/api/generate", _payload(GenerateBody, request), GenerateChunk)

    def chat(self, request: ChatBody | Mapping[str, Any]) -> Stream[ChatChunk]:
        """``POST /api/chat``'s chunks (one, the whole answer, when not streaming)."""
        return self._lines("/api/chat", _payload(ChatBody, request), ChatChunk)

    def pull(self, model: str, *, insecure: bool = False) -> Stream[ProgressLine]:
        """``POST /api/pull``'s progress lines."""
        body = _payload(RegistryBody, RegistryBody(model=model, insecure=insecure))
        return self._lines("/api/pull", body, ProgressLine)

    def push(self, model: str, *, insecure: bool = False) -> Stream[ProgressLine]:
        """``POST /api/push``'s progress, shaped like :meth:`pull`'s."""
        body = _payload(RegistryBody, RegistryBody(model=model, insecure=insecure))
        return self._lines("/api/push", body, ProgressLine)

    def create(self, request: CreateBody | Mapping[str, Any]) -> Stream[ProgressLine]:
        """``POST /api/create``'s progress lines, ending with ``success``."""
        return self._lines("/api/create", _payload(CreateBody, request), ProgressLine)

    async def agenerate(
        self, request: GenerateBody | Mapping[str, Any]
    ) -> AsyncIterator[GenerateChunk]:
        """:meth:`generate`, asynchronously."""
        body = _payload(GenerateBody, request)
        async for chunk in self._alines("/api/generate", body, GenerateChunk):
            yield chunk

    async def achat(self, request: ChatBody | Mapping[str, Any]) -> AsyncIterator[ChatChunk]:
        """:meth:`chat`, asynchronously."""
        async for chunk in self._alines("/api/chat", _payload(ChatBody, request), ChatChunk):
            yield chunk

    async def aembed(self, request: EmbedBody | Mapping[str, Any]) -> EmbedResponse:
        """:meth:`embed`, asynchronously."""
        body = _payload(EmbedBody, request)
        async with httpx.AsyncClient(**self._options()) as http:
            response = await self._asend(http, "/api/embed", body, GENERATION_TIMEOUT, {})
            with self._translated():
                await response.aread()
                await response.aclose()
        return EmbedResponse.model_validate(_object(response))

    # -- model management -------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        """``HEAD /api/blobs/:digest``: whether the server already holds it."""
        with self._translated():
            response = self._http.head(
                f"/api/blobs/{digest}", timeout=self._timeout(REQUEST_TIMEOUT)
            )
        if response.status_code == 404:
            return False
        if response.status_code >= 400:
            raise ResponseError(response.status_code, f"blob {digest}: HTTP {response.status_code}")
        return True

    def upload_blob(self, digest: str, chunks: Iterable[bytes], size: int | None = None) -> None:
        """``POST /api/blobs/:digest`` with the body streamed from ``chunks`` (never retried:
        they are read once). ``size`` goes out as ``Content-Length``, so a server without
        room refuses before anything is sent."""
        headers = {"Content-Length": str(size)} if size is not None else {}
        request = self._http.build_request(
            "POST",
            f"/api/blobs/{digest}",
            content=chunks,
            headers=headers,
            timeout=self._timeout(None),
        )
        self._read(self._open(request, attempts=1))

    def copy(self, source: str, destination: str) -> None:
        """``POST /api/copy``."""
        self._json("POST", "/api/copy", {"source": source, "destination": destination})

    def delete(self, model: str) -> None:
        """``DELETE /api/delete``."""
        self._json("DELETE", "/api/delete", {"model": model})

    # -- internals ------------------------------------------------------

    def _options(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "headers": self._headers, "follow_redirects": True}

    @property
    def _http(self) -> httpx.Client:
        if self._pool is None:
            self._pool = httpx.Client(**self._options())
        return self._pool

    def _timeout(self, default: float | httpx.Timeout | None) -> float | httpx.Timeout | None:
        return default if self.timeout is None else self.timeout

    def _policy(self, attempts: int | None = None) -> dict[str, Any]:
        return {
            "stop": stop_after_attempt(attempts or self.max_retries + 1),
            "wait": wait_exponential(multiplier=0.25, max=4),
            "retry": retry_if_exception(_retryable),
            "reraise": True,
        }

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """httpx's errors as the tree of :mod:`._errors`."""
        try:
            yield
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ConnectError(self.base_url, str(exc)) from exc
        except httpx.HTTPError as exc:
            raise ClientError(str(exc)) from exc

    def _open(self, request: httpx.Request, attempts: int | None = None) -> httpx.Response:
        """Send ``request`` under the retry policy; the response is open (streamed)."""
        for attempt in Retrying(**self._policy(attempts)):
            with attempt, self._translated():
                response = self._http.send(request, stream=True)
                if response.is_error:
                    response.read()
                    response.close()
                    raise ResponseError(response.status_code, error_message(response.content))
                return response
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _read(self, response: httpx.Response) -> JSONObject:
        with self._translated():
            try:
                response.read()
            finally:
                response.close()
        return _object(response)

    def _json(
        self,
        method: str,
        path: str,
        body: JSONObject | None = None,
        *,
        timeout: float | httpx.Timeout | None = REQUEST_TIMEOUT,
    ) -> JSONObject:
        request = self._http.build_request(method, path, json=body, timeout=self._timeout(timeout))
        return self._read(self._open(request))

    def _lines(self, path: str, body: JSONObject, answer: type[A]) -> Stream[A]:
        timeout = self._timeout(GENERATION_TIMEOUT)
        request = self._http.build_request(
            "POST", path, json=body, headers=_NDJSON, timeout=timeout
        )
        response = self._open(request)
        try:
            with self._translated():
                for line in response.iter_lines():
                    part = decode_line(line, response.status_code)
                    if part is not None:
                        yield answer.model_validate(part)
        finally:
            response.close()

    async def _asend(
        self,
        http: httpx.AsyncClient,
        path: str,
        body: JSONObject,
        timeout: float | httpx.Timeout | None,
        headers: Mapping[str, str],
    ) -> httpx.Response:
        """:meth:`_open` for a ``POST`` on ``http``."""
        request = http.build_request(
            "POST", path, json=body, headers=headers, timeout=self._timeout(timeout)
        )
        async for attempt in AsyncRetrying(**self._policy()):
            with attempt, self._translated():
                response = await http.send(request, stream=True)
                if response.is_error:
                    await response.aread()
                    await response.aclose()
                    raise ResponseError(response.status_code, error_message(response.content))
                return response
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _alines(self, path: str, body: JSONObject, answer: type[A]) -> AsyncIterator[A]:
        async with httpx.AsyncClient(**self._options()) as http:
            response = await self._asend(http, path, body, GENERATION_TIMEOUT, _NDJSON)
            try:
                with self._translated():
                    async for line in response.aiter_lines():
                        part = decode_line(line, response.status_code)
                        if part is not None:
                            yield answer.model_validate(part)
            finally:
                await response.aclose()
