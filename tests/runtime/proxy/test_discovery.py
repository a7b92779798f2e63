"""Model discovery: an upstream configured without ``models`` is asked for its list
(``/api/tags`` for kind ollama, ``/v1/models`` for kind openai), and a model only
it has is then routed to it with no ``[[route]]`` written; an upstream whose URL
has a path (Ollama behind a path-routing reverse proxy) is asked under it."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import MODEL, Server, _launch
from tests.runtime.proxy.conftest import hits, start_proxy, upstream

ONLY_THERE = "only-upstream:latest"

UNDER_OLLAMA = """
import uvicorn
from llamaport.compat.app import create_app
from llamaport.storage.settings import load_settings

settings = load_settings()
app = create_app(settings)


async def under_ollama(scope, receive, send):
    # llamaport's app under /ollama, as a path-routing reverse proxy serves it
    if scope["type"] == "http":
        if not scope["path"].startswith("/ollama/"):
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        cut = len("/ollama")
        scope = {**scope, "path": scope["path"][cut:], "raw_path": scope["raw_path"][cut:]}
    await app(scope, receive, send)


uvicorn.run(under_ollama, host=settings.host.bind_host, port=settings.host.port)
"""
"""A real llamaport app and uvicorn, reached only under ``/ollama/``."""


def _listed(client: httpx.Client, name: str, timeout: float = 30.0) -> dict[str, object]:
    """``name``'s entry in the proxy's ``/api/tags``, once discovery has found it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tags = {m["name"]: m for m in client.get("/api/tags").json()["models"]}
        if name in tags:
            return tags[name]
        time.sleep(0.1)
    raise AssertionError(f"{name} never appeared in the proxy's /api/tags")


@pytest.mark.parametrize(
    ("kind", "path"), [("ollama", "/api/chat"), ("openai", "/v1/chat/completions")]
)
def test_a_discovered_model_is_routed_to_its_upstream(
    start_server: Callable[..., Server], tmp_path: Path, kind: str, path: str
) -> None:
    node = start_server(tmp_path / "node")
    with node.client() as client:
        copied = client.post("/api/copy", json={"source": MODEL, "destination": ONLY_THERE})
        assert copied.status_code == 200, copied.text
    proxy = start_proxy(start_server, tmp_path / "proxy", upstream("node", kind, node.url))
    with proxy.client() as client:
        entry = _listed(client, ONLY_THERE)
        assert entry["upstream"] == "node"
        body = {
            "model": ONLY_THERE,
            "messages": [{"role": "user", "content": "Hi"}],
            "stream": False,
            "options": {"num_predict": 4},
        }
        reply = client.post("/api/chat", json=body)
        assert reply.status_code == 200, reply.text
        assert reply.json()["done"] is True
        ps = {m["name"]: m for m in client.get("/api/ps").json()["models"]}
        assert ps[ONLY_THERE]["remote"] is True
    assert hits(node, path) == 1, "the upstream served the turn in its own protocol"


def test_an_undiscovered_model_is_served_locally(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    """A model no upstream lists (and no route names) stays on the local runtime."""
    node = start_server(tmp_path / "node")
    with node.client() as client:
        assert client.request("DELETE", "/api/delete", json={"model": MODEL}).status_code == 200
    proxy = start_proxy(start_server, tmp_path / "proxy", upstream("node", "ollama", node.url))
    with proxy.client() as client:
        deadline = time.monotonic() + 30
        while not node.access("GET", "/api/tags"):
            assert time.monotonic() < deadline, "the proxy never asked the upstream for its list"
            time.sleep(0.1)
        body = {"model": MODEL, "prompt": "Hi", "stream": False, "options": {"num_predict": 4}}
        reply = client.post("/api/generate", json=body)
        assert reply.status_code == 200, reply.text
        assert "upstream" not in _listed(client, MODEL)
    assert hits(node, "/api/generate") == 0 and hits(node, "/api/chat") == 0


def test_an_ollama_upstream_behind_a_path_keeps_the_path(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    node = _launch(
        tmp_path / "node", {}, command=[sys.executable, "-c", UNDER_OLLAMA], probe="/ollama/"
    )
    try:
        with httpx.Client(base_url=f"{node.url}/ollama", timeout=60) as client:
            copied = client.post("/api/copy", json={"source": MODEL, "destination": ONLY_THERE})
            assert copied.status_code == 200, copied.text
        config = upstream("node", "ollama", f"{node.url}/ollama")
        proxy = start_proxy(start_server, tmp_path / "proxy", config)
        with proxy.client() as client:
            assert _listed(client, ONLY_THERE)["upstream"] == "node"
            body = {"model": ONLY_THERE, "prompt": "Hi", "options": {"num_predict": 4}}
            with client.stream("POST", "/api/generate", json=body) as reply:
                assert reply.status_code == 200
                lines = [line for line in reply.iter_lines() if line]
            assert json.loads(lines[-1])["done"] is True
        # the app logs the path it sees: only /ollama/api/generate reaches it as this
        assert hits(node, "/api/generate") == 1
    finally:
        node.stop()
