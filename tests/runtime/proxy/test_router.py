"""Every face through the proxy, against real upstreams on loopback."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MODEL, Server
from tests.runtime.proxy.conftest import ONLY_B

GREEDY = {"temperature": 0, "seed": 7, "num_predict": 24}
ASK = [{"role": "user", "content": "Name three colours."}]


def _native_stream(client: httpx.Client, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    with client.stream("POST", path, json=body) as resp:
        assert resp.status_code == 200, resp.read()
        return [json.loads(line) for line in resp.iter_lines() if line]


def _text(lines: list[dict[str, Any]]) -> str:
    return "".join(
        line.get("message", {}).get("content") or line.get("response", "") for line in lines
    )


def test_native_stream_equals_the_upstream(proxy: Server, node_a: Server) -> None:
    body = {"messages": ASK, "options": GREEDY}
    with proxy.client() as via, node_a.client() as direct:
        proxied = _native_stream(via, "/api/chat", {"model": "remote-a", **body})
        straight = _native_stream(direct, "/api/chat", {"model": MODEL, **body})
    assert _text(proxied) == _text(straight) and _text(proxied)
    assert len(proxied) > 2, "tokens stream as they arrive"
    assert proxied[-1]["done"] and proxied[-1]["model"] == "remote-a"
    assert proxied[-1]["eval_count"] == straight[-1]["eval_count"]
    assert proxied[-1]["done_reason"] == straight[-1]["done_reason"]


def _sdk_stream(base: str, model: str) -> str:
    sdk = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
    stream = sdk.chat.completions.create(
        model=model,
        messages=ASK,
        temperature=0,
        seed=7,
        max_tokens=24,
        stream=True,  # type: ignore[arg-type]
    )
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def test_openai_stream_equals_the_upstream(proxy: Server, node_b: Server) -> None:
    proxied = _sdk_stream(proxy.url, "remote-b")
    assert proxied == _sdk_stream(node_b.url, MODEL) and proxied


@pytest.mark.parametrize("model", ["remote-a", "remote-b"])
def test_generate_and_completions(proxy_client: httpx.Client, model: str) -> None:
    body = {"model": model, "prompt": "Say hi.", "stream": False, "options": GREEDY}
    reply = proxy_client.post("/api/generate", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["done"] and isinstance(reply.json()["response"], str)
    sdk = openai.OpenAI(base_url=str(proxy_client.base_url) + "/v1", api_key="x", max_retries=0)
    done = sdk.completions.create(model=model, prompt="Say hi.", max_tokens=8, temperature=0)
    assert done.choices[0].finish_reason in ("stop", "length")


@pytest.mark.parametrize("model", ["remote-a", "remote-b"])
def test_embeddings_match_the_upstream(
    proxy_client: httpx.Client, node_a: Server, model: str
) -> None:
    reply = proxy_client.post("/api/embed", json={"model": model, "input": ["hello", "world"]})
    assert reply.status_code == 200, reply.text
    vectors = reply.json()["embeddings"]
    with node_a.client() as direct:
        straight = direct.post("/api/embed", json={"model": MODEL, "input": ["hello", "world"]})
    assert len(vectors) == 2
    for got, want in zip(vectors, straight.json()["embeddings"], strict=True):
        assert got == pytest.approx(want, abs=1e-4)
    sdk = openai.OpenAI(base_url=str(proxy_client.base_url) + "/v1", api_key="x", max_retries=0)
    assert len(sdk.embeddings.create(model=model, input="hello").data[0].embedding) == len(
        vectors[0]
    )


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def test_openai_sdk_tools_with_tool_choice(proxy: Server) -> None:
    sdk = openai.OpenAI(base_url=proxy.url + "/v1", api_key="x", max_retries=0)
    reply = sdk.chat.completions.create(
        model="remote-b",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=0,
    )
    calls = reply.choices[0].message.tool_calls
    assert calls and calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert isinstance(json.loads(calls[0].function.arguments)["city"], str)  # type: ignore[union-attr]


def test_openai_sdk_parse(proxy: Server) -> None:
    from pydantic import BaseModel, Field

    class City(BaseModel):
        name: str = Field(max_length=40)

    sdk = openai.OpenAI(base_url=proxy.url + "/v1", api_key="x", max_retries=0)
    done = sdk.chat.completions.parse(
        model="remote-b",
        messages=[{"role": "user", "content": "A city in France, as JSON."}],
        response_format=City,
        temperature=0,
        max_tokens=60,
    )
    assert isinstance(done.choices[0].message.parsed, City)


def test_ollama_client_chat_stream_and_embed(proxy: Server) -> None:
    import ollama

    client = ollama.Client(host=proxy.url)
    reply = client.chat(model="remote-a", messages=ASK, options=GREEDY)
    assert reply.message.role == "assistant" and reply.done
    parts = list(client.chat(model="remote-b", messages=ASK, options=GREEDY, stream=True))
    assert parts[-1].done and "".join(p.message.content or "" for p in parts)
    assert len(client.embed(model="remote-a", input="hi").embeddings[0]) > 0
    tooled = client.chat(model="remote-a", messages=ASK, tools=[WEATHER], options=GREEDY)
    assert tooled.done


def test_an_option_the_kind_lacks_is_named_in_a_warning(proxy_client: httpx.Client) -> None:
    body = {"model": "remote-b", "messages": ASK, "stream": False, "options": {"top_k": 5}}
    reply = proxy_client.post("/api/chat", json=body)
    assert reply.status_code == 200
    assert "top_k" in reply.headers["X-Llamaport-Warning"]
    assert "node-b" in reply.headers["X-Llamaport-Warning"]


def test_listings_mark_routed_models(proxy_client: httpx.Client) -> None:
    tags = {m["name"]: m for m in proxy_client.get("/api/tags").json()["models"]}
    assert tags["remote-a"]["upstream"] == "node-a" and tags["remote-a"]["remote_model"] == MODEL
    assert MODEL in tags, "local models are still listed"
    models = {m["id"]: m for m in proxy_client.get("/v1/models").json()["data"]}
    assert models["remote-b"]["owned_by"] == "node-b"
    assert proxy_client.get("/v1/models/remote-b").json()["owned_by"] == "node-b"
    show = proxy_client.post("/api/show", json={"model": "remote-b"}).json()
    assert show["upstream"] == "node-b"
    ps = {m["name"]: m for m in proxy_client.get("/api/ps").json()["models"]}
    assert ps["remote-a"]["remote"] is True


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/pull", {"model": "remote-a"}),
        ("DELETE", "/api/delete", {"model": "remote-a"}),
        ("POST", "/api/create", {"model": "remote-a", "from": MODEL}),
    ],
    ids=["pull", "delete", "create"],
)
def test_local_only_operations_refuse_a_routed_model(
    proxy_client: httpx.Client, method: str, path: str, body: dict[str, str]
) -> None:
    reply = proxy_client.request(method, path, json=body)
    assert reply.status_code == 400
    assert "node-a" in reply.json()["error"]


def test_failover_to_the_next_link(proxy_client: httpx.Client) -> None:
    body = {"model": "failover", "messages": ASK, "stream": False, "options": GREEDY}
    reply = proxy_client.post("/api/chat", json=body)
    assert reply.status_code == 200, reply.text
    dead = next(
        u for u in proxy_client.get("/api/upstreams").json()["upstreams"] if u["name"] == "dead"
    )
    assert dead["last_error"] and dead["outstanding"] == 0


def test_every_link_down_is_a_502_naming_them(proxy_client: httpx.Client) -> None:
    native = proxy_client.post("/api/chat", json={"model": "nowhere", "messages": ASK})
    assert native.status_code == 502 and "dead" in native.json()["error"]
    v1 = proxy_client.post("/v1/chat/completions", json={"model": "nowhere", "messages": ASK})
    assert v1.status_code == 502 and "dead" in v1.json()["error"]["message"]
    assert proxy_client.get("/api/version").status_code == 200, "the server keeps serving"


def test_the_key_never_shows(proxy: Server, proxy_client: httpx.Client) -> None:
    proxy_client.post("/api/chat", json={"model": "remote-b", "messages": ASK, "stream": False})
    for text in (
        proxy_client.get("/api/upstreams").text,
        proxy_client.post("/api/show", json={"model": "remote-b"}).text,
        proxy.log.read_text(),
    ):
        assert "sk-secret-never-shown" not in text


@pytest.mark.parametrize(
    ("model", "node", "path"),
    [("remote-a", "node_a", "/api/chat"), ("remote-b", "node_b", "/v1/chat/completions")],
)
def test_streams_reuse_the_connection_to_the_upstream(
    proxy_client: httpx.Client, request: pytest.FixtureRequest, model: str, node: str, path: str
) -> None:
    """Four streamed turns one after another: the upstream's access log shows them
    from one or two client ports (a background model listing may take a second
    connection), not one new connection each, which cost a reconnect per request."""
    upstream: Server = request.getfixturevalue(node)
    seen = len(upstream.access("POST", path))
    body = {"model": model, "messages": ASK, "options": {**GREEDY, "num_predict": 2}}
    for _ in range(4):
        assert _native_stream(proxy_client, "/api/chat", body)[-1]["done"]
    lines = upstream.access("POST", path)[seen:]
    ports = [line["client"].rsplit(":", 1)[1] for line in lines]
    assert len(ports) == 4, lines
    assert len(set(ports)) <= 2, ports


def test_a_link_without_the_model_is_passed_over(
    proxy_client: httpx.Client, node_b: Server
) -> None:
    """node-a, first in the chain, answers 404 for a model only node-b holds: the
    request goes on to node-b, and node-a's breaker counts nothing against it."""
    with node_b.client() as direct:
        copied = direct.post("/api/copy", json={"source": MODEL, "destination": ONLY_B})
        assert copied.status_code == 200, copied.text
    native = proxy_client.post(
        "/api/chat", json={"model": "only-b", "messages": ASK, "stream": False, "options": GREEDY}
    )
    assert native.status_code == 200, native.text
    assert native.json()["done"] and native.json()["model"] == "only-b"
    sdk = openai.OpenAI(base_url=str(proxy_client.base_url) + "/v1", api_key="x", max_retries=0)
    reply = sdk.chat.completions.create(model="only-b", messages=ASK, max_tokens=4)
    assert reply.choices[0].finish_reason in ("stop", "length")
    states = {u["name"]: u for u in proxy_client.get("/api/upstreams").json()["upstreams"]}
    assert states["node-a"]["state"] == "closed"


def test_a_model_no_link_has_is_not_found(proxy_client: httpx.Client) -> None:
    """Every link answers 404: the caller gets the 404 a missing local model gets."""
    native = proxy_client.post("/api/chat", json={"model": "on-neither", "messages": ASK})
    assert native.status_code == 404
    assert native.json() == {"error": "model 'on-neither' not found"}
    v1 = proxy_client.post("/v1/chat/completions", json={"model": "on-neither", "messages": ASK})
    assert v1.status_code == 404
    assert v1.json()["error"]["type"] == "not_found_error"
    assert "on-neither" in v1.json()["error"]["message"]
    embed = proxy_client.post("/api/embed", json={"model": "on-neither", "input": "hi"})
    assert embed.status_code == 404 and "on-neither" in embed.json()["error"]
