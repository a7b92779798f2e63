"""The native ``conversation`` extension on ``/api/chat``: history in, turn stored, id echoed."""

from __future__ import annotations

import httpx

from tests.compat._native import chat, check_stream, ndjson, single_json, text_of
from tests.conftest import MODEL

Json = dict[str, object]
SHORT = {"num_predict": 6, "temperature": 0}


def _conversation(client: httpx.Client) -> str:
    r = client.post("/v1/conversations", json={})
    assert r.status_code == 200, r.text
    conv: str = r.json()["id"]
    return conv


def _items(client: httpx.Client, conv: str) -> list[Json]:
    r = client.get(f"/v1/conversations/{conv}/items", params={"order": "asc", "limit": 100})
    assert r.status_code == 200, r.text
    items: list[Json] = r.json()["data"]
    return items


def _text(item: Json) -> str:
    content = item["content"]
    assert isinstance(content, list)
    return str(content[0]["text"])


def test_chat_with_a_conversation_stores_and_uses_history(client: httpx.Client) -> None:
    conv = _conversation(client)
    first = ndjson(
        chat(client, [{"role": "user", "content": "hello"}], conversation=conv, options=SHORT)
    )
    final = check_stream(first, MODEL)
    assert final["conversation"] == conv, "the final chunk echoes the id"
    assert all("conversation" not in c for c in first[:-1])
    second = single_json(
        chat(
            client,
            [{"role": "user", "content": "again"}],
            conversation=conv,
            options=SHORT,
            stream=False,
        )
    )
    assert second["conversation"] == conv
    items = _items(client, conv)
    assert [(i["role"], _text(i)) for i in items] == [
        ("user", "hello"),
        ("assistant", text_of(first)),
        ("user", "again"),
        ("assistant", second["message"]["content"]),
    ]
    alone = single_json(
        chat(client, [{"role": "user", "content": "again"}], options=SHORT, stream=False)
    )
    assert second["prompt_eval_count"] > alone["prompt_eval_count"], "history was prompted"


def test_tool_calls_and_results_are_stored_as_items(client: httpx.Client) -> None:
    conv = _conversation(client)
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "call_1", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
            ],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
    ]
    r = chat(client, messages, conversation=conv, options=SHORT, stream=False)
    single_json(r)
    kinds = [(i["type"], i.get("call_id")) for i in _items(client, conv)]
    assert kinds == [
        ("message", None),
        ("function_call", "call_1"),
        ("function_call_output", "call_1"),
        ("message", None),
    ]


def test_a_native_tool_result_keeps_its_name_and_call_id(client: httpx.Client) -> None:
    """Ollama's clients answer a call with ``tool_name`` only; the stored output
    takes the id of the call it answers and keeps the name, and both come back
    on the next turn of the conversation."""
    conv = _conversation(client)
    call = {"id": "call_7", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
    ]
    single_json(chat(client, messages, conversation=conv, options=SHORT, stream=False))
    again = [{"role": "user", "content": "and?"}]
    single_json(chat(client, again, conversation=conv, options=SHORT, stream=False))
    outputs = [i for i in _items(client, conv) if i["type"] == "function_call_output"]
    assert [(o["call_id"], o["name"], o["output"]) for o in outputs] == [
        ("call_7", "get_weather", "sunny")
    ]


def test_unknown_conversation_is_404_and_empty_messages_400(client: httpx.Client) -> None:
    r = chat(client, [{"role": "user", "content": "x"}], conversation="conv_nope")
    assert r.status_code == 404
    assert r.json() == {"error": "Conversation with id 'conv_nope' not found."}
    conv = _conversation(client)
    r = chat(client, [], conversation=conv)
    assert r.status_code == 400 and "messages" in r.json()["error"]
    r = chat(client, [{"role": "user", "content": "x"}], conversation=7)
    assert r.status_code == 400
    assert _items(client, conv) == []


def test_a_long_history_is_cut_from_the_prompt_and_reported(client: httpx.Client) -> None:
    """24 stored turns of ~120 tokens exceed the shared server's 2048-token context."""
    conv = _conversation(client)
    for _ in range(2):
        items = [{"role": r, "content": "word " * 120} for r in ("user", "assistant") * 6]
        assert client.post(f"/v1/conversations/{conv}/items", json={"items": items}).is_success
    final = single_json(
        chat(
            client,
            [{"role": "user", "content": "hi"}],
            conversation=conv,
            options=SHORT,
            stream=False,
        )
    )
    assert 0 < final["truncated_messages"] < 24
    assert final["prompt_eval_count"] < 2048
    assert len(_items(client, conv)) == 24 + 2, "the store keeps every turn"
