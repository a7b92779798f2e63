"""Tool calling on ``/v1``: ``tool_choice`` as OpenAI documents it.

The face only maps the fields; forcing a call (``required`` or a named
function) is the runtime's grammar, and parsing calls out of the text is the
runtime's parser. These tests check what the SDK must see: ``arguments`` as
a JSON string that validates against the tool's parameters, ``finish_reason:
tool_calls``, and an ``index`` on every streamed tool-call delta.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionMessageFunctionToolCall

from tests.conftest import MODEL

PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 24}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": PARAMETERS,
        "strict": True,
    },
}
ASK: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
NAMED: Any = {"type": "function", "function": {"name": "get_weather"}}


def _create(oai: openai.OpenAI, tool_choice: Any) -> ChatCompletion:
    return oai.chat.completions.create(
        model=MODEL,
        messages=ASK,
        tools=[WEATHER],
        tool_choice=tool_choice,
        max_tokens=48,
        temperature=0,
    )


def _check_calls(calls: list[Any]) -> None:
    assert calls
    for call in calls:
        assert isinstance(call, ChatCompletionMessageFunctionToolCall)
        assert call.type == "function"
        assert call.id
        assert call.function.name == "get_weather"
        assert isinstance(call.function.arguments, str)
        jsonschema.validate(json.loads(call.function.arguments), PARAMETERS)


@pytest.mark.parametrize("tool_choice", ["required", NAMED], ids=["required", "named"])
def test_forced_tool_choice_calls_the_tool(oai: openai.OpenAI, tool_choice: Any) -> None:
    choice = _create(oai, tool_choice).choices[0]
    assert choice.finish_reason == "tool_calls"
    _check_calls(choice.message.tool_calls or [])


def test_tool_choice_none_never_calls(oai: openai.OpenAI) -> None:
    choice = _create(oai, "none").choices[0]
    assert not choice.message.tool_calls
    assert choice.finish_reason in ("stop", "length")


def test_tool_choice_auto_is_consistent(oai: openai.OpenAI) -> None:
    choice = _create(oai, "auto").choices[0]
    if choice.message.tool_calls:
        assert choice.finish_reason == "tool_calls"
        _check_calls(choice.message.tool_calls)
    else:
        assert choice.finish_reason in ("stop", "length")


FORCED: Any = {
    "model": MODEL,
    "messages": ASK,
    "tools": [WEATHER],
    "tool_choice": "required",
    "max_tokens": 48,
    "temperature": 0,
}


def test_streamed_forced_call_has_indices_and_whole_arguments(oai: openai.OpenAI) -> None:
    with oai.chat.completions.stream(**FORCED) as stream:
        for event in stream:
            if event.type == "chunk":
                for streamed in event.chunk.choices:
                    for delta in streamed.delta.tool_calls or []:
                        assert isinstance(delta.index, int)
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"
    _check_calls(final.choices[0].message.tool_calls or [])


def test_streamed_call_arrives_in_argument_fragments(oai: openai.OpenAI) -> None:
    """OpenAI's delta form: id, type and name first, then argument pieces that join
    to the same call the non-streamed request gets under greedy decoding."""
    whole = _create(oai, "required").choices[0].message.tool_calls or []
    deltas: list[Any] = []
    for chunk in oai.chat.completions.create(**FORCED, stream=True):
        for choice in chunk.choices:
            deltas.extend(choice.delta.tool_calls or [])
    assert deltas and all(isinstance(d.index, int) for d in deltas)
    first = deltas[0]
    assert first.id and first.type == "function" and first.function.name == "get_weather"
    assert all(d.id is None and d.function.name is None for d in deltas[1:])
    fragments = [d.function.arguments for d in deltas if d.function.arguments]
    assert len(fragments) > 1, "arguments should stream in pieces, not whole"
    assert json.loads("".join(fragments)) == json.loads(whole[0].function.arguments)
