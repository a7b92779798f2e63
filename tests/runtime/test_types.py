"""The runtime's message helpers: tool arguments, data-URI images, results tied to calls."""

from __future__ import annotations

from typing import Any

import pytest

from llamaport.runtime.types import (
    Message,
    ToolCall,
    image_payload,
    link_tool_results,
    parse_arguments,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"x": 1}, {"x": 1}),
        ('{"x": 1}', {"x": 1}),
        ("  ", {}),
        ("", {}),
        ("[1]", None),
        ("{not json", None),
        (3, None),
        (None, None),
    ],
    ids=["object", "json-text", "blank", "empty", "array-text", "bad-json", "number", "none"],
)
def test_parse_arguments(value: Any, expected: dict[str, Any] | None) -> None:
    assert parse_arguments(value) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("data:image/png;base64,QUJD", "QUJD"),
        ("data:image/*;base64,", ""),
        ("https://example.com/x.png", None),
        ("data:text/plain,hi", None),
    ],
    ids=["data-uri", "empty-payload", "url", "not-base64"],
)
def test_image_payload(url: str, expected: str | None) -> None:
    assert image_payload(url) == expected


def _calls(*calls: tuple[str, str]) -> Message:
    return Message("assistant", tool_calls=[ToolCall(i, n, {}) for i, n in calls])


def test_a_result_with_a_call_id_gets_the_calls_name() -> None:
    history = [_calls(("c1", "weather")), Message("tool", "cold", tool_call_id="c1")]
    assert link_tool_results(history)[1].tool_name == "weather"
    assert history[1].tool_name is None, "the input is not changed"


def test_a_result_with_only_a_name_answers_the_earliest_open_call_of_that_tool() -> None:
    history = [
        _calls(("c1", "weather"), ("c2", "time"), ("c3", "weather")),
        Message("tool", "cold", tool_name="weather"),
        Message("tool", "noon", tool_name="time"),
        Message("tool", "warm", tool_name="weather"),
    ]
    linked = link_tool_results(history)[1:]
    assert [(m.tool_call_id, m.tool_name) for m in linked] == [
        ("c1", "weather"),
        ("c2", "time"),
        ("c3", "weather"),
    ]


def test_a_bare_result_answers_the_earliest_open_call() -> None:
    history = [_calls(("c1", "a"), ("c2", "b")), Message("tool", "x"), Message("tool", "y")]
    linked = link_tool_results(history)[1:]
    assert [(m.tool_call_id, m.tool_name) for m in linked] == [("c1", "a"), ("c2", "b")]


def test_a_result_without_a_call_stays_as_it_is() -> None:
    lone = Message("tool", "x", tool_name="weather")
    assert link_tool_results([lone]) == [lone]


def test_template_view_of_a_call_without_an_id() -> None:
    view = Message("assistant", tool_calls=[ToolCall("", "f", {"x": 1})]).template_view()
    assert view["tool_calls"] == [
        {"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}
    ]
