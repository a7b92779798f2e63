"""Tools in the prompt, and the schema that forces a call."""

from __future__ import annotations

import json

import jsonschema
import pytest

from llamaport.runtime.errors import BadRequest
from llamaport.runtime.prompt.tools import plan_tools
from llamaport.runtime.types import Message, ToolCall

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ADD = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}
ASK = [Message("user", "Weather in Paris?")]


def test_templates_with_tools_get_them_natively() -> None:
    plan = plan_tools(ASK, [WEATHER], None, native=True)
    assert plan.messages == ASK
    assert plan.template_tools == [WEATHER]
    assert plan.names == {"get_weather"} and plan.forced is None


def test_templates_without_tools_get_a_preamble_in_the_system_message() -> None:
    plan = plan_tools([Message("system", "Be brief."), *ASK], [WEATHER], "auto", native=False)
    system = plan.messages[0]
    assert system.role == "system" and system.content.startswith("Be brief.\n\n")
    assert '"name": "get_weather"' in system.content
    assert plan.template_tools is None
    assert plan_tools(ASK, [WEATHER], None, native=False).messages[0].role == "system"


def test_tool_choice_none_offers_nothing() -> None:
    plan = plan_tools(ASK, [WEATHER], "none", native=False)
    assert plan.messages == ASK and plan.names == set() and plan.forced is None


def test_required_forces_a_call_to_any_tool() -> None:
    schema = plan_tools(ASK, [WEATHER, ADD], "required", native=False).forced
    assert schema is not None
    jsonschema.validate({"name": "add", "arguments": {}}, schema)
    jsonschema.validate({"name": "get_weather", "arguments": {"city": "Paris"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "get_weather", "arguments": {}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "other", "arguments": {}}, schema)


def test_a_named_function_forces_that_one() -> None:
    choice = {"type": "function", "function": {"name": "add"}}
    schema = plan_tools(ASK, [WEATHER, ADD], choice, native=True).forced
    assert schema is not None and schema["properties"]["name"] == {"const": "add"}
    with pytest.raises(BadRequest, match="not in tools"):
        plan_tools(ASK, [WEATHER], {"type": "function", "function": {"name": "nope"}}, True)
    with pytest.raises(BadRequest, match="tool_choice must be"):
        plan_tools(ASK, [WEATHER], "sometimes", native=True)


def test_history_calls_and_results_become_text_without_native_tools() -> None:
    call = ToolCall("", "get_weather", {"city": "Paris"})
    history = [
        *ASK,
        Message("assistant", "", tool_calls=[call]),
        Message("tool", "18C", tool_name="get_weather"),
    ]
    plan = plan_tools(history, [WEATHER], "auto", native=False)
    assistant, result = plan.messages[-2:]
    assert json.loads(assistant.content) == {"name": "get_weather", "arguments": {"city": "Paris"}}
    assert (result.role, result.content) == ("user", "Result from get_weather: 18C")


def test_a_tool_without_a_name_is_refused() -> None:
    with pytest.raises(BadRequest, match="needs a function with a name"):
        plan_tools(ASK, [{"type": "function", "function": {}}], None, native=True)
