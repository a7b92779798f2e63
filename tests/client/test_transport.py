"""The shared transport: retries (503 and connection errors only), errors, NDJSON.

The retry tests use a tiny scripted HTTP server, because a real llamaport
cannot be made to answer 503 a chosen number of times and then succeed
(its queue-full 503 depends on timing); everything else uses the live server.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from llamaport.client import ResponseError, Transport
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


def test_503_is_retried_until_it_succeeds(scripted: Scripted) -> None:
    srv = scripted([(503, {"error": "server busy"}), (503, {"error": "busy"}), (200, {"ok": 1})])
    assert Transport(srv.url, max_retries=2).request("POST", "/api/chat", {}) == {"ok": 1}
    assert srv.requests == 3


def test_retries_stop_at_max_retries(scripted: Scripted) -> None:
    srv = scripted([(503, {"error": "server busy"})])
    with pytest.raises(ResponseError) as caught:
        Transport(srv.url, max_retries=1).request("POST", "/api/chat", {})
    assert caught.value.status_code == 503 and caught.value.message == "server busy"
    assert srv.requests == 2


@pytest.mark.parametrize("status", [400, 404, 500], ids=["bad-request", "not-found", "server"])
def test_other_errors_are_not_retried(scripted: Scripted, status: int) -> None:
    srv = scripted([(status, {"error": {"message": "nope", "type": "x"}})])
    with pytest.raises(ResponseError, match="nope") as caught:
        Transport(srv.url, max_retries=3).request("POST", "/api/chat", {})
    assert caught.value.status_code == status
    assert srv.requests == 1


async def test_async_requests_retry_too(scripted: Scripted) -> None:
    srv = scripted([(503, {"error": "busy"}), (200, {"ok": 2})])
    assert await Transport(srv.url).arequest("POST", "/api/chat", {}) == {"ok": 2}
    assert srv.requests == 2


def test_a_closed_port_raises_the_connection_error() -> None:
    with pytest.raises(httpx.ConnectError):
        Transport(NO_SERVER, max_retries=1).request("GET", "/api/version")


def test_native_errors_carry_the_servers_message(server: Server) -> None:
    with pytest.raises(ResponseError) as caught:
        Transport(server.url).request("POST", "/api/chat", {"model": "nosuch:model"})
    assert caught.value.status_code == 404
    assert "not found" in caught.value.message


def test_streams_yield_every_ndjson_object_up_to_done(server: Server) -> None:
    body = {"model": MODEL, "prompt": "Hi", "options": {"num_predict": 4}}
    parts = list(Transport(server.url).stream("/api/generate", body))
    assert parts[-1]["done"] is True
    assert all(p["done"] is False for p in parts[:-1])


def test_model_info_reads_show_and_version(server: Server) -> None:
    info = Transport(server.url).model_info(MODEL)
    assert info.context_length == 8192
    assert info.llamaport and info.tool_calling
