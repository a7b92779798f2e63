"""``POST /v1/chat/completions`` through the official OpenAI SDK and raw SSE.

The model is tiny, so only structure is asserted, never the answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.compat.openai.conftest import sdk
from tests.conftest import MODEL, Server

HI: list[Any] = [{"role": "user", "content": "Say hello."}]
STORY: list[Any] = [{"role": "user", "content": "Tell me a long story about a dragon."}]


def _check_usage(completion: ChatCompletion) -> None:
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None
    assert 0 <= (usage.prompt_tokens_details.cached_tokens or 0) <= usage.prompt_tokens


def _check_completion(completion: ChatCompletion) -> None:
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == MODEL
    assert completion.system_fingerprint == "fp_llamaport"
    assert abs(completion.created - time.time()) < 300
    (choice,) = completion.choices
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    _check_usage(completion)


def test_create(oai: openai.OpenAI) -> None:
    _check_completion(
        oai.chat.completions.create(model=MODEL, messages=HI, max_tokens=16, temperature=0)
    )


def test_async_create(server: Server) -> None:
    async def run() -> ChatCompletion:
        async with openai.AsyncOpenAI(
            base_url=f"{server.url}/v1", api_key="x", max_retries=0, timeout=120
        ) as client:
            return await client.chat.completions.create(
                model=MODEL, messages=HI, max_tokens=16, temperature=0
            )

    _check_completion(asyncio.run(run()))


def _check_stream(chunks: list[ChatCompletionChunk], n: int, usage: bool) -> None:
    """Invariants the SDK's ``stream()`` helper and naive consumers rely on."""
    assert len({c.id for c in chunks}) == 1
    assert len({c.created for c in chunks}) == 1
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    body = chunks[:-1] if usage else chunks
    assert all(len(c.choices) == 1 for c in body)
    roles = Counter(c.choices[0].index for c in body if c.choices[0].delta.role)
    assert roles == Counter(range(n))
    first = {c.choices[0].index: c.choices[0] for c in reversed(body)}
    assert all(choice.delta.role == "assistant" for choice in first.values())
    finishes = [c.choices[0] for c in body if c.choices[0].finish_reason]
    assert sorted(f.index for f in finishes) == list(range(n))
    for finish in finishes:
        assert finish.delta.content is None and finish.delta.role is None
        assert finish.finish_reason in ("stop", "length")
    ends = {c.choices[0].index: i for i, c in enumerate(body) if c.choices[0].finish_reason}
    assert all(
        c.choices[0].finish_reason or i < ends[c.choices[0].index] for i, c in enumerate(body)
    )
    if usage:
        assert chunks[-1].choices == []
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in body)


@pytest.mark.parametrize("usage", [True, False], ids=["include-usage", "no-usage"])
def test_stream_invariants(oai: openai.OpenAI, usage: bool) -> None:
    chunks = list(
        oai.chat.completions.create(
            model=MODEL,
            messages=HI,
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True} if usage else openai.omit,
        )
    )
    _check_stream(chunks, 1, usage)


def test_raw_sse_framing(client: httpx.Client) -> None:
    body = {"model": MODEL, "messages": HI, "max_tokens": 6, "stream": True}
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    assert raw.endswith("\n\n")
    frames = [f for f in raw.split("\n\n")[:-1] if not f.startswith(":")]
    assert all(f.startswith("data: ") and "\n" not in f for f in frames)
    assert frames[-1] == "data: [DONE]"
    payloads = [json.loads(f.removeprefix("data: ")) for f in frames[:-1]]
    assert payloads[0]["choices"][0]["delta"]["role"] == "assistant"
    assert payloads[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "finish_reason": payloads[-1]["choices"][0]["finish_reason"],
        "logprobs": None,
    }
    assert all("usage" not in p for p in payloads)


def test_stream_helper_collects_the_streamed_text(oai: openai.OpenAI) -> None:
    """The helper rebuilds the message from deltas (it needs every ``index``).

    It raises on ``finish_reason: length``, so the prompt is one the model
    answers briefly, and a newline stops it in any case.
    """
    greeting: list[Any] = [{"role": "user", "content": "hi"}]
    args: dict[str, Any] = {"max_tokens": 32, "temperature": 0, "stop": ["\n"]}
    deltas: list[str] = []
    with oai.chat.completions.stream(model=MODEL, messages=greeting, **args) as stream:
        for event in stream:
            if event.type == "content.delta":
                deltas.append(event.delta)
        final = stream.get_final_completion()
    assert len(deltas) > 1
    assert final.choices[0].message.content == "".join(deltas)
    plain = oai.chat.completions.create(model=MODEL, messages=greeting, **args)
    assert plain.choices[0].message.content == "".join(deltas)


def test_n_choices(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(
        model=MODEL, messages=HI, max_tokens=8, temperature=0.8, seed=3, n=2
    )
    assert [c.index for c in completion.choices] == [0, 1]
    assert all(c.message.content for c in completion.choices)
    assert completion.usage is not None and completion.usage.completion_tokens > 8 // 2


def test_n_choices_stream(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(
            model=MODEL,
            messages=HI,
            max_tokens=8,
            n=2,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    _check_stream(chunks, 2, usage=True)


def test_max_completion_tokens_wins_over_max_tokens(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(
        model=MODEL, messages=STORY, max_tokens=40, max_completion_tokens=5, temperature=0
    )
    assert completion.usage is not None and completion.usage.completion_tokens <= 5
    assert completion.choices[0].finish_reason == "length"


@pytest.mark.parametrize("stop", [" ", [" ", "\n"]], ids=["string", "list"])
def test_stop_strings(oai: openai.OpenAI, stop: str | list[str]) -> None:
    completion = oai.chat.completions.create(
        model=MODEL, messages=STORY, max_tokens=32, temperature=0, stop=stop
    )
    content = completion.choices[0].message.content or ""
    assert " " not in content
    assert completion.choices[0].finish_reason == "stop"


def test_tool_history_is_accepted(oai: openai.OpenAI) -> None:
    """A past tool round trip (arguments as a JSON string, result by call id) lowers."""
    messages: list[Any] = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
    ]
    completion = oai.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=8, temperature=0
    )
    assert completion.choices[0].message.role == "assistant"


def _ps(srv: Server) -> list[dict[str, Any]]:
    models: list[dict[str, Any]] = httpx.get(f"{srv.url}/api/ps", timeout=30).json()["models"]
    return models


def test_options_and_keep_alive_travel_in_extra_body(
    start_server: Callable[..., Server],
) -> None:
    srv = start_server()
    with sdk(srv) as client:
        client.chat.completions.create(
            model=MODEL,
            messages=HI,
            max_tokens=2,
            extra_body={"options": {"num_ctx": 1024}, "keep_alive": "5m"},
        )
        assert [m["context_length"] for m in _ps(srv)] == [1024]
        client.chat.completions.create(
            model=MODEL, messages=HI, max_tokens=2, extra_body={"keep_alive": 0}
        )
    deadline = time.monotonic() + 15
    while _ps(srv) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _ps(srv) == []


def test_an_error_mid_stream_is_an_sse_error_frame(start_server: Callable[..., Server]) -> None:
    """Killing the engine is the one clean way a real model fails after the first byte."""
    srv = start_server()
    with sdk(srv) as client:
        client.chat.completions.create(model=MODEL, messages=HI, max_tokens=1)
        (engine,) = srv.engine_pids()
        stream = client.chat.completions.create(
            model=MODEL, messages=STORY, max_tokens=400, stream=True
        )
        received = 0
        with pytest.raises(openai.APIError) as caught:
            for _ in stream:
                received += 1
                if received == 2:
                    os.kill(engine, signal.SIGKILL)
    assert received >= 2
    assert "llama runner process has terminated" in caught.value.message
    assert isinstance(caught.value.body, dict) and caught.value.body.get("type") == "api_error"
