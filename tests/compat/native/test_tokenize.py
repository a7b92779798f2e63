"""``/api/tokenize`` and ``/api/detokenize`` (llamaport extensions, Ollama has none)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import MODEL

USER = [{"role": "user", "content": "Hello there"}]


def _tokenize(client: httpx.Client, **body: Any) -> dict[str, Any]:
    r = client.post("/api/tokenize", json={"model": MODEL, **body})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


@pytest.mark.parametrize(
    "text",
    ["Hello, world!", "def f():\n" + " " * 40 + "return 1", "你好 🙂 <|im_end|>"],
    ids=["ascii", "long-whitespace-token", "unicode-and-control-text"],
)
def test_text_round_trips(client: httpx.Client, text: str) -> None:
    out = _tokenize(client, prompt=text)
    assert out["count"] == len(out["tokens"]) > 0
    assert all(isinstance(t, int) for t in out["tokens"])
    r = client.post("/api/detokenize", json={"model": MODEL, "tokens": out["tokens"]})
    assert r.status_code == 200
    assert r.json() == {"model": MODEL, "text": text}


def test_chat_messages_count_the_rendered_prompt(client: httpx.Client) -> None:
    plain = _tokenize(client, prompt="Hello there")
    chat = _tokenize(client, messages=USER)
    assert chat["count"] > plain["count"]
    r = client.post(
        "/api/chat",
        json={"model": MODEL, "messages": USER, "stream": False, "options": {"num_predict": 1}},
    )
    assert r.json()["prompt_eval_count"] == chat["count"]


def test_the_count_is_reported_against_the_context(client: httpx.Client) -> None:
    out = _tokenize(client, prompt="hi", options={"num_ctx": 1024})
    assert out["num_ctx"] >= 1024


def test_tools_count_toward_the_prompt(client: httpx.Client) -> None:
    tool = {"type": "function", "function": {"name": "f", "description": "does f"}}
    bare = _tokenize(client, messages=USER)
    with_tools = _tokenize(client, messages=USER, tools=[tool])
    assert with_tools["count"] > bare["count"]


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/api/tokenize", {"model": MODEL}, 400, "prompt or messages is required"),
        ("/api/tokenize", {"prompt": "x"}, 400, "model is required"),
        ("/api/tokenize", {"model": "nope", "prompt": "x"}, 404, "model 'nope' not found"),
        ("/api/detokenize", {"model": MODEL, "tokens": [-1]}, 400, "invalid token id -1"),
        ("/api/detokenize", {"model": MODEL, "tokens": [10**9]}, 400, "invalid token id"),
        ("/api/detokenize", {"model": MODEL, "tokens": "abc"}, 400, "json: cannot unmarshal"),
    ],
    ids=["nothing-to-count", "no-model", "unknown-model", "negative-id", "huge-id", "not-a-list"],
)
def test_bad_requests(
    client: httpx.Client, path: str, body: dict[str, Any], status: int, message: str
) -> None:
    r = client.post(path, json=body)
    assert r.status_code == status
    assert message in r.json()["error"]
