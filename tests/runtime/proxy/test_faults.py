"""Upstream faults a real engine cannot be made to produce on demand.

A stalled upstream and one that answers garbage are stood in for by a raw
loopback socket that accepts the request and then says nothing, or writes a
fixed wrong reply: no real server does either on purpose. Everything else
here is real (the proxy is a ``llamaport serve``; the clients are httpx).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Server
from tests.runtime.proxy.conftest import DEAD, route, start_proxy, upstream

ASK = [{"role": "user", "content": "hi"}]


class RawUpstream:
    """Accepts connections on loopback; answers each request with ``reply`` (or never)."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            conn.recv(65536)
            if self.reply is None:
                self.held.append(conn)  # a stall: keep it open, say nothing
                continue
            conn.sendall(self.reply)
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for conn in self.held:
            conn.close()
        self.sock.close()


def _http(body: bytes, content_type: str) -> bytes:
    head = f"HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n"
    return head.encode() + b"connection: close\r\n\r\n" + body


@pytest.fixture
def raw() -> Iterator[Callable[[bytes | None], RawUpstream]]:
    made: list[RawUpstream] = []

    def make(reply: bytes | None) -> RawUpstream:
        made.append(RawUpstream(reply))
        return made[-1]

    yield make
    for up in made:
        up.close()


def _proxy(start_server: Callable[..., Server], tmp: Path, kind: str, url: str) -> Server:
    config = upstream("fake", kind, url, timeout_s=1.5) + route("m", ["fake"])
    return start_proxy(start_server, tmp / "proxy", config)


@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_a_stall_ends_at_timeout_s_with_504(
    start_server: Callable[..., Server],
    tmp_path: Path,
    raw: Callable[..., RawUpstream],
    kind: str,
) -> None:
    proxy = _proxy(start_server, tmp_path, kind, raw(None).url)
    with proxy.client(timeout=30) as client:
        native = client.post("/api/chat", json={"model": "m", "messages": ASK})
        assert native.status_code == 504 and "fake" in native.json()["error"]
        v1 = client.post("/v1/chat/completions", json={"model": "m", "messages": ASK})
        assert v1.status_code == 504 and "fake" in v1.json()["error"]["message"]


GARBAGE = [
    ("ollama", _http(b"this is not json\n", "application/x-ndjson")),
    ("ollama", _http(b"x" * (9 << 20) + b"\n", "application/x-ndjson")),
    ("ollama", _http(b'{"unexpected": true}\n', "application/x-ndjson")),
    ("openai", _http(b"data: {not json\n\n", "text/event-stream")),
    ("openai", _http(b'data: {"choices": 7}\n\n', "text/event-stream")),
]


@pytest.mark.parametrize(
    ("kind", "reply"),
    GARBAGE,
    ids=["ndjson-garbage", "ndjson-line-too-long", "ndjson-shape", "sse-garbage", "sse-shape"],
)
def test_garbage_from_an_upstream_is_a_502(
    start_server: Callable[..., Server],
    tmp_path: Path,
    raw: Callable[..., RawUpstream],
    kind: str,
    reply: bytes,
) -> None:
    proxy = _proxy(start_server, tmp_path, kind, raw(reply).url)
    with proxy.client(timeout=30) as client:
        native = client.post("/api/chat", json={"model": "m", "messages": ASK})
        assert native.status_code == 502, native.text
        assert "fake" in native.json()["error"]
        assert client.get("/api/version").status_code == 200
        state = client.get("/api/upstreams").json()["upstreams"][0]
        assert state["name"] == "fake" and state["last_error"]


def test_a_refused_connection_names_the_upstream_on_both_faces(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    proxy = _proxy(start_server, tmp_path, "openai", DEAD)
    with proxy.client(timeout=30) as client:
        reply = client.post("/api/generate", json={"model": "m", "prompt": "hi"})
        assert reply.status_code == 502 and "fake" in reply.json()["error"]
        embed = client.post("/v1/embeddings", json={"model": "m", "input": "hi"})
        assert embed.status_code == 502 and embed.json()["error"]["type"] == "api_error"
