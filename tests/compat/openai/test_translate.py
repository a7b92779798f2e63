"""The pure ``/v1`` translations, without a server: requests in, runtime types out,
chunks in, OpenAI frames out. Runtime chunks here are built by hand because
tool-call chunks cannot come from the real model yet.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import struct
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from llamaport.compat.errors import ApiError
from llamaport.compat.openai import protocol, routes, translate
from llamaport.compat.openai.protocol import ChatBody, CompletionBody, EmbeddingBody
from llamaport.compat.openai.render import (
    ChatStream,
    CompletionStream,
    ResponseHead,
    chat_completion,
    embedding_response,
)
from llamaport.compat.openai.translate import chat_request, fan_out
from llamaport.runtime.types import (
    Chunk,
    EmbedResult,
    Metrics,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    link_tool_results,
)

USER = [{"role": "user", "content": "hi"}]


def _chat(**fields: Any) -> ChatBody:
    return ChatBody.model_validate({"model": "m", "messages": USER, **fields})


def _done(reason: str = "stop", prompt: int = 5, evals: int = 3, cached: int = 2) -> Chunk:
    metrics = Metrics(prompt_eval_count=prompt, eval_count=evals, prompt_cached_count=cached)
    return Chunk(done=True, done_reason=reason, metrics=metrics)  # type: ignore[arg-type]


WEATHER = ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"}, index=0)


@pytest.mark.parametrize("module", ["", ".protocol", ".translate", ".routes"])
def test_all_lists_public_names(module: str) -> None:
    mod = importlib.import_module(f"llamaport.compat.openai{module}")
    assert len(mod.__all__) == len(set(mod.__all__))
    for name in mod.__all__:
        assert hasattr(mod, name), name
    assert protocol and routes and translate


def test_messages_lower_into_runtime_messages() -> None:
    req = chat_request(
        _chat(
            messages=[
                {"role": "developer", "content": "be brief"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "one"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}},
                        {"type": "text", "text": "two"},
                        {"type": "image_url", "image_url": "https://example.com/x.png"},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "reasoning": "hmm",
                    "tool_calls": [
                        {
                            "id": "c9",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c9", "content": "cold"},
                {"role": "tool", "tool_call_id": "c9", "name": "other", "content": "x"},
            ]
        )
    )
    system, user, assistant, tool, named = req.messages or []
    assert (system.role, system.content) == ("system", "be brief")
    assert user.content == "one\ntwo"
    assert user.images == ["QUJD", "https://example.com/x.png"]
    assert assistant.thinking == "hmm"
    assert assistant.tool_calls == [ToolCall("c9", "get_weather", {"city": "Oslo"})]
    assert (tool.role, tool.tool_call_id, tool.tool_name) == ("tool", "c9", None)
    assert named.tool_name == "other"
    _, _, _, tool, named = link_tool_results(req.messages or [])
    assert tool.tool_name == "get_weather", "the runtime names a result after its call"
    assert named.tool_name == "other"


def test_explicit_fields_win_over_the_options_extension() -> None:
    req = chat_request(
        _chat(
            options={"num_ctx": 1024, "temperature": 0.1, "seed": 1, "top_k": 3},
            temperature=0.5,
            seed=9,
            max_tokens=20,
            max_completion_tokens=7,
            stop="END",
            frequency_penalty=0.2,
            keep_alive="1m",
        )
    )
    assert req.options == {
        "num_ctx": 1024,
        "temperature": 0.5,
        "seed": 9,
        "top_k": 3,
        "num_predict": 7,
        "stop": ["END"],
        "frequency_penalty": 0.2,
    }
    assert req.keep_alive == 60


def test_absent_sampling_fields_stay_absent() -> None:
    """Unlike Ollama, no temperature/top_p of 1.0 is forced over the Modelfile's."""
    assert chat_request(_chat()).options == {}


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [
        (None, None),
        ({"type": "text"}, None),
        ({"type": "json_object"}, "json"),
        (
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
            {"type": "object"},
        ),
    ],
    ids=["absent", "text", "json_object", "json_schema"],
)
def test_response_format(response_format: Any, expected: Any) -> None:
    assert chat_request(_chat(response_format=response_format)).format == expected


@pytest.mark.parametrize(
    ("fields", "think"),
    [
        ({}, None),
        ({"reasoning_effort": "none"}, False),
        ({"reasoning_effort": "minimal"}, "low"),
        ({"reasoning_effort": "medium"}, "medium"),
        ({"reasoning_effort": "xhigh"}, "max"),
        ({"reasoning": {"effort": "high"}, "reasoning_effort": "low"}, "high"),
    ],
    ids=["absent", "none", "minimal", "medium", "xhigh", "reasoning-preferred"],
)
def test_reasoning_effort_maps_to_think(fields: dict[str, Any], think: Any) -> None:
    assert chat_request(_chat(**fields)).think == think


def test_tools_and_tool_choice_pass_through() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    choice = {"type": "function", "function": {"name": "f"}}
    req = chat_request(_chat(tools=tools, tool_choice=choice, parallel_tool_calls=False))
    assert req.tools == tools
    assert req.tool_choice == choice
    assert req.parallel_tool_calls is False
    assert chat_request(_chat()).parallel_tool_calls is True


def test_fan_out_gives_each_choice_its_own_seed() -> None:
    seeded = fan_out(chat_request(_chat(seed=7)), 3)
    assert [r.options["seed"] for r in seeded] == [7, 8, 9]
    assert all("seed" not in r.options for r in fan_out(chat_request(_chat()), 2))


def test_chat_stream_frames() -> None:
    stream = ChatStream(ResponseHead("chatcmpl-1", 100, "m", include_usage=True))
    items = [
        (0, Chunk(text="Hel")),
        (1, Chunk(tool_calls=[WEATHER])),
        (0, Chunk(text="lo")),
        (0, Chunk(text="")),
        (0, _done("length")),
        (1, _done("stop", evals=4, cached=5)),
    ]
    frames = [f for item in items for f in stream.render(item)] + stream.tail()
    assert {(f["id"], f["created"], f["object"]) for f in frames[:-1]} == {
        ("chatcmpl-1", 100, "chat.completion.chunk")
    }
    choices = [f["choices"][0] for f in frames[:-1]]
    assert [c["delta"] for c in choices] == [
        {"role": "assistant", "content": "Hel"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"content": "lo"},
        {},
        {},
    ]
    assert [(c["index"], c["finish_reason"]) for c in choices] == [
        (0, None),
        (1, None),
        (0, None),
        (0, "length"),
        (1, "tool_calls"),
    ]
    assert frames[-1]["choices"] == []
    assert frames[-1]["usage"] == {
        "prompt_tokens": 5,
        "completion_tokens": 7,
        "total_tokens": 12,
        "prompt_tokens_details": {"cached_tokens": 5},
    }


def test_no_usage_chunk_unless_asked() -> None:
    stream = ChatStream(ResponseHead("c", 1, "m"))
    assert stream.render((0, _done())) and stream.tail() == []


def test_completion_stream_frames() -> None:
    stream = CompletionStream(ResponseHead("cmpl-1", 1, "m"))
    frames = [
        f
        for item in [(0, Chunk(text="a")), (0, Chunk()), (0, _done())]
        for f in stream.render(item)
    ]
    assert [f["choices"][0] for f in frames] == [
        {"text": "a", "index": 0, "finish_reason": None, "logprobs": None},
        {"text": "", "index": 0, "finish_reason": "stop", "logprobs": None},
    ]


def test_non_stream_tool_calls_have_string_arguments_and_null_content() -> None:
    out = chat_completion(
        ResponseHead("c", 1, "m"), [(0, Chunk(tool_calls=[WEATHER])), (0, _done())]
    )
    (choice,) = out["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert (call["id"], call["type"]) == ("call_1", "function")


def test_base64_embeddings_are_little_endian_float32() -> None:
    result = EmbedResult([[0.5, -0.25]], 3, 0, 0)
    out = embedding_response("m", result, "base64")
    raw = base64.b64decode(out["data"][0]["embedding"])
    assert struct.unpack("<2f", raw) == (0.5, -0.25)
    assert out["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (CompletionBody(model="m", prompt=None), "one prompt"),
        (EmbeddingBody(model="m", input=[1, 2]), "token arrays"),
    ],
    ids=["no-prompt", "tokens"],
)
def test_shapes_the_runtime_cannot_take_are_refused(
    body: CompletionBody | EmbeddingBody, message: str
) -> None:
    with pytest.raises(ApiError) as caught:
        if isinstance(body, CompletionBody):
            translate.completion_request(body)
        else:
            translate.embed_request(body)
    assert caught.value.status == 400 and message in caught.value.message


async def _gen(*chunks: Chunk, fail: bool = False) -> AsyncGenerator[Chunk, None]:
    for chunk in chunks:
        await asyncio.sleep(0)
        yield chunk
    if fail:
        raise ApiError(400, "boom")


def test_interleave_tags_every_chunk_with_its_choice() -> None:
    async def run() -> list[tuple[int, str]]:
        streams = [_gen(Chunk(text="a"), Chunk(text="b")), _gen(Chunk(text="c"))]
        return [(i, c.text) async for i, c in routes.interleave(streams)]

    got = asyncio.run(run())
    assert sorted(got) == [(0, "a"), (0, "b"), (1, "c")]
    assert [t for i, t in got if i == 0] == ["a", "b"]


def test_interleave_raises_the_first_error_and_closes_the_rest() -> None:
    closed: list[bool] = []

    async def endless() -> AsyncGenerator[Chunk, None]:
        try:
            while True:
                await asyncio.sleep(0)
                yield Chunk(text="x")
        finally:
            closed.append(True)

    async def run() -> None:
        async for _ in routes.interleave([endless(), _gen(Chunk(text="y"), fail=True)]):
            pass

    with pytest.raises(ApiError, match="boom"):
        asyncio.run(run())
    assert closed == [True]


def test_streamed_tool_deltas_reasoning_and_logprobs() -> None:
    stream = ChatStream(ResponseHead("c", 1, "m", logprobs=True))
    entry = TokenLogprob("{", -0.5, b"{", (TokenLogprob("{", -0.5, b"{"),))
    start = ToolCallDelta(0, "", "call_1", "get_weather")
    call = ToolCall("call_1", "get_weather", {"city": "Paris"}, 0, streamed=True)
    items = [
        (0, Chunk(thinking="hmm")),
        (0, Chunk(tool_deltas=[start, ToolCallDelta(0, "{"), ToolCallDelta(0, '"city"')])),
        (0, Chunk(tool_deltas=[ToolCallDelta(0, ': "Paris"}')], logprobs=[entry])),
        (0, Chunk(tool_calls=[call])),
        (0, _done("length")),
    ]
    frames = [f["choices"][0] for item in items for f in stream.render(item)]
    deltas = [f["delta"] for f in frames]
    assert deltas[0] == {
        "role": "assistant",
        "content": "",
        "reasoning": "hmm",
        "reasoning_content": "hmm",
    }
    assert deltas[1]["tool_calls"] == [
        {
            "index": 0,
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city"'},
        }
    ]
    assert deltas[2]["tool_calls"] == [{"index": 0, "function": {"arguments": ': "Paris"}'}}]
    assert frames[2]["logprobs"] == {
        "content": [
            {
                "token": "{",
                "logprob": -0.5,
                "bytes": [123],
                "top_logprobs": [{"token": "{", "logprob": -0.5, "bytes": [123]}],
            }
        ],
        "refusal": None,
    }
    assert deltas[3:] == [{}]  # the whole call was already streamed; then the finish
    assert frames[-1]["finish_reason"] == "length"  # the limit cut it, calls or not
