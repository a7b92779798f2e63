"""The conversation repository on a real SQLite file: order, pagination, cascade, versions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from llamaport.storage.conversations import (
    ConversationNotFound,
    ItemNotFound,
    NewItem,
    ResponseNotFound,
)
from llamaport.storage.conversations import db as conversations_db
from llamaport.storage.conversations.db import SCHEMA_VERSION
from llamaport.storage.conversations.repository import ConversationStore
from llamaport.storage.errors import StorageError
from llamaport.storage.settings import load_settings


def _message(role: str, text: str) -> NewItem:
    return NewItem(
        {"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]}
    )


@pytest.fixture
def store(tmp_path: Path) -> ConversationStore:
    return ConversationStore(tmp_path / "llamaport.db")


def test_pragmas_are_set(store: ConversationStore) -> None:
    with store.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert raw.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_items_keep_their_order_and_title_comes_from_the_first_user_text(
    store: ConversationStore,
) -> None:
    conv, first = store.create_conversation({"k": "v"}, [_message("system", "be brief")])
    assert conv.title == "" and conv.item_count == 1
    store.add_items(conv.id, [_message("user", "  hello\nthere "), _message("assistant", "hi")])
    page = store.list_items(conv.id)
    assert [i.role for i in page.items] == ["system", "user", "assistant"]
    assert page.items[0].id == first[0].id
    assert all(i.data["id"] == i.id and i.data["status"] == "completed" for i in page.items)
    again = store.get_conversation(conv.id)
    assert again.title == "hello there" and again.item_count == 3
    assert again.metadata == {"k": "v"}


def test_pagination_with_after_in_both_orders(store: ConversationStore) -> None:
    conv, _ = store.create_conversation()
    ids = [i.id for i in store.add_items(conv.id, [_message("user", str(n)) for n in range(5)])]
    first = store.list_items(conv.id, limit=2, order="asc")
    assert [i.id for i in first.items] == ids[:2] and first.has_more
    rest = store.list_items(conv.id, limit=10, order="asc", after=first.items[-1].id)
    assert [i.id for i in rest.items] == ids[2:] and not rest.has_more
    newest = store.list_items(conv.id, limit=2, order="desc")
    assert [i.id for i in newest.items] == ids[:-3:-1]
    older = store.list_items(conv.id, limit=2, order="desc", after=newest.items[-1].id)
    assert [i.id for i in older.items] == [ids[2], ids[1]] and older.has_more


def test_deleting_a_conversation_deletes_its_items(
    store: ConversationStore, tmp_path: Path
) -> None:
    conv, _ = store.create_conversation(items=[_message("user", "x")])
    other, _ = store.create_conversation(items=[_message("user", "y")])
    store.delete_conversation(conv.id)
    with pytest.raises(ConversationNotFound):
        store.get_conversation(conv.id)
    with sqlite3.connect(tmp_path / "llamaport.db") as db:
        rows = db.execute("SELECT conversation_id FROM items").fetchall()
    assert rows == [(other.id,)]


def test_unknown_ids_raise_not_found(store: ConversationStore) -> None:
    conv, _ = store.create_conversation()
    with pytest.raises(ConversationNotFound):
        store.add_items("conv_missing", [_message("user", "x")])
    with pytest.raises(ItemNotFound):
        store.get_item(conv.id, "msg_missing")
    with pytest.raises(ItemNotFound):
        store.list_items(conv.id, after="msg_missing")
    with pytest.raises(ResponseNotFound):
        store.get_response("resp_missing")
    with pytest.raises(ResponseNotFound):
        store.response_chain("resp_missing")


def test_an_item_of_another_conversation_is_not_found(store: ConversationStore) -> None:
    a, items = store.create_conversation(items=[_message("user", "x")])
    b, _ = store.create_conversation()
    with pytest.raises(ItemNotFound):
        store.delete_item(b.id, items[0].id)
    assert store.get_item(a.id, items[0].id).id == items[0].id


def test_response_chain_collects_inputs_and_outputs_in_order(store: ConversationStore) -> None:
    def body(rid: str, prev: str | None, text: str) -> dict[str, object]:
        out = {"type": "message", "role": "assistant", "content": [{"text": text}]}
        return {"id": rid, "created_at": 1, "previous_response_id": prev, "output": [out]}

    q1 = {"type": "message", "role": "user", "content": [{"text": "q1"}]}
    q2 = {"type": "message", "role": "user", "content": [{"text": "q2"}]}
    store.save_response(body("resp_1", None, "a1"), [q1])
    store.save_response(body("resp_2", "resp_1", "a2"), [q2])
    texts = [i["content"][0]["text"] for i in store.response_chain("resp_2")]
    assert texts == ["q1", "a1", "q2", "a2"]
    store.delete_response("resp_1")
    assert [i["content"][0]["text"] for i in store.response_chain("resp_2")] == ["q2", "a2"]


def test_a_response_and_its_turn_are_saved_together(store: ConversationStore) -> None:
    conv, _ = store.create_conversation()
    body = {"id": "resp_a", "created_at": 1, "conversation": {"id": "conv_gone"}, "output": []}
    with pytest.raises(ConversationNotFound):
        store.save_response(body, [], [_message("user", "x")])
    with pytest.raises(ResponseNotFound):
        store.get_response("resp_a")
    body["conversation"] = {"id": conv.id}
    store.save_response(body, [], [_message("user", "x")])
    assert store.get_response("resp_a").conversation_id == conv.id
    assert store.get_conversation(conv.id).item_count == 1


def test_reopening_keeps_everything_and_the_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "llamaport.db"
    first = ConversationStore(path)
    conv, _ = first.create_conversation(items=[_message("user", "kept")])
    first.close()
    second = ConversationStore(path)
    assert second.schema_version() == SCHEMA_VERSION
    assert second.list_items(conv.id).items[0].data["content"][0]["text"] == "kept"
    assert [c.id for c in second.list_conversations()] == [conv.id]


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "llamaport.db"
    ConversationStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO schema_version VALUES (?, 0)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StorageError, match="schema version"):
        ConversationStore(path)


def test_list_conversations_counts_items_newest_first(store: ConversationStore) -> None:
    old, _ = store.create_conversation(items=[_message("user", "a"), _message("user", "b")])
    new, _ = store.create_conversation()
    listed = store.list_conversations()
    assert {c.id: c.item_count for c in listed} == {old.id: 2, new.id: 0}


def test_a_forward_migration_runs_once_and_keeps_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "llamaport.db"
    old = ConversationStore(path)
    conv, _ = old.create_conversation(items=[_message("user", "kept")])
    old.close()
    ran: list[int] = []

    def v2(conn: Connection) -> None:
        ran.append(1)
        conn.execute(text("ALTER TABLE conversations ADD COLUMN archived INTEGER DEFAULT 0"))

    monkeypatch.setattr(conversations_db, "MIGRATIONS", [*conversations_db.MIGRATIONS, v2])
    new = ConversationStore(path)
    assert new.schema_version() == SCHEMA_VERSION + 1 and ran == [1]
    new.close()
    again = ConversationStore(path)
    assert ran == [1], "an applied step does not run again"
    assert again.list_items(conv.id).items[0].data["content"][0]["text"] == "kept"
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT archived FROM conversations").fetchall() == [(0,)]


def test_the_database_lives_in_llamaport_home(tmp_path: Path) -> None:
    settings = load_settings({"LLAMAPORT_HOME": str(tmp_path)})
    assert settings.database == tmp_path / "llamaport.db"


def test_schema_2_ties_lost_native_tool_results_to_their_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file written at schema 1 (native tool results under random call ids,
    without names) is repaired on open; outputs that had their call stay."""
    path = tmp_path / "llamaport.db"
    with monkeypatch.context() as old_code:
        old_code.setattr(conversations_db, "MIGRATIONS", conversations_db.MIGRATIONS[:1])
        old = ConversationStore(path)
        assert old.schema_version() == 1

        def call(call_id: str, name: str) -> NewItem:
            return NewItem(
                {"type": "function_call", "call_id": call_id, "name": name, "arguments": "{}"}
            )

        def output(call_id: str, text: str) -> NewItem:
            return NewItem({"type": "function_call_output", "call_id": call_id, "output": text})

        conv, _ = old.create_conversation(
            items=[
                _message("user", "weather and time?"),
                call("call_a", "weather"),
                call("call_b", "time"),
                output("call_random1", "sunny"),
                output("call_b", "noon"),
            ]
        )
        other, _ = old.create_conversation(items=[output("call_random2", "alone")])
        old.close()
    new = ConversationStore(path)
    assert new.schema_version() == SCHEMA_VERSION == 2
    outputs = [
        (i.data["call_id"], i.data.get("name"), i.data["output"])
        for i in new.list_items(conv.id).items
        if i.type == "function_call_output"
    ]
    assert outputs == [("call_a", "weather", "sunny"), ("call_b", None, "noon")]
    (alone,) = new.list_items(other.id).items
    assert (alone.data["call_id"], alone.data.get("name")) == ("call_random2", None)
