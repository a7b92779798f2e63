"""Tool calling on ``/api/chat`` with the real model.

SmolLM2's template has no tool support, so these exercise llamaport's generic
tool preamble; ``tool_choice`` (a llamaport extension on the native route)
forces a call by grammar, which the assertions rely on. ``auto`` makes no
promise about what a tiny model chooses, so it is checked for shape only.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import jsonschema
import ollama
import pytest

from tests.conftest import MODEL, Server

WEATHER_PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 20}},
    "required": ["city"],
    "additionalProperties": False,
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": WEATHER_PARAMS,
        },
    },
    {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two integers",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
                "additionalProperties": False,
            },
        },
    },
]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def _chat(client: httpx.Client, **body: Any) -> dict[str, Any]:
    payload = {
        "model": MODEL,
        "messages": ASK,
        "tools": TOOLS,
        "stream": False,
        "options": {"num_predict": 64, "temperature": 0},
        **body,
    }
    r = client.post("/api/chat", json=payload)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _params(name: str) -> dict[str, Any]:
    params: dict[str, Any] = next(t for t in TOOLS if t["function"]["name"] == name)["function"][
        "parameters"
    ]
    return params


def test_required_returns_a_valid_call(client: httpx.Client) -> None:
    message = _chat(client, tool_choice="required")["message"]
    (call,) = message["tool_calls"]
    assert re.fullmatch(r"call_[a-z0-9]{8}", call["id"])
    fn = call["function"]
    assert fn["index"] == 0
    assert fn["name"] in {"get_weather", "add"}
    assert isinstance(fn["arguments"], dict)
    jsonschema.validate(fn["arguments"], _params(fn["name"]))
    assert message["content"] == ""


def test_a_named_function_is_the_one_called(client: httpx.Client) -> None:
    choice = {"type": "function", "function": {"name": "add"}}
    (call,) = _chat(client, tool_choice=choice)["message"]["tool_calls"]
    assert call["function"]["name"] == "add"
    jsonschema.validate(call["function"]["arguments"], _params("add"))


def test_none_never_calls(client: httpx.Client) -> None:
    message = _chat(client, tool_choice="none")["message"]
    assert "tool_calls" not in message
    assert isinstance(message["content"], str)


def test_auto_gives_content_or_valid_calls(client: httpx.Client) -> None:
    message = _chat(client)["message"]
    for call in message.get("tool_calls", []):
        jsonschema.validate(call["function"]["arguments"], _params(call["function"]["name"]))
    assert "tool_calls" in message or message["content"]


def test_streamed_forced_call_comes_whole_before_the_final_chunk(client: httpx.Client) -> None:
    body = {
        "model": MODEL,
        "messages": ASK,
        "tools": TOOLS,
        "tool_choice": "required",
        "options": {"num_predict": 64, "temperature": 0},
    }
    with client.stream("POST", "/api/chat", json=body) as r:
        lines = [json.loads(x) for x in r.iter_lines()]
    assert all("content" in line["message"] for line in lines)
    calls = [c for line in lines for c in line["message"].get("tool_calls", [])]
    assert len(calls) == 1 and lines[-1]["done"] is True
    assert "tool_calls" not in lines[-1]["message"]


def test_tool_results_go_back_into_the_prompt(client: httpx.Client) -> None:
    first = _chat(client, tool_choice={"type": "function", "function": {"name": "get_weather"}})
    history = [
        *ASK,
        first["message"],
        {"role": "tool", "content": "18 degrees and sunny", "tool_name": "get_weather"},
    ]
    second = _chat(client, messages=history, tool_choice="none")
    without = _chat(client, messages=history[:-1], tool_choice="none")
    assert second["message"]["content"]
    assert second["prompt_eval_count"] > without["prompt_eval_count"]


def test_the_ollama_client_validates_tool_calls(server: Server) -> None:
    client = ollama.Client(host=server.url)
    response = client.chat(
        model=MODEL,
        messages=ASK,
        tools=TOOLS,
        options={"num_predict": 64, "temperature": 0},
    )
    assert response.message.role == "assistant"
    for call in response.message.tool_calls or []:
        assert isinstance(call.function.arguments, dict)


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        ({"type": "function", "function": {"name": "nope"}}, "not in tools"),
        ("sometimes", "tool_choice must be"),
    ],
    ids=["unknown-function", "bad-choice"],
)
def test_bad_tool_choice_is_400(client: httpx.Client, choice: object, message: str) -> None:
    r = client.post(
        "/api/chat", json={"model": MODEL, "messages": ASK, "tools": TOOLS, "tool_choice": choice}
    )
    assert r.status_code == 400 and message in r.json()["error"]


def test_format_and_a_forced_call_do_not_mix(client: httpx.Client) -> None:
    r = client.post(
        "/api/chat",
        json={
            "model": MODEL,
            "messages": ASK,
            "tools": TOOLS,
            "tool_choice": "required",
            "format": "json",
        },
    )
    assert r.status_code == 400
