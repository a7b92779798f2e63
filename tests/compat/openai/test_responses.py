"""``/v1/responses`` with the official SDK against the real model.

The model is tiny: the tests check structure (items, ids, order, events,
token counts of identical prompts) and what constrained decoding promises,
never what the model says.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MODEL, Server

SHORT = 8


def _respond(oai: openai.OpenAI, **kwargs: Any) -> Any:
    kwargs.setdefault("max_output_tokens", SHORT)
    return oai.responses.create(model=MODEL, **kwargs)


def test_two_responses_in_a_conversation_store_four_items_in_order(oai: openai.OpenAI) -> None:
    conv = oai.conversations.create()
    first = _respond(oai, input="Name a colour.", conversation=conv.id)
    second = _respond(oai, input="Name another.", conversation={"id": conv.id})
    assert first.conversation is not None and first.conversation.id == conv.id
    items = oai.conversations.items.list(conv.id, order="asc").data
    assert [(i.type, i.role) for i in items] == [
        ("message", "user"),
        ("message", "assistant"),
        ("message", "user"),
        ("message", "assistant"),
    ]
    assert [items[1].id, items[3].id] == [first.output[0].id, second.output[0].id]
    assert items[0].content[0].text == "Name a colour."
    assert items[1].content[0].text == first.output_text
    assert second.usage is not None and first.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens, "history is in the prompt"


def test_previous_response_id_sends_the_whole_chain(oai: openai.OpenAI) -> None:
    first = _respond(oai, input="Say a number.")
    second = _respond(oai, input="And another?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    same = _respond(
        oai,
        input=[
            {"role": "user", "content": "Say a number."},
            {"role": "assistant", "content": first.output_text},
            {"role": "user", "content": "And another?"},
        ],
        store=False,
    )
    assert second.usage is not None and same.usage is not None
    assert second.usage.input_tokens == same.usage.input_tokens, "the same prompt, rebuilt"
    listed = oai.responses.input_items.list(second.id)
    assert [i.type for i in listed.data] == ["message"]


def test_stream_events_in_order_with_sequence_numbers(oai: openai.OpenAI) -> None:
    conv = oai.conversations.create()
    events = list(_respond(oai, input="Count to three.", conversation=conv.id, stream=True))
    kinds = [e.type for e in events]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:-1] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert set(kinds[4:-4]) == {"response.output_text.delta"}
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = next(e for e in events if e.type == "response.output_text.done")
    final = events[-1].response
    assert done.text == deltas == final.output_text
    assert {e.item_id for e in events if hasattr(e, "item_id")} == {final.output[0].id}
    assert events[0].response.status == "in_progress" and events[0].response.output == []
    stored = oai.responses.retrieve(final.id)
    assert stored.output_text == deltas and stored.status == final.status
    items = oai.conversations.items.list(conv.id, order="asc").data
    assert items[-1].id == final.output[0].id, "stored before response.completed was sent"


def test_store_false_and_delete(oai: openai.OpenAI) -> None:
    unstored = _respond(oai, input="hi", store=False)
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(unstored.id)
    conv = oai.conversations.create()
    in_conversation = _respond(oai, input="hi", store=False, conversation=conv.id)
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(in_conversation.id)
    items = oai.conversations.items.list(conv.id, order="asc").data
    assert [i.id for i in items][1:] == [in_conversation.output[0].id], "the turn is kept"
    stored = _respond(oai, input="hi")
    assert oai.responses.retrieve(stored.id).output_text == stored.output_text
    oai.responses.delete(stored.id)
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(stored.id)
    with pytest.raises(openai.NotFoundError):
        _respond(oai, input="hi", previous_response_id=stored.id)


def test_instructions_are_prompted_not_stored(oai: openai.OpenAI) -> None:
    conv = oai.conversations.create()
    told = _respond(oai, input="hi", instructions="Answer in French.", conversation=conv.id)
    same = _respond(
        oai,
        input=[
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "hi"},
        ],
        store=False,
    )
    assert told.instructions == "Answer in French."
    assert told.usage is not None and same.usage is not None
    assert told.usage.input_tokens == same.usage.input_tokens, "a system message first"
    roles = [i.role for i in oai.conversations.items.list(conv.id).data]
    assert sorted(roles) == ["assistant", "user"]


WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def test_forced_function_call_then_its_output(oai: openai.OpenAI) -> None:
    conv = oai.conversations.create()
    called = _respond(
        oai,
        input="What is the weather in Paris?",
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        conversation=conv.id,
        max_output_tokens=64,
    )
    calls = [o for o in called.output if o.type == "function_call"]
    assert calls and calls[0].name == "get_weather"
    assert isinstance(json.loads(calls[0].arguments)["city"], str)
    answer = _respond(
        oai,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}],
        tools=[WEATHER],
        conversation=conv.id,
    )
    assert answer.output[0].type in ("message", "function_call")
    kinds = [i.type for i in oai.conversations.items.list(conv.id, order="asc").data]
    assert kinds[:3] == ["message", "function_call", "function_call_output"]


def test_text_format_json_schema_is_constrained(oai: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
        "additionalProperties": False,
    }
    out = _respond(
        oai,
        input="Give me a number as JSON.",
        text={"format": {"type": "json_schema", "name": "num", "schema": schema}},
        max_output_tokens=48,
        store=False,
    )
    assert out.status == "completed"
    assert isinstance(json.loads(out.output_text)["n"], int)
    assert out.text is not None and out.text.format.type == "json_schema"


def test_history_that_does_not_fit_is_cut_from_the_prompt_not_the_store(
    oai: openai.OpenAI, server: Server
) -> None:
    """The shared server runs with a 2048-token context; 24 turns of ~120 tokens exceed it.
    The oldest turns are left out, the system message stays, the store keeps all."""
    system = {"role": "system", "content": "Be brief."}
    turns = [
        {"role": role, "content": f"turn {i}: " + "word " * 120}
        for i, role in enumerate(("user", "assistant") * 12)
    ]
    conv = oai.conversations.create(items=[system])
    oai.conversations.items.create(conv.id, items=turns[:12])
    oai.conversations.items.create(conv.id, items=turns[12:])
    with httpx.Client(base_url=server.url, timeout=300) as http:
        ask = {"model": MODEL, "input": "hi", "max_output_tokens": 4}
        r = http.post("/v1/responses", json={**ask, "conversation": conv.id})
        assert r.status_code == 200, r.text
        body = r.json()
        left_out = body["truncated_items"]
        assert 0 < left_out < len(turns)
        assert body["usage"]["input_tokens"] < 2048
        kept = [system, *turns[left_out:], {"role": "user", "content": "hi"}]
        same = http.post("/v1/responses", json={**ask, "input": kept, "store": False}).json()
        assert same["truncated_items"] == 0
        assert same["usage"]["input_tokens"] == body["usage"]["input_tokens"], (
            "exactly the newest turns after the system message were prompted"
        )
        assert len(oai.conversations.items.list(conv.id, limit=100).data) == 1 + 24 + 2
        strict = http.post(
            "/v1/responses", json={**ask, "conversation": conv.id, "truncation": "disabled"}
        )
    assert strict.status_code == 400, strict.text
    assert strict.json()["error"]["type"] == "invalid_request_error"
    assert len(oai.conversations.items.list(conv.id, limit=100).data) == 1 + 24 + 2, (
        "nothing stored"
    )


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (
            {"input": "x", "conversation": "conv_x", "previous_response_id": "resp_x"},
            400,
            "conversation",
        ),
        ({"input": [{"type": "computer_call"}]}, 400, "input[0].type"),
        ({"input": [{"role": "narrator", "content": "x"}]}, 400, "input[0].role"),
        ({"input": "x", "max_output_tokens": 0}, 400, "max_output_tokens"),
        ({}, 400, "input"),
        ({"input": "x", "text": {"format": {"type": "xml"}}}, 400, "text.format.type"),
        (
            {"input": "x", "text": {"format": {"type": "json_schema", "name": "a"}}},
            400,
            "text.format.schema",
        ),
        ({"input": "x", "tools": [{"type": "web_search"}]}, 400, None),
        ({"input": "x", "truncation": "sometimes"}, 400, "truncation"),
        ({"input": "x", "conversation": "conv_nope"}, 404, None),
        ({"input": "x", "previous_response_id": "resp_nope"}, 404, None),
        ({"input": "x", "model": "no-such-model"}, 404, None),
    ],
)
def test_bad_requests(server: Server, body: dict[str, Any], status: int, param: str | None) -> None:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        r = http.post("/v1/responses", json={"model": MODEL, **body})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"]
    if param is not None:
        assert error["param"] == param
