"""Ollama's request guards: foreign origins and non-local Host headers get 403."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import openai
import pytest

from tests.conftest import MODEL, Server, _launch


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 200),
        ({"Origin": "http://localhost:3000"}, 200),
        ({"Origin": "http://127.0.0.1"}, 200),
        ({"Origin": "vscode-webview://abc"}, 200),
        ({"Origin": "https://evil.example"}, 403),
        ({"Host": "localhost:11434"}, 200),
        ({"Host": "myapp.local"}, 200),
        ({"Host": "192.168.1.7:11434"}, 200),
        ({"Host": "evil.example"}, 403),
        ({"Host": "8.8.8.8"}, 403),
    ],
    ids=[
        "none",
        "localhost-origin",
        "loopback-origin",
        "vscode",
        "foreign-origin",
        "localhost-host",
        "dot-local",
        "private-ip",
        "rebound-name",
        "public-ip",
    ],
)
def test_origin_and_host_checks(server: Server, headers: dict[str, str], status: int) -> None:
    r = httpx.get(f"{server.url}/api/version", headers=headers, timeout=10)
    assert r.status_code == status
    if status == 403:
        assert r.content == b""


def test_allowed_origins_get_cors_headers(server: Server) -> None:
    r = httpx.options(
        f"{server.url}/api/chat",
        headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://localhost:5173"


def test_a_page_may_read_llamaport_headers(server: Server) -> None:
    """A page on an allowed origin can read the warning, upstream and closed-document
    headers (a browser hides any response header CORS does not expose)."""
    r = httpx.get(f"{server.url}/api/version", headers={"Origin": "http://localhost:5173"})
    assert r.status_code == 200
    exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    assert exposed == {"x-llamaport-warning", "x-llamaport-upstream", "x-llamaport-closed"}


def test_extra_origins_come_from_the_environment(start_server: Callable[..., Server]) -> None:
    srv = start_server(LLAMAPORT_ORIGINS="chrome-extension://*")
    r = httpx.get(f"{srv.url}/", headers={"Origin": "chrome-extension://abcdef"}, timeout=10)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "chrome-extension://abcdef"


KEY = "s3cret-key"
LIMIT = 4096


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with an API key and a small body limit (both beyond Ollama)."""
    srv = _launch(
        tmp_path_factory.mktemp("guarded"),
        {"LLAMAPORT_API_KEY": KEY, "LLAMAPORT_MAX_REQUEST_BYTES": str(LIMIT)},
    )
    yield srv
    srv.stop()


AUTH = {"Authorization": f"Bearer {KEY}"}
SMALL = {"model": MODEL, "prompt": "hi", "stream": False, "options": {"num_predict": 1}}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}])
def test_native_routes_want_the_api_key(guarded: Server, headers: dict[str, str]) -> None:
    with guarded.client() as c:
        r = c.post("/api/generate", json=SMALL, headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        assert "API key" in r.json()["error"]
        assert c.get("/api/tags", headers=headers).status_code == 401
        assert c.head("/").status_code == 200
        assert c.post("/api/generate", json=SMALL, headers=AUTH).json()["done"] is True


def test_openai_routes_want_the_api_key(guarded: Server) -> None:
    bad = openai.OpenAI(base_url=f"{guarded.url}/v1", api_key="wrong", max_retries=0)
    with bad, pytest.raises(openai.AuthenticationError) as info:
        bad.models.list()
    assert info.value.code == "invalid_api_key"
    with openai.OpenAI(base_url=f"{guarded.url}/v1", api_key=KEY, max_retries=0) as good:
        assert [m.id for m in good.models.list()] == [MODEL]


def test_a_large_body_is_a_413_in_each_envelope(guarded: Server) -> None:
    big = {"model": MODEL, "messages": [{"role": "user", "content": "x" * (2 * LIMIT)}]}
    with guarded.client() as c:
        native = c.post("/api/chat", json=big, headers=AUTH)
        assert native.status_code == 413
        assert "LLAMAPORT_MAX_REQUEST_BYTES" in native.json()["error"]
        v1 = c.post("/v1/chat/completions", json=big, headers=AUTH)
        assert v1.status_code == 413
        assert v1.json()["error"]["type"] == "invalid_request_error"

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is met while reading
            body = json.dumps(big).encode()
            for i in range(0, len(body), 1024):
                yield body[i : i + 1024]

        streamed = c.post("/api/chat", content=chunks(), headers=AUTH)
        assert streamed.status_code == 413
        assert "LLAMAPORT_MAX_REQUEST_BYTES" in streamed.json()["error"]
        assert c.post("/api/generate", json=SMALL, headers=AUTH).status_code == 200
