"""Model discovery: an upstream configured without ``models`` is asked for its list
(``/api/tags`` for kind ollama, ``/v1/models`` for kind openai), and a model only
it has is then routed to it with no ``[[route]]`` written."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import MODEL, Server
from tests.runtime.proxy.conftest import hits, start_proxy, upstream

ONLY_THERE = "only-upstream:latest"


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
        while '"GET /api/tags ' not in node.log.read_text():
            assert time.monotonic() < deadline, "the proxy never asked the upstream for its list"
            time.sleep(0.1)
        body = {"model": MODEL, "prompt": "Hi", "stream": False, "options": {"num_predict": 4}}
        reply = client.post("/api/generate", json=body)
        assert reply.status_code == 200, reply.text
        assert "upstream" not in _listed(client, MODEL)
    assert hits(node, "/api/generate") == 0 and hits(node, "/api/chat") == 0
