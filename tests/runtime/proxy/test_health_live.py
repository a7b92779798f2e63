"""The breaker against real servers: it opens on a dead upstream and a probe closes
it once a ``llamaport serve`` listens there; ``/api/upstreams`` and
``llamaport upstreams`` show both."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from llamaport.compat.cli.commands import Console
from llamaport.compat.cli.main import run_cli
from llamaport.storage.settings import Settings, parse_host
from tests.conftest import Server, free_port
from tests.runtime.proxy.conftest import route, start_proxy, upstream

ASK = [{"role": "user", "content": "hi"}]
AVAILABLE = 'llamaport_upstream_available{upstream="flaky"}'


def _state(client: httpx.Client) -> dict[str, object]:
    ups = client.get("/api/upstreams").json()["upstreams"]
    return dict(next(u for u in ups if u["name"] == "flaky"))


def _cli_upstreams(server: Server) -> str:
    console = Console(io.StringIO(), io.StringIO(), io.StringIO())
    code = run_cli(["upstreams"], console, Settings(host=parse_host(server.host), home=server.home))
    assert code == 0
    return console.stdout.getvalue()


def test_the_breaker_opens_then_a_probe_closes_it(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    port = free_port()
    config = upstream("flaky", "ollama", f"http://127.0.0.1:{port}") + route("m", ["flaky"])
    proxy = start_proxy(start_server, tmp_path / "proxy", config)
    with proxy.client(timeout=30) as client:
        for _ in range(2):
            assert client.post("/api/chat", json={"model": "m", "messages": ASK}).status_code == 502
        assert _state(client)["state"] == "open"
        assert proxy.gauge(AVAILABLE) == 0
        assert "flaky" in _cli_upstreams(proxy) and "open" in _cli_upstreams(proxy)
        refused = client.post("/api/chat", json={"model": "m", "messages": ASK})
        assert refused.status_code == 502 and "cooling down" in refused.json()["error"]
        start_server(tmp_path / "flaky", LLAMAPORT_HOST=f"127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        while _state(client)["state"] != "closed":
            assert time.monotonic() < deadline, "the probe never closed the breaker"
            time.sleep(0.2)
        assert "closed" in _cli_upstreams(proxy)
        assert proxy.gauge(AVAILABLE) == 1
