"""An upstream that wants a key gets the one ``api_key_env`` names, on both kinds;
a wrong key opens that upstream's breaker at once; no key ever shows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Server
from tests.runtime.proxy.conftest import route, start_proxy, upstream

KEY = "sk-node-key-never-shown"
WRONG = "sk-wrong-key-never-shown"
ASK = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_the_key_is_sent_and_never_shown(
    start_server: Callable[..., Server], tmp_path: Path, kind: str
) -> None:
    node = start_server(tmp_path / "node", LLAMAPORT_API_KEY=KEY)
    config = (
        upstream("keyed", kind, node.url, api_key_env="NODE_KEY")
        + upstream("wrong", kind, node.url, api_key_env="WRONG_KEY")
        + route("m", ["keyed"])
        + route("w", ["wrong"])
    )
    proxy = start_proxy(start_server, tmp_path / "proxy", config, NODE_KEY=KEY, WRONG_KEY=WRONG)
    with proxy.client() as client:
        body = {"model": "m", "messages": ASK, "stream": False, "options": {"num_predict": 2}}
        ok = client.post("/api/chat", json=body)
        assert ok.status_code == 200, ok.text
        assert ok.json()["done"]
        refused = client.post("/api/chat", json={**body, "model": "w"})
        assert refused.status_code == 502
        assert "wrong" in refused.json()["error"] and "401" in refused.json()["error"]
        states = {u["name"]: u for u in client.get("/api/upstreams").json()["upstreams"]}
        assert states["keyed"]["state"] == "closed"
        assert states["wrong"]["state"] == "open", "a 401 cannot be retried away"
        for text in (client.get("/api/upstreams").text, refused.text, proxy.log.read_text()):
            assert KEY not in text and WRONG not in text
