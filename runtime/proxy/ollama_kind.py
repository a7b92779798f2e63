"""The client for an Ollama (or llamaport) native API: aiohttp and NDJSON."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp.helpers import basicauth_from_netrc, get_env_proxy_for_url, netrc_from_env
from aiohttp.http_exceptions import LineTooLong
from yarl import URL

from llamaport.runtime.proxy.config import UpstreamConfig
from llamaport.runtime.proxy.errors import UpstreamBadReply, UpstreamBroken
from llamaport.runtime.proxy.upstream import (
    dropped_warning,
    error_text,
    status_error,
    transport_error,
)
from llamaport.runtime.types import (
    Chunk,
    DoneReason,
    EmbedRequest,
    EmbedResult,
    GenerateRequest,
    Message,
    Metrics,
    ToolCall,
)

__all__ = ["OllamaUpstream", "to_ollama_message"]

_DONE_REASONS: tuple[DoneReason, ...] = ("stop", "length", "load", "unload")
_LINE_BYTES = 8 * 1024 * 1024
"""The longest NDJSON line taken (a final ``context`` of 128k tokens is ~1 MB)."""
_TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError)
"""What a connection that failed, stalled or broke raises."""


def to_ollama_message(message: Message) -> dict[str, Any]:
    """One stored or requested turn in Ollama's ``/api/chat`` shape (the one conversion)."""
    view = message.template_view()
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.thinking:
        out["thinking"] = message.thinking
    if message.images:
        out["images"] = list(message.images)
    if message.tool_calls:
        out["tool_calls"] = [{"function": call["function"]} for call in view["tool_calls"]]
    if message.tool_name:
        out["tool_name"] = message.tool_name
    return out


def _from_env(url: str, keyed: bool) -> dict[str, Any]:
    """What aiohttp's ``trust_env`` finds for ``url``, as request options: a proxy
    from the ``*_PROXY`` variables unless ``NO_PROXY`` names the host, and for an
    upstream without a key a login from ``.netrc``. With ``trust_env`` aiohttp
    looks both up in a worker thread on every request: in bench_proxy's layout
    0.63 ms passed from the call to its send, against 0.1 ms without; here they
    are looked up once."""
    found: dict[str, Any] = {}
    parsed = URL(url)
    with contextlib.suppress(LookupError):
        found["proxy"], found["proxy_auth"] = get_env_proxy_for_url(parsed)
    host = parsed.host
    if not keyed and host:
        with contextlib.suppress(LookupError):
            found["auth"] = basicauth_from_netrc(netrc_from_env(), host)
    return found


def _body(req: GenerateRequest, model: str) -> tuple[str, dict[str, Any], list[str]]:
    """The path, the JSON body and the names of the options Ollama's API lacks."""
    body: dict[str, Any] = {"model": model, "stream": True}
    settings: tuple[tuple[str, object], ...] = (
        ("options", req.options),
        ("format", req.format),
        ("think", req.think),
        ("keep_alive", req.keep_alive),
    )
    for key, value in settings:
        if value not in (None, {}):
            body[key] = value
    dropped = []
    if req.tool_choice not in (None, "auto"):
        dropped.append("tool_choice")
    if req.logprobs:
        dropped.append("logprobs")
    if req.messages is not None:
        body["messages"] = [to_ollama_message(m) for m in req.messages]
        if req.tools:
            body["tools"] = req.tools
        return "/api/chat", body, dropped
    body["prompt"] = req.prompt
    extras: tuple[tuple[str, object], ...] = (
        ("system", req.system),
        ("suffix", req.suffix),
        ("template", req.template),
        ("context", req.context),
        ("images", req.images),
        ("raw", req.raw),
    )
    for key, given in extras:
        if given:
            body[key] = given
    return "/api/generate", body, dropped


def _encode(body: dict[str, Any]) -> bytes:
    """The request's JSON, compact and in UTF-8."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _tool_calls(raw: Any, start: int) -> list[ToolCall]:
    calls = []
    for i, call in enumerate(raw or []):
        fn = call["function"]
        arguments = fn.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise TypeError("tool call arguments are not an object")
        call_id = call.get("id") or f"call_{start + i}"
        calls.append(ToolCall(call_id, str(fn["name"]), arguments, index=start + i))
    return calls


def _chunk(line: dict[str, Any], calls_so_far: int) -> Chunk:
    """One NDJSON line as a Chunk; raises KeyError/TypeError on the wrong shape."""
    if "message" in line:
        message = line["message"]
        text, thinking = message.get("content") or "", message.get("thinking") or ""
        calls = _tool_calls(message.get("tool_calls"), calls_so_far)
    else:
        text, thinking, calls = line["response"], line.get("thinking") or "", []
    if not isinstance(text, str) or not isinstance(thinking, str):
        raise TypeError("content is not text")
    chunk = Chunk(text=text, thinking=thinking, tool_calls=calls, done=bool(line.get("done")))
    if chunk.done:
        reason = line.get("done_reason")
        chunk.done_reason = reason if reason in _DONE_REASONS else "stop"
        chunk.metrics = Metrics(
            **{k: int(line.get(k) or 0) for k in Metrics.__dataclass_fields__ if k in line}
        )
        chunk.context = line.get("context")
    return chunk


class OllamaUpstream:
    """An upstream of kind ``ollama``: Ollama's or llamaport's native routes.

    Spoken with aiohttp rather than httpx. In-process, one streamed request of
    three NDJSON lines cost 538 µs of CPU through ``httpx.AsyncClient`` and
    125 µs through ``aiohttp.ClientSession``: httpx's anyio streams yield to
    the event loop after every write and pause and resume reading around every
    read, and h11 parses in Python. In bench_proxy's layout the proxy's CPU per
    request fell by a quarter (4.1 to 3.1 ms with 2-token replies, 28-32 to
    20-24 ms with 64), beside the httpx client in one run.
    """

    kind = "ollama"

    def __init__(self, config: UpstreamConfig, api_key: str | None) -> None:
        self.name = config.name
        self._key = api_key
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        # Joined as text: a path prefix in the upstream's URL stays (/ollama/api/chat).
        self._base = config.base_url + "/"
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=config.timeout_s, sock_read=config.timeout_s
        )
        self._env = _from_env(self._base, bool(api_key))
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        """The connection pool, made on first use: aiohttp wants a running loop."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                cookie_jar=aiohttp.DummyCookieJar(),  # one upstream's cookies are no caller's
                read_bufsize=_LINE_BYTES // 2,
            )
        return self._session

    @asynccontextmanager
    async def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout_s: float = 0
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The reply to one request, a status other than 200 raised as the router's
        kinds; aiohttp's own errors pass through to the caller, which alone knows
        whether a stream had begun."""
        options: dict[str, Any] = {"data": None if body is None else _encode(body), **self._env}
        if timeout_s:  # else the session's (an explicit None would mean none at all)
            options["timeout"] = aiohttp.ClientTimeout(total=timeout_s)
        async with self._http().request(method, self._base + path.lstrip("/"), **options) as resp:
            if resp.status != 200:
                message = error_text(await resp.read(), self._key)
                raise status_error(self.name, resp.status, message)
            yield resp

    async def generate(self, req: GenerateRequest, model: str) -> AsyncGenerator[Chunk, None]:
        """The upstream's chunks as they arrive. The final one is passed on once the
        body has ended: a response left unread is closed with its connection, and
        every request then paid for a new one (bench_proxy: +3.4 ms first token)."""
        path, body, dropped = _body(req, model)
        warnings = dropped_warning(self.name, self.kind, dropped)
        sent = False
        done: Chunk | None = None
        try:
            async with self._request("POST", path, body) as resp:
                calls = 0
                async for raw in resp.content:
                    if done is not None or not raw.strip():
                        continue
                    chunk = self._parse(raw, calls, sent)
                    calls += len(chunk.tool_calls)
                    chunk.warnings, warnings = warnings, []
                    sent = True
                    if chunk.done:
                        done = chunk
                    else:
                        yield chunk
        except _TRANSPORT_ERRORS as exc:
            if done is None:
                error = transport_error(self.name, exc)
                raise (UpstreamBroken(self.name, error.detail) if sent else error) from None
        except LineTooLong:
            detail = f"a stream line is longer than {_LINE_BYTES // 2**20} MiB"
            raise (UpstreamBroken if sent else UpstreamBadReply)(self.name, detail) from None
        if done is None:
            raise UpstreamBroken(self.name, "the stream ended before the reply was done")
        yield done

    def _parse(self, raw: bytes, calls: int, sent: bool) -> Chunk:
        try:
            line = json.loads(raw.decode())  # bytes would first be sniffed for UTF-16/32
        except ValueError:
            raise UpstreamBadReply(self.name, "a stream line is not JSON") from None
        if isinstance(line, dict) and "error" in line:
            detail = f"error in the stream: {line['error']}"
            raise (UpstreamBroken if sent else UpstreamBadReply)(self.name, detail)
        try:
            return _chunk(line, calls)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise UpstreamBadReply(self.name, "a stream line has the wrong shape") from None

    async def _json(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout_s: float = 0
    ) -> Any:
        try:
            async with self._request(method, path, body, timeout_s) as resp:
                raw = await resp.read()
        except _TRANSPORT_ERRORS as exc:
            raise transport_error(self.name, exc) from None
        try:
            return json.loads(raw)
        except ValueError:
            raise UpstreamBadReply(self.name, "the reply is not JSON") from None

    async def embed(self, req: EmbedRequest, model: str) -> EmbedResult:
        start = time.perf_counter_ns()
        body: dict[str, Any] = {"model": model, "input": req.inputs, "truncate": req.truncate}
        if req.dimensions:
            body["dimensions"] = req.dimensions
        if req.options:
            body["options"] = req.options
        data = await self._json("POST", "/api/embed", body)
        try:
            vectors = [[float(v) for v in row] for row in data["embeddings"]]
            count = int(data.get("prompt_eval_count") or 0)
        except (KeyError, TypeError, ValueError):
            raise UpstreamBadReply(self.name, "the embeddings have the wrong shape") from None
        return EmbedResult(vectors, count, time.perf_counter_ns() - start, 0)

    async def models(self) -> list[str]:
        data = await self._json("GET", "/api/tags", timeout_s=5)
        try:
            return [str(m["name"]) for m in data["models"]]
        except (KeyError, TypeError, ValueError):
            raise UpstreamBadReply(self.name, "the model list has the wrong shape") from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
