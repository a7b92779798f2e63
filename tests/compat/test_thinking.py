"""Thinking on the native routes and on /v1, with a model whose template reasons.

The model (see ``conftest.py``) is SmolLM2 under a Qwen3-style template that
prefills ``<think>``. Whatever the tiny model writes, reasoning must come out
as ``thinking`` (native) or ``reasoning``/``reasoning_content`` (/v1) and never
as content, and with ``format`` the content must validate.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import ollama
import openai
import pytest

from tests.compat._native import ndjson, single_json
from tests.compat._thinking import THINKING_MODEL
from tests.conftest import MODEL, Server

Json = dict[str, Any]
USER = [{"role": "user", "content": "Is the sea salty? Think first."}]
GREEDY = {"temperature": 0, "num_predict": 48}
TAGS = ("<think>", "</think>")
SCHEMA = {
    "type": "object",
    "properties": {"salty": {"type": "boolean"}},
    "required": ["salty"],
    "additionalProperties": False,
}


@pytest.fixture
def think_client(thinking_server: Server) -> Any:
    with thinking_server.client() as c:
        yield c


def _chat(client: httpx.Client, **fields: Any) -> list[Json]:
    body = {"model": THINKING_MODEL, "messages": USER, "options": GREEDY, **fields}
    response = client.post("/api/chat", json=body)
    return ndjson(response) if fields.get("stream", True) else [single_json(response)]


def _parts(chunks: list[Json]) -> tuple[str, str]:
    thinking = "".join(c["message"].get("thinking", "") for c in chunks)
    return thinking, "".join(c["message"]["content"] for c in chunks)


def test_the_template_makes_the_model_a_thinking_model(think_client: httpx.Client) -> None:
    shown = think_client.post("/api/show", json={"model": THINKING_MODEL}).json()
    assert "thinking" in shown["capabilities"]
    plain = think_client.post("/api/show", json={"model": MODEL}).json()
    assert "thinking" not in plain["capabilities"]


def test_thinking_is_on_by_default_and_never_in_content(think_client: httpx.Client) -> None:
    streamed = _parts(_chat(think_client))
    whole = _parts(_chat(think_client, stream=False))
    assert streamed == whole
    thinking, content = whole
    assert thinking.strip()
    for tag in TAGS:
        assert tag not in thinking and tag not in content


def test_generate_reports_thinking_too(think_client: httpx.Client) -> None:
    body = {"model": THINKING_MODEL, "prompt": "Why is the sky blue?", "options": GREEDY}
    out = single_json(think_client.post("/api/generate", json={**body, "stream": False}))
    assert out["thinking"].strip()
    assert "</think>" not in out["response"]


def test_think_false_renders_the_template_without_thinking(think_client: httpx.Client) -> None:
    on = _chat(think_client, stream=False, think=True)[0]
    off = _chat(think_client, stream=False, think=False)[0]
    assert "thinking" not in off["message"]
    # the no-thinking form closes an empty <think></think> block in the prompt
    assert off["prompt_eval_count"] > on["prompt_eval_count"]
    assert "</think>" not in off["message"]["content"]


@pytest.mark.parametrize("think", [True, "low", None])
def test_format_with_thinking_gives_valid_content(think_client: httpx.Client, think: Any) -> None:
    fields: Json = {
        "stream": False,
        "format": SCHEMA,
        "options": {"temperature": 0, "num_predict": 160},
    }
    if think is not None:
        fields["think"] = think
    out = _chat(think_client, **fields)[0]
    assert out["done_reason"] == "stop"
    content = out["message"]["content"]
    jsonschema.validate(json.loads(content), SCHEMA)
    assert "<" not in out["message"].get("thinking", "")


def test_format_with_thinking_validates_when_streamed(think_client: httpx.Client) -> None:
    opts = {"temperature": 0.9, "seed": 7, "num_predict": 160}
    chunks = _chat(think_client, format=SCHEMA, options=opts)
    _, content = _parts(chunks)
    jsonschema.validate(json.loads(content), SCHEMA)


@pytest.mark.parametrize(("limit", "seed"), [(9, 1), (10, 2), (16, 3), (30, 4)])
def test_format_with_thinking_closes_at_the_limit(
    think_client: httpx.Client, limit: int, seed: int
) -> None:
    """A limit that runs out while thinking: ``</think>``, then the smallest document."""
    opts = {"temperature": 1.0, "seed": seed, "num_predict": limit}
    out = _chat(think_client, stream=False, format=SCHEMA, options=opts)[0]
    jsonschema.validate(json.loads(out["message"]["content"]), SCHEMA)
    assert out["eval_count"] <= limit
    if out.get("llamaport_closed") or limit == 9:  # 9 is the minimum: always closed
        assert out["llamaport_closed"] and out["done_reason"] == "length"


def test_a_limit_too_small_for_thinking_and_the_document_is_a_400(
    think_client: httpx.Client,
) -> None:
    response = think_client.post(
        "/api/chat",
        json={
            "model": THINKING_MODEL,
            "messages": USER,
            "format": SCHEMA,
            "stream": False,
            "options": {"num_predict": 2},
        },
    )
    assert response.status_code == 400
    assert "</think>" in response.json()["error"]


def test_a_model_without_thinking_refuses_think(client: httpx.Client) -> None:
    body = {"model": MODEL, "messages": USER, "think": True}
    response = client.post("/api/chat", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": '"smollm2:135m" does not support thinking'}


def test_openai_reasoning_fields(thinking_server: Server) -> None:
    with openai.OpenAI(
        base_url=f"{thinking_server.url}/v1", api_key="x", max_retries=0, timeout=300
    ) as oai:
        common: Any = {
            "model": THINKING_MODEL,
            "messages": USER,
            "temperature": 0,
            "max_tokens": 48,
        }
        whole = oai.chat.completions.create(**common, reasoning_effort="high").model_dump()
        message = whole["choices"][0]["message"]
        assert message["reasoning"] and message["reasoning"] == message["reasoning_content"]
        assert "</think>" not in (message["content"] or "")
        reasoning = content = ""
        for chunk in oai.chat.completions.create(**common, reasoning_effort="high", stream=True):
            for choice in chunk.choices:
                delta = choice.delta.model_dump()
                assert delta.get("reasoning") == delta.get("reasoning_content")
                reasoning += delta.get("reasoning") or ""
                content += delta.get("content") or ""
        assert (reasoning, content) == (message["reasoning"], message["content"])
        off = oai.chat.completions.create(**common, reasoning_effort="none").model_dump()
        assert off["choices"][0]["message"].get("reasoning") is None


def test_the_ollama_client_reads_thinking(thinking_server: Server) -> None:
    api = ollama.Client(host=thinking_server.url)
    out = api.chat(model=THINKING_MODEL, messages=USER, options=GREEDY, think="medium")
    assert out.message.thinking and "</think>" not in out.message.content
    streamed = api.chat(
        model=THINKING_MODEL, messages=USER, options=GREEDY, think="medium", stream=True
    )
    parts = [(c.message.thinking or "", c.message.content) for c in streamed]
    assert "".join(t for t, _ in parts) == out.message.thinking
