"""Each upstream's requests by how they ended, and its gauges, in ``/api/upstreams``,
``/metrics`` and ``llamaport upstreams``, against real upstreams on loopback."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai

from llamaport.compat.cli.commands import Console
from llamaport.compat.cli.main import run_cli
from llamaport.storage.settings import Settings, parse_host
from tests.conftest import MODEL, UNENDING, Server, metric_samples
from tests.runtime.proxy.conftest import DEAD, ONLY_B, route, start_proxy, upstream

ASK = [{"role": "user", "content": "Name three colours."}]
SHORT = {"temperature": 0, "seed": 7, "num_predict": 4}
UPSTREAM = "X-Llamaport-Upstream"


def _metrics(client: httpx.Client) -> dict[str, dict[tuple[str, ...], float]]:
    """Each ``llamaport_upstream_*`` sample by name, keyed by its label values
    (upstream, then outcome)."""
    out: dict[str, dict[tuple[str, ...], float]] = {}
    for (name, labels), value in metric_samples(client).items():
        if name.startswith("llamaport_upstream_"):
            by = dict(labels)
            key = (by["upstream"], *([by["outcome"]] if "outcome" in by else []))
            out.setdefault(name, {})[key] = value
    return out


def _views(client: httpx.Client) -> dict[str, dict[str, object]]:
    return {u["name"]: u for u in client.get("/api/upstreams").json()["upstreams"]}


def _chat(client: httpx.Client, model: str) -> str | None:
    """Which upstream served a non-streamed native chat (its response header)."""
    body = {"model": model, "messages": ASK, "stream": False, "options": SHORT}
    reply = client.post("/api/chat", json=body)
    assert reply.status_code == 200, reply.text
    return reply.headers.get(UPSTREAM)


def test_requests_are_counted_by_how_they_ended(
    start_server: Callable[..., Server], tmp_path: Path, node_a: Server, node_b: Server
) -> None:
    config = (
        upstream("node-a", "ollama", node_a.url)
        + upstream("node-b", "openai", node_b.url)
        + upstream("dead", "ollama", DEAD)
        + route("remote-a", ["node-a"])
        + route("fallback", ["dead", "node-a"], "first")
        + route("only-b", ["node-a", "node-b"], "first", ONLY_B)
    )
    with node_b.client() as direct:
        copied = direct.post("/api/copy", json={"source": MODEL, "destination": ONLY_B})
        assert copied.status_code == 200, copied.text
    proxy = start_proxy(start_server, tmp_path / "proxy", config)
    with proxy.client() as client:
        assert _chat(client, "remote-a") == "node-a"  # node-a: ok
        assert _chat(client, "fallback") == "node-a"  # dead: unavailable after 3 tries
        assert _chat(client, "only-b") == "node-b"  # node-a: missing (404)
        conversation = client.post("/v1/conversations", json={}).json()["id"]
        stored = {"model": "remote-a", "messages": ASK, "options": SHORT}
        with client.stream("POST", "/api/chat", json={**stored, "conversation": conversation}) as r:
            assert r.status_code == 200 and [line for line in r.iter_lines() if line]  # node-a: ok
        sdk = openai.OpenAI(base_url=proxy.url + "/v1", api_key="x", max_retries=0)
        sse = sdk.chat.completions.create(model="remote-a", messages=ASK, max_tokens=4, stream=True)
        assert [c for c in sse]  # node-a: ok
        body = {"model": "remote-a", "messages": ASK, "format": UNENDING}
        with client.stream(
            "POST", "/api/chat", json={**body, "options": {"num_predict": 1500}}
        ) as r:
            assert r.status_code == 200
            lines = r.iter_lines()  # kept: a dropped iterator closes the response
            assert next(lines)
            held = _metrics(client)
        deadline = time.monotonic() + 30
        while _views(client)["node-a"]["requests"].get("canceled") != 1:  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "the closed stream was never counted"
            time.sleep(0.05)
        views, metrics = _views(client), _metrics(client)

    assert held["llamaport_upstream_outstanding"][("node-a",)] == 1, "the open stream"
    assert views["node-a"]["requests"] == {"ok": 4, "missing": 1, "canceled": 1}
    assert views["node-b"]["requests"] == {"ok": 1}
    assert views["dead"]["requests"] == {"unavailable": 1}
    assert (views["dead"]["retries"], views["node-a"]["retries"]) == (2, 0)
    assert views["node-a"]["outstanding"] == 0
    for name, view in views.items():
        counts = view["requests"]
        assert isinstance(counts, dict)
        for outcome, n in counts.items():
            assert metrics["llamaport_upstream_requests_total"][(name, outcome)] == n
        assert metrics["llamaport_upstream_retries_total"][(name,)] == view["retries"]
        assert metrics["llamaport_upstream_available"][(name,)] == 1, "one failure opens nothing"
        assert metrics["llamaport_upstream_waiting"][(name,)] == 0

    console = Console(io.StringIO(), io.StringIO(), io.StringIO())
    settings = Settings(host=parse_host(proxy.host), home=proxy.home)
    assert run_cli(["upstreams"], console, settings) == 0
    table = console.stdout.getvalue()
    assert "canceled=1 missing=1 ok=4" in table and "unavailable=1" in table, table


def test_a_server_without_upstreams_names_none(node_a: Server) -> None:
    with node_a.client() as client:
        assert _chat(client, MODEL) is None
        assert _metrics(client) == {}
        assert "llamaport_queue_depth" in client.get("/metrics").text
    access = node_a.access()
    assert access and not any("upstream" in line for line in access)


def test_each_reply_names_the_upstream_that_served_it(
    start_server: Callable[..., Server], tmp_path: Path, node_a: Server
) -> None:
    """On every face, streamed or not, and for embeddings: the header, the access
    log line and the per-upstream time to first token; ``local`` for this server's
    own runtime as a link of a route."""
    config = (
        upstream("node-a", "ollama", node_a.url)
        + route("remote-a", ["node-a"])
        + route(MODEL, ["local", "node-a"], "first")
    )
    proxy = start_proxy(start_server, tmp_path / "proxy", config)
    chat = {"messages": ASK, "max_tokens": 4, "temperature": 0}
    with proxy.client() as client:
        for model, served in (("remote-a", "node-a"), (MODEL, "local")):
            assert _chat(client, model) == served
            body = {"model": model, "messages": ASK, "options": SHORT}
            with client.stream("POST", "/api/chat", json=body) as r:
                assert r.headers.get(UPSTREAM) == served and list(r.iter_lines())
            for stream in (False, True):
                v1 = {"model": model, **chat, "stream": stream}
                with client.stream("POST", "/v1/chat/completions", json=v1) as r:
                    assert r.headers.get(UPSTREAM) == served and list(r.iter_lines())
            responses = {"model": model, "input": "Name three colours.", "max_output_tokens": 16}
            assert client.post("/v1/responses", json=responses).headers.get(UPSTREAM) == served
            for path, key in (("/api/embed", "input"), ("/api/embeddings", "prompt")):
                embedded = client.post(path, json={"model": model, key: "hello"})
                assert embedded.headers.get(UPSTREAM) == served, path
            v1_embed = client.post("/v1/embeddings", json={"model": model, "input": "hello"})
            assert v1_embed.headers.get(UPSTREAM) == served
        two = client.post("/v1/chat/completions", json={"model": "remote-a", **chat, "n": 2})
        assert two.headers.get(UPSTREAM) == "node-a", "both choices from one upstream"
        ttft = _metrics(client)["llamaport_upstream_time_to_first_token_seconds_count"]
    served = [line.get("upstream") for line in proxy.access()]
    assert served.count("node-a") == 9, "five generations, three embeddings, n=2 on one line"
    assert served.count("local") == 8
    assert ttft == {("node-a",): 7, ("local",): 5}


def test_choices_served_by_two_upstreams_name_both(
    start_server: Callable[..., Server], tmp_path: Path, node_a: Server, node_b: Server
) -> None:
    """``n=2`` on a balanced route: the two choices start together, so the second
    goes to the link the first left idle. The header and the request's one
    access line name both upstreams, once each."""
    config = (
        upstream("node-a", "ollama", node_a.url)
        + upstream("node-b", "ollama", node_b.url)
        + route("spread", ["node-a", "node-b"])
    )
    proxy = start_proxy(start_server, tmp_path / "proxy", config)
    body = {"model": "spread", "messages": ASK, "max_tokens": 4, "n": 2, "temperature": 1}
    with proxy.client() as client:
        reply = client.post("/v1/chat/completions", json=body)
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["choices"]) == 2
    assert sorted(reply.headers[UPSTREAM].split(", ")) == ["node-a", "node-b"]
    (line,) = proxy.access("POST", "/v1/chat/completions")
    assert sorted(line["upstream"].split(", ")) == ["node-a", "node-b"], line
    assert line["tokens_out"] == reply.json()["usage"]["completion_tokens"]
