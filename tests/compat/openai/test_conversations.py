"""``/v1/conversations`` with the official SDK: create, items, pagination, errors."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import MODEL, Server


def test_create_retrieve_update_delete(oai: openai.OpenAI) -> None:
    conv = oai.conversations.create(
        metadata={"topic": "demo"},
        items=[{"type": "message", "role": "user", "content": "hello"}],
    )
    assert conv.id.startswith("conv_") and conv.object == "conversation"
    assert conv.metadata == {"topic": "demo"}
    assert oai.conversations.retrieve(conv.id).id == conv.id
    updated = oai.conversations.update(conv.id, metadata={"topic": "other"})
    assert updated.metadata == {"topic": "other"}
    deleted = oai.conversations.delete(conv.id)
    assert deleted.deleted and deleted.id == conv.id
    with pytest.raises(openai.NotFoundError):
        oai.conversations.retrieve(conv.id)


def test_items_create_list_retrieve_delete(oai: openai.OpenAI) -> None:
    conv = oai.conversations.create()
    created = oai.conversations.items.create(
        conv.id,
        items=[
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}]},
            {"role": "assistant", "content": "b"},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "42"},
        ],
    )
    assert [i.type for i in created.data] == [
        "message",
        "message",
        "function_call",
        "function_call_output",
    ]
    assert created.first_id == created.data[0].id and created.last_id == created.data[-1].id
    ids = [i.id for i in created.data]
    assert len(set(ids)) == 4
    newest = oai.conversations.items.list(conv.id)
    assert [i.id for i in newest.data] == ids[::-1], "newest first by default, as OpenAI"
    first = oai.conversations.items.list(conv.id, order="asc", limit=3)
    assert [i.id for i in first.data] == ids[:3] and first.has_more
    rest = oai.conversations.items.list(conv.id, order="asc", after=first.last_id)
    assert [i.id for i in rest.data] == ids[3:] and not rest.has_more
    assert [i.id for i in oai.conversations.items.list(conv.id, order="asc")] == ids, (
        "the SDK's auto-pagination walks every page"
    )
    item = oai.conversations.items.retrieve(ids[1], conversation_id=conv.id)
    assert item.type == "message" and item.role == "assistant"
    assert item.content[0].type == "output_text" and item.content[0].text == "b"
    after_delete = oai.conversations.items.delete(ids[0], conversation_id=conv.id)
    assert after_delete.id == conv.id
    remaining = oai.conversations.items.list(conv.id, order="asc")
    assert [i.id for i in remaining.data] == ids[1:]
    with pytest.raises(openai.NotFoundError):
        oai.conversations.items.retrieve(ids[0], conversation_id=conv.id)


def test_deleting_a_conversation_deletes_its_items(oai: openai.OpenAI) -> None:
    conv = oai.conversations.create(items=[{"role": "user", "content": "x"}])
    item = oai.conversations.items.list(conv.id).data[0]
    oai.conversations.delete(conv.id)
    with pytest.raises(openai.NotFoundError):
        oai.conversations.items.retrieve(item.id, conversation_id=conv.id)
    with pytest.raises(openai.NotFoundError):
        oai.conversations.items.list(conv.id)


@pytest.mark.parametrize(
    ("items", "param"),
    [
        ([{"type": "web_search_call", "id": "ws_1"}], "items[0].type"),
        ([{"type": "message", "role": "robot", "content": "x"}], "items[0].role"),
        (
            [{"type": "message", "role": "user", "content": [{"type": "audio"}]}],
            "items[0].content[0].type",
        ),
        ([{"type": "function_call", "name": "f", "arguments": "{}"}], "items[0].call_id"),
        (
            [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "[1"}],
            "items[0].arguments",
        ),
        ([{"role": "user", "content": "x"}] * 21, "items"),
        ("not a list", "items"),
    ],
)
def test_bad_items_are_400_naming_the_field(oai: openai.OpenAI, items: object, param: str) -> None:
    conv = oai.conversations.create()
    with pytest.raises(openai.BadRequestError) as err:
        oai.conversations.items.create(conv.id, items=items)  # type: ignore[arg-type]
    assert err.value.param == param
    assert oai.conversations.items.list(conv.id).data == [], "nothing stored from a bad call"


def test_unknown_ids_are_404_in_openai_envelope(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for method, path in [
            ("GET", "/v1/conversations/conv_nope"),
            ("POST", "/v1/conversations/conv_nope/items"),
            ("GET", "/v1/conversations/conv_nope/items"),
            ("DELETE", "/v1/conversations/conv_nope"),
            ("GET", "/v1/responses/resp_nope"),
            ("DELETE", "/v1/responses/resp_nope"),
        ]:
            body = {"items": []} if method == "POST" else None
            r = http.request(method, path, json=body)
            assert r.status_code == 404, (method, path, r.text)
            assert r.json()["error"]["type"] == "not_found_error"


def test_bad_metadata_limit_and_order(oai: openai.OpenAI, server: Server) -> None:
    with pytest.raises(openai.BadRequestError):
        oai.conversations.create(metadata={f"k{i}": "v" for i in range(17)})
    with pytest.raises(openai.BadRequestError):
        oai.conversations.create(metadata={"k": "v" * 513})
    conv = oai.conversations.create()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for query in ("limit=0", "limit=101", "limit=x", "order=up"):
            r = http.get(f"/v1/conversations/{conv.id}/items?{query}")
            assert r.status_code == 400, query
        r = http.post(f"/v1/conversations/{conv.id}", json={})
        assert r.status_code == 400 and r.json()["error"]["param"] == "metadata"


def test_list_conversations_extension(oai: openai.OpenAI, server: Server) -> None:
    conv = oai.conversations.create(items=[{"role": "user", "content": "Plan a trip to Lisbon"}])
    with httpx.Client(base_url=server.url, timeout=30) as http:
        listed = http.get("/v1/conversations").json()
    mine = next(c for c in listed["data"] if c["id"] == conv.id)
    assert mine["title"] == "Plan a trip to Lisbon" and mine["item_count"] == 1


def test_the_first_requests_find_the_store_and_a_restart_keeps_them(
    start_server: Callable[..., Server],
) -> None:
    """The store opens in a thread once the server listens (compat/history.py): the
    first requests, sent together the moment it answers, wait for it instead of
    failing, and what they stored is in the file after a restart."""
    srv = start_server()
    message = {"type": "message", "role": "user", "content": "hello"}
    with srv.client() as client, ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(
                lambda _: client.post("/v1/conversations", json={"items": [message]}), range(4)
            )
        )
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    ids = [a.json()["id"] for a in answers]
    srv.stop()
    assert srv.proc.returncode == 0
    again = start_server(home=srv.home)
    with again.client() as client:
        for conv in ids:
            items = client.get(f"/v1/conversations/{conv}/items")
            assert items.status_code == 200
            assert [i["content"][0]["text"] for i in items.json()["data"]] == ["hello"]


def test_a_database_that_cannot_open_is_a_503_and_the_server_serves_on(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    """The store opens on first use, so a database that cannot open does not stop
    ``serve``: the conversation routes answer 503 in their protocol's
    shape, naming the file, and generation goes on."""
    home = tmp_path / "home"
    (home / "llamaport.db").mkdir(parents=True)  # a folder where the file should be
    srv = start_server(home=home)
    message = {"type": "message", "role": "user", "content": "hello"}
    with srv.client() as client:
        v1 = client.post("/v1/conversations", json={"items": [message]})
        assert v1.status_code == 503, v1.text
        assert "llamaport.db cannot be opened" in v1.json()["error"]["message"]
        chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": False}
        native = client.post("/api/chat", json={**chat, "conversation": "new"})
        assert native.status_code == 503, native.text
        assert "llamaport.db cannot be opened" in native.json()["error"]
        options = {"num_predict": 2, "temperature": 0}
        plain = client.post("/api/chat", json={**chat, "options": options})
        assert plain.status_code == 200 and plain.json()["done"] is True, plain.text
