"""Conversation items to and from runtime messages (pure functions, no server)."""

from __future__ import annotations

from llamaport.compat.openai.items import from_messages, output_items, to_messages
from llamaport.runtime.reply import GeneratedReply
from llamaport.runtime.types import Chunk, Message, ToolCall, link_tool_results

CALL = ToolCall("call_7", "get_weather", {"city": "Oslo"})


def test_a_native_tool_result_keeps_its_name_and_its_calls_id() -> None:
    native = [
        Message("user", "weather?"),
        Message("assistant", tool_calls=[CALL]),
        Message("tool", "sunny", tool_name="get_weather"),
    ]
    items = from_messages(link_tool_results(native))
    output = items[-1]
    assert (output["type"], output["call_id"], output["name"]) == (
        "function_call_output",
        "call_7",
        "get_weather",
    )
    replayed = to_messages(items)[-1]
    assert (replayed.tool_call_id, replayed.tool_name) == ("call_7", "get_weather")


def test_a_result_with_no_call_keeps_its_name() -> None:
    (item,) = from_messages([Message("tool", "sunny", tool_name="get_weather")])
    assert item["name"] == "get_weather" and item["call_id"].startswith("call_")
    assert to_messages([item])[0].tool_name == "get_weather"


def test_calls_round_trip_with_their_arguments() -> None:
    items = from_messages([Message("assistant", tool_calls=[CALL])])
    assert items == [
        {
            "type": "function_call",
            "call_id": "call_7",
            "name": "get_weather",
            "arguments": '{"city": "Oslo"}',
        }
    ]
    (message,) = to_messages(items)
    assert message.tool_calls == [CALL]


def test_output_items_of_a_reply() -> None:
    reply = GeneratedReply.of([Chunk(text="hi", tool_calls=[CALL]), Chunk(done=True)])
    message, call = output_items(reply, "msg_1")
    assert message["content"][0]["text"] == "hi" and message["status"] == "completed"
    assert (call["call_id"], call["name"], call["arguments"]) == (
        "call_7",
        "get_weather",
        '{"city": "Oslo"}',
    )
