"""Tool calls parsed out of streamed model output."""

from __future__ import annotations

import json
import re

import pytest

from llamaport.runtime.output.toolcalls import ToolCallParser, new_call_id, parse_calls

NAMES = {"get_weather", "add"}


def _run(
    pieces: list[str], forced: bool = False
) -> tuple[str, list[tuple[str, dict[str, object]]]]:
    parser = ToolCallParser(NAMES, forced)
    shown = "".join(parser.feed(p) for p in pieces)
    tail, calls = parser.finish()
    assert [c.index for c in calls] == list(range(len(calls)))
    return shown + tail, [(c.name, c.arguments) for c in calls]


WEATHER = ("get_weather", {"city": "Paris"})


@pytest.mark.parametrize(
    ("pieces", "content", "calls"),
    [
        (
            [
                '<tool_call>\n{"name": "get_weather", ',
                '"arguments": {"city": "Paris"}}\n</tool_call>',
            ],
            "",
            [WEATHER],
        ),
        (['[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}}]'], "", [WEATHER]),
        (['<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}'], "", [WEATHER]),
        (['  {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}'], "", [WEATHER]),
        (
            [
                '[{"name": "get_weather", "arguments": {"city": "Paris"}},',
                ' {"name": "add", "arguments": {"a": 1}}]',
            ],
            "",
            [WEATHER, ("add", {"a": 1})],
        ),
        (['{"function": {"name": "add", "arguments": {}}}'], "", [("add", {})]),
        (
            ["Let me check. ", "<tool_", 'call>{"name": "add", "arguments": {"a": 2}}</tool_call>'],
            "Let me check. ",
            [("add", {"a": 2})],
        ),
    ],
    ids=[
        "hermes",
        "mistral",
        "llama3-python-tag",
        "generic-string-args",
        "array",
        "openai-shape",
        "after-text",
    ],
)
def test_calls_in_each_format(
    pieces: list[str], content: str, calls: list[tuple[str, dict[str, object]]]
) -> None:
    assert _run(pieces) == (content, calls)


@pytest.mark.parametrize(
    "pieces",
    [
        ["The weather is ", "nice."],
        ['{"name": "unknown_tool", "arguments": {}}'],
        ['{"answer": 42}'],
        ["[1, 2, 3]"],
        ['<tool_call>{"name": "add", "arguments": {'],
        ["I use <tool", "s> often"],
    ],
    ids=["plain", "unknown-tool", "other-json", "json-array", "truncated-call", "tag-like-text"],
)
def test_text_that_is_not_a_call_is_kept_whole(pieces: list[str]) -> None:
    assert _run(pieces) == ("".join(pieces), [])


def test_plain_text_streams_immediately() -> None:
    parser = ToolCallParser(NAMES)
    assert parser.feed("Hello") == "Hello"
    assert parser.feed(" world <tool") == " world "
    assert parser.feed("box>") == "<toolbox>"


def test_a_forced_call_is_held_from_the_first_token() -> None:
    parser = ToolCallParser(NAMES, forced=True)
    assert parser.feed('{"name": "add", ') == ""
    assert parser.feed('"arguments": {"a": 1}}') == ""
    tail, calls = parser.finish()
    assert tail == "" and [(c.name, c.arguments) for c in calls] == [("add", {"a": 1})]


def test_call_ids_look_like_ollamas() -> None:
    assert re.fullmatch(r"call_[a-z0-9]{8}", new_call_id())
    assert parse_calls("", NAMES) is None


def _stream(
    text: str, step: int, forced: bool = False
) -> tuple[dict[int, str], list[str], list[object]]:
    parser = ToolCallParser(NAMES, forced)
    deltas = []
    for i in range(0, len(text), step):
        parser.feed(text[i : i + step])
        deltas.extend(parser.deltas)
        parser.deltas.clear()
    _, calls = parser.finish()
    deltas.extend(parser.deltas)
    arguments: dict[int, str] = {}
    for d in deltas:
        arguments[d.index] = arguments.get(d.index, "") + d.arguments
    heads = [f"{d.index}:{d.name}:{d.id}" for d in deltas if d.id is not None]
    return arguments, heads, calls


TWO_CALLS = (
    'Sure.<tool_call>\n{"name": "get_weather", '
    '"arguments": {"city": "Pa\\"ris", "days": [1, {"a": 2}]}}'
    '\n</tool_call>\n<tool_call>{"name": "add", "arguments": {}}</tool_call>'
)


@pytest.mark.parametrize("step", [1, 3, 11, 1000])
def test_tagged_calls_stream_as_deltas_that_join_to_the_calls(step: int) -> None:
    arguments, heads, calls = _stream(TWO_CALLS, step)
    assert [json.loads(arguments[i]) for i in sorted(arguments)] == [c.arguments for c in calls]
    assert heads == [f"{c.index}:{c.name}:{c.id}" for c in calls]
    assert all(c.streamed for c in calls)


def test_a_forced_call_streams_from_the_first_brace() -> None:
    arguments, heads, calls = _stream('{"name": "add", "arguments": {"a": 1, "b": 2}}', 2, True)
    assert json.loads(arguments[0]) == {"a": 1, "b": 2} == calls[0].arguments
    assert len(heads) == 1


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "get_weather", "arguments": {"city": "Paris"}}',
        '<tool_call>{"arguments": {"city": "Paris"}, "name": "get_weather"}</tool_call>',
        '<tool_call>{"name": "unknown", "arguments": {}}</tool_call>',
    ],
    ids=["untagged-guess", "arguments-first", "unknown-tool"],
)
def test_calls_that_cannot_be_followed_come_whole(text: str) -> None:
    arguments, heads, calls = _stream(text, 1)
    assert not heads and not arguments
    assert all(not c.streamed for c in calls)
