"""An upstream behind a forward proxy: the ``HTTP_PROXY`` the server was started
with carries its requests, on both kinds, as the clients' own ``trust_env`` does.

The forward proxy is a real llamaport server: given a request in absolute form
(``POST http://node.localhost:9/api/chat``) it serves the path as its own. The
upstream's own address has nothing listening, so only the proxy can answer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Server
from tests.runtime.proxy.conftest import hits, route, start_proxy, upstream

NOWHERE = "http://node.localhost:9"
"""Port 9 (discard) has no listener here; ``.localhost`` passes the node's Host check."""


@pytest.mark.parametrize(
    ("kind", "path"), [("ollama", "/api/chat"), ("openai", "/v1/chat/completions")]
)
def test_an_upstream_is_reached_through_the_env_proxy(
    start_server: Callable[..., Server], tmp_path: Path, kind: str, path: str
) -> None:
    node = start_server(tmp_path / "node")
    env = {"HTTP_PROXY": node.url, "http_proxy": node.url, "NO_PROXY": "", "no_proxy": ""}
    config = upstream("far", kind, NOWHERE, models=["m"]) + route("m", ["far"])
    proxy = start_proxy(start_server, tmp_path / "proxy", config, **env)
    with proxy.client() as client:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": False}
        reply = client.post("/api/chat", json={**body, "options": {"num_predict": 2}})
    assert reply.status_code == 200, reply.text
    assert reply.json()["done"]
    assert hits(node, path) == 1
