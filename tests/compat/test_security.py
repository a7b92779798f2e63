"""Ollama's request guards: foreign origins and non-local Host headers get 403."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.conftest import Server


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


def test_extra_origins_come_from_the_environment(start_server: Callable[..., Server]) -> None:
    srv = start_server(LLAMAPORT_ORIGINS="chrome-extension://*")
    r = httpx.get(f"{srv.url}/", headers={"Origin": "chrome-extension://abcdef"}, timeout=10)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "chrome-extension://abcdef"
