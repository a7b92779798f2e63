"""The CLI's HTTP client for llamaport's (and Ollama's) native API.

The CLI talks to the server only through this module, so the server and the
CLI can live in different processes, versions and machines. It raises the
errors of :mod:`._errors`, which the integrations' transport raises too.

Streaming methods (:meth:`Client.generate`, :meth:`Client.chat`) return
generators. The request is sent on the first ``next()``; the caller must
either exhaust the generator or call its ``close()`` (for example on Ctrl+C),
which closes the HTTP response and so tells the server to stop generating.
"""

from __future__ import annotations

import platform
from collections.abc import Generator, Iterable
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType

import httpx

from llamaport.client._errors import (
    ClientError,
    ConnectError,
    JSONObject,
    ResponseError,
    decode_line,
    error_message,
)

__all__ = ["Client", "Stream"]

Stream = Generator[JSONObject, None, None]
"""Chunks of a streaming call; ``close()`` it to abandon the reply early."""

HEARTBEAT_TIMEOUT = 5.0
"""Seconds to wait for ``HEAD /``: a live server answers at once."""

REQUEST_TIMEOUT = 60.0
"""Seconds for non-streaming calls (tags, ps, show, version)."""

CONNECT_TIMEOUT = 30.0
"""Seconds to open a connection for a stream; reads then wait forever."""


def _version() -> str:
    try:
        return version("llamaport")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0"


def _user_agent() -> str:
    return (
        f"llamaport/{_version()} ({platform.machine().lower()} {platform.system().lower()}) "
        f"Python/{platform.python_version()}"
    )


class Client:
    """Typed access to the native routes of one server.

    Use it as a context manager, or call :meth:`close`, to release the
    connection pool.
    """

    def __init__(
        self, base_url: str, *, http: httpx.Client | None = None, api_key: str = ""
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"User-Agent": _user_agent()}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = http or httpx.Client(
            base_url=self.base_url, headers=headers, timeout=REQUEST_TIMEOUT
        )

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()

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
        """Whether a server answers ``HEAD /`` with a success status."""
        try:
            response = self._http.head("/", timeout=HEARTBEAT_TIMEOUT)
        except httpx.HTTPError:
            return False
        return response.is_success

    def version(self) -> JSONObject:
        """``GET /api/version``: ``{"version": ..., "llamaport": ...}``."""
        return self._json("GET", "/api/version", None, timeout=HEARTBEAT_TIMEOUT)

    def tags(self) -> JSONObject:
        """``GET /api/tags``: the local models."""
        return self._json("GET", "/api/tags", None)

    def ps(self) -> JSONObject:
        """``GET /api/ps``: the loaded models."""
        return self._json("GET", "/api/ps", None)

    def upstreams(self) -> JSONObject:
        """``GET /api/upstreams``: the proxy's upstreams and their health."""
        return self._json("GET", "/api/upstreams", None)

    def show(
        self,
        model: str,
        *,
        system: str | None = None,
        options: JSONObject | None = None,
        verbose: bool = False,
    ) -> JSONObject:
        """``POST /api/show`` for ``model``.

        ``system`` and ``options`` are merged into the generated modelfile
        and parameters, as the REPL's ``/show`` needs.
        """
        body: JSONObject = {"model": model}
        if system:
            body["system"] = system
        if options:
            body["options"] = options
        if verbose:
            body["verbose"] = True
        return self._json("POST", "/api/show", body)

    def embed(self, body: JSONObject) -> JSONObject:
        """``POST /api/embed``."""
        return self._json("POST", "/api/embed", body, timeout=None)

    # -- conversations (llamaport's server-side history) ---------------

    def create_conversation(self, metadata: dict[str, str] | None = None) -> JSONObject:
        """``POST /v1/conversations``: a new, empty conversation."""
        return self._json("POST", "/v1/conversations", {"metadata": metadata or {}})

    def conversations(self) -> list[JSONObject]:
        """``GET /v1/conversations``: every conversation, most recently used first."""
        return list(self._json("GET", "/v1/conversations", None).get("data") or [])

    def conversation(self, conversation_id: str) -> JSONObject:
        """``GET /v1/conversations/{id}``."""
        return self._json("GET", f"/v1/conversations/{conversation_id}", None)

    def conversation_items(self, conversation_id: str) -> list[JSONObject]:
        """Every item of a conversation, oldest first (all pages)."""
        items: list[JSONObject] = []
        query = "order=asc&limit=100"
        while True:
            page = self._json("GET", f"/v1/conversations/{conversation_id}/items?{query}", None)
            items.extend(page.get("data") or [])
            if not page.get("has_more"):
                return items
            query = f"order=asc&limit=100&after={page['last_id']}"

    def delete_conversation(self, conversation_id: str) -> JSONObject:
        """``DELETE /v1/conversations/{id}`` (its items go with it)."""
        return self._json("DELETE", f"/v1/conversations/{conversation_id}", None)

    # -- streams --------------------------------------------------------

    def generate(self, body: JSONObject) -> Stream:
        """Stream ``POST /api/generate`` chunks (one object when not streaming)."""
        return self._stream("/api/generate", body)

    def chat(self, body: JSONObject) -> Stream:
        """Stream ``POST /api/chat`` chunks (one object when not streaming)."""
        return self._stream("/api/chat", body)

    def pull(self, model: str, *, insecure: bool = False) -> Stream:
        """Stream ``POST /api/pull`` progress lines (``status``, ``digest``, ``total``...)."""
        return self._stream("/api/pull", {"model": model, "insecure": insecure})

    def push(self, model: str, *, insecure: bool = False) -> Stream:
        """Stream ``POST /api/push`` progress, shaped like :meth:`pull`'s."""
        return self._stream("/api/push", {"model": model, "insecure": insecure})

    def create(self, body: JSONObject) -> Stream:
        """Stream ``POST /api/create`` progress lines, ending with ``success``."""
        return self._stream("/api/create", body)

    # -- model management -------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        """``HEAD /api/blobs/:digest``: whether the server already holds it."""
        response = self._send("HEAD", f"/api/blobs/{digest}", timeout=REQUEST_TIMEOUT)
        if response.status_code == 404:
            return False
        if response.status_code >= 400:
            raise ResponseError(response.status_code, f"blob {digest}: HTTP {response.status_code}")
        return True

    def upload_blob(self, digest: str, chunks: Iterable[bytes], size: int | None = None) -> None:
        """``POST /api/blobs/:digest`` with the body streamed from ``chunks``.

        ``size`` goes out as ``Content-Length``, so a server without room
        refuses before anything is sent.
        """
        headers = {"Content-Length": str(size)} if size is not None else None
        self._json(
            "POST", f"/api/blobs/{digest}", None, content=chunks, timeout=None, headers=headers
        )

    def copy(self, source: str, destination: str) -> None:
        """``POST /api/copy``."""
        self._json("POST", "/api/copy", {"source": source, "destination": destination})

    def delete(self, model: str) -> None:
        """``DELETE /api/delete``."""
        self._json("DELETE", "/api/delete", {"model": model})

    # -- internals ------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: JSONObject | None = None,
        content: Iterable[bytes] | None = None,
        timeout: float | None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        try:
            return self._http.request(
                method, path, json=body, content=content, timeout=timeout, headers=headers
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ConnectError(self.base_url, str(exc)) from exc
        except httpx.HTTPError as exc:
            raise ClientError(str(exc)) from exc

    def _json(
        self,
        method: str,
        path: str,
        body: JSONObject | None,
        *,
        content: Iterable[bytes] | None = None,
        timeout: float | None = REQUEST_TIMEOUT,
        headers: dict[str, str] | None = None,
    ) -> JSONObject:
        response = self._send(
            method, path, body=body, content=content, timeout=timeout, headers=headers
        )
        if response.status_code >= 400:
            raise ResponseError(response.status_code, error_message(response.content))
        if not response.content:
            return {}
        try:
            decoded = response.json()
        except ValueError as exc:
            raise ResponseError(response.status_code, response.text) from exc
        if not isinstance(decoded, dict):
            raise ResponseError(response.status_code, response.text)
        return decoded

    def _stream(self, path: str, body: JSONObject) -> Stream:
        timeout = httpx.Timeout(None, connect=CONNECT_TIMEOUT)
        headers = {"Accept": "application/x-ndjson"}
        try:
            with self._http.stream(
                "POST", path, json=body, headers=headers, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    raise ResponseError(response.status_code, error_message(response.read()))
                for line in response.iter_lines():
                    part = decode_line(line, response.status_code)
                    if part is not None:
                        yield part
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ConnectError(self.base_url, str(exc)) from exc
        except httpx.HTTPError as exc:
            raise ClientError(str(exc)) from exc
