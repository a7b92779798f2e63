"""The one client: retries (503 and connection errors only), errors, NDJSON, typed answers.

The retry tests use a tiny scripted HTTP server, because a real llamaport
cannot be made to answer 503 a chosen number of times and then succeed
(its queue-full 503 depends on timing); everything else uses the live server.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from llamaport.compat.client import (
    ChatChunk,
    Client,
    ConnectError,
    GenerateChunk,
    ResponseError,
    ShowResponse,
)
from tests.conftest import MODEL, Server
from tests.integrations.conftest import NO_SERVER


class _Scripted(ThreadingHTTPServer):
    """Answers each request with the next (status, body) of ``script``; counts requests."""

    def __init__(self, script: list[tuple[int, dict[str, object]]]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = script
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Scripted

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body = self.server.script[min(self.server.requests, len(self.server.script) - 1)]
        self.server.requests += 1
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


ANSWER: dict[str, object] = {"model": MODEL, "embeddings": [[0.5]]}

Scripted = Callable[[list[tuple[int, dict[str, object]]]], _Scripted]


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    servers: list[_Scripted] = []

    def start(script: list[tuple[int, dict[str, object]]]) -> _Scripted:
        srv = _Scripted(script)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


EMBED = {"model": MODEL, "input": "llamas"}


def test_503_is_retried_until_it_succeeds(scripted: Scripted) -> None:
    srv = scripted([(503, {"error": "server busy"}), (503, {"error": "busy"}), (200, ANSWER)])
    assert Client(srv.url, max_retries=2).embed(EMBED).embeddings == [[0.5]]
    assert srv.requests == 3


def test_retries_stop_at_max_retries(scripted: Scripted) -> None:
    srv = scripted([(503, {"error": "server busy"})])
    with pytest.raises(ResponseError) as caught:
        Client(srv.url, max_retries=1).embed(EMBED)
    assert caught.value.status_code == 503 and caught.value.message == "server busy"
    assert srv.requests == 2


@pytest.mark.parametrize("status", [400, 404, 500], ids=["bad-request", "not-found", "server"])
def test_other_errors_are_not_retried(scripted: Scripted, status: int) -> None:
    srv = scripted([(status, {"error": {"message": "nope", "type": "x"}})])
    with pytest.raises(ResponseError, match="nope") as caught:
        list(Client(srv.url, max_retries=3).chat({"model": MODEL}))
    assert caught.value.status_code == status
    assert srv.requests == 1


async def test_async_requests_retry_too(scripted: Scripted) -> None:
    srv = scripted([(503, {"error": "busy"}), (200, ANSWER)])
    assert (await Client(srv.url).aembed(EMBED)).embeddings == [[0.5]]
    assert srv.requests == 2


def test_a_closed_port_raises_the_connection_error() -> None:
    with pytest.raises(ConnectError) as caught:
        Client(NO_SERVER, max_retries=1).version()
    assert isinstance(caught.value, httpx.ConnectError), "what the integrations raised before"


def test_a_body_is_checked_before_it_is_sent(scripted: Scripted) -> None:
    srv = scripted([(200, ANSWER)])
    with pytest.raises(ValidationError):
        Client(srv.url).embed({"model": 7})
    assert srv.requests == 0


def test_native_errors_carry_the_servers_message(server: Server) -> None:
    with pytest.raises(ResponseError) as caught:
        list(Client(server.url).chat({"model": "nosuch:model"}))
    assert caught.value.status_code == 404
    assert "not found" in caught.value.message


def test_streams_yield_typed_chunks_up_to_done(server: Server) -> None:
    body = {"model": MODEL, "prompt": "Hi", "options": {"num_predict": 4}}
    parts = list(Client(server.url).generate(body))
    assert all(isinstance(p, GenerateChunk) for p in parts)
    assert parts[-1].done is True and parts[-1].eval_count
    assert all(p.done is False for p in parts[:-1])


async def test_async_chat_streams(server: Server) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}
    body["options"] = {"num_predict": 4}
    parts = [p async for p in Client(server.url).achat(body)]
    assert all(isinstance(p, ChatChunk) for p in parts)
    assert parts[-1].done and parts[-1].message.role == "assistant"


ONE_TOKEN = {"model": MODEL, "stream": False, "options": {"num_predict": 1, "temperature": 0}}
CALLS: dict[str, tuple[str, str, dict[str, Any] | None, Callable[[Client], BaseModel]]] = {
    "show": ("POST", "/api/show", {"model": MODEL}, lambda c: c.show(MODEL)),
    "tags": ("GET", "/api/tags", None, Client.tags),
    "ps": ("GET", "/api/ps", None, Client.ps),
    "version": ("GET", "/api/version", None, Client.version),
    "embed": ("POST", "/api/embed", EMBED, lambda c: c.embed(EMBED)),
    "generate": (
        "POST",
        "/api/generate",
        {**ONE_TOKEN, "prompt": "Hi"},
        lambda c: next(c.generate({**ONE_TOKEN, "prompt": "Hi"})),
    ),
    "chat": (
        "POST",
        "/api/chat",
        {**ONE_TOKEN, "messages": [{"role": "user", "content": "Hi"}]},
        lambda c: next(c.chat({**ONE_TOKEN, "messages": [{"role": "user", "content": "Hi"}]})),
    ),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_typed_answers_read_the_servers_whole(server: Server, call: str) -> None:
    """Each answer validates against its model and loses nothing on the way (unknown
    fields stay), so the server's shapes and the client's models cannot drift apart."""
    method, path, body, typed = CALLS[call]
    with Client(server.url) as client:
        answer = typed(client)
    raw = httpx.request(method, f"{server.url}{path}", json=body, timeout=60).json()
    volatile = {"created_at", "total_duration", "load_duration", "prompt_eval_duration"}
    volatile |= {"eval_duration", "expires_at"}
    assert _without(answer.model_dump(exclude_unset=True), volatile) == _without(raw, volatile)


def _without(value: Any, keys: set[str]) -> Any:
    """``value`` with the timing fields that differ between two calls removed."""
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value


def test_show_reads_the_trained_context(server: Server) -> None:
    show = Client(server.url).show(MODEL)
    assert isinstance(show, ShowResponse) and show.context_length == 8192


def test_model_info_reads_show_and_version(server: Server) -> None:
    info = Client(server.url).model_info(MODEL)
    assert info.context_length == 8192
    assert info.llamaport and info.tool_calling


def test_typed_lists(server: Server) -> None:
    client = Client(server.url)
    assert MODEL in [m.name for m in client.tags().models]
    assert client.version().llamaport
    assert all(m.size >= m.size_vram for m in client.ps().models)
