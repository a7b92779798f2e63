"""What server-side history promises under restarts, concurrency, crashes and cut-off streams.

Each test starts its own server (``start_server``) so it can restart or
kill it; every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest

from tests.compat.openai.conftest import sdk
from tests.conftest import MODEL, Server

WRITERS = 8
WAIT = 120.0


def _turn(client: openai.OpenAI, conversation: str, text: str) -> Any:
    return client.responses.create(
        model=MODEL, input=text, conversation=conversation, max_output_tokens=6
    )


def _long_stream(client: openai.OpenAI, conversation: str) -> Any:
    return client.responses.create(
        model=MODEL,
        input="Write a long story about a dragon.",
        conversation=conversation,
        max_output_tokens=1000,
        stream=True,
    )


def test_everything_is_still_there_after_a_restart(start_server: Callable[..., Server]) -> None:
    first = start_server()
    with sdk(first) as client:
        conv = client.conversations.create(metadata={"k": "v"})
        reply = _turn(client, conv.id, "Remember me.")
        chained = client.responses.create(
            model=MODEL, input="again", previous_response_id=reply.id, max_output_tokens=4
        )
    first.stop()
    second = start_server(home=first.home)
    with sdk(second) as client:
        assert client.conversations.retrieve(conv.id).metadata == {"k": "v"}
        items = client.conversations.items.list(conv.id, order="asc").data
        assert [i.role for i in items] == ["user", "assistant"]
        assert items[1].id == reply.output[0].id
        assert client.responses.retrieve(reply.id).output_text == reply.output_text
        assert client.responses.retrieve(chained.id).previous_response_id == reply.id
        again = client.responses.create(
            model=MODEL, input="more", previous_response_id=chained.id, max_output_tokens=4
        )
        assert again.previous_response_id == chained.id


def test_concurrent_writers_on_one_conversation_lose_and_interleave_nothing(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()
    with sdk(server) as client:
        conv = client.conversations.create()
        with ThreadPoolExecutor(WRITERS) as pool:
            replies = list(
                pool.map(lambda i: _turn(client, conv.id, f"writer {i}"), range(WRITERS))
            )
        items = client.conversations.items.list(conv.id, order="asc", limit=100).data
    assert len(items) == 2 * WRITERS
    by_output = {r.output[0].id: r for r in replies}
    seen = set()
    for user, assistant in zip(items[::2], items[1::2], strict=True):
        assert (user.role, assistant.role) == ("user", "assistant"), "turns do not interleave"
        reply = by_output[assistant.id]
        writer = user.content[0].text
        assert writer.startswith("writer ")
        seen.add(writer)
        assert assistant.content[0].text == reply.output_text
    assert seen == {f"writer {i}" for i in range(WRITERS)}
    prompts = [by_output[a.id].usage.input_tokens for a in items[1::2]]
    assert prompts == sorted(prompts) and len(set(prompts)) == WRITERS, (
        "each turn saw every turn before it"
    )


def test_kill_9_during_writes_leaves_a_sound_database(start_server: Callable[..., Server]) -> None:
    server = start_server()
    committed: list[str] = []
    stop = threading.Event()
    with sdk(server) as client:
        convs = [client.conversations.create().id for _ in range(3)]

        def write(conv: str) -> None:
            n = 0
            while not stop.is_set():
                try:
                    reply = _turn(client, conv, f"turn {n}")
                except (openai.APIConnectionError, openai.APIStatusError):
                    return
                committed.append(reply.id)
                n += 1

        threads = [threading.Thread(target=write, args=(c,)) for c in convs]
        for t in threads:
            t.start()
        deadline = time.monotonic() + WAIT
        while len(committed) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.proc.kill()
        server.proc.wait(timeout=15)
        stop.set()
        for t in threads:
            t.join(timeout=WAIT)
    assert len(committed) >= 6
    with sqlite3.connect(server.home / "llamaport.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        responses = dict(db.execute("SELECT id, conversation_id FROM responses").fetchall())
        roles = db.execute("SELECT conversation_id, role FROM items ORDER BY seq").fetchall()
    assert set(committed) <= set(responses), "every acknowledged turn is stored"
    for conv in convs:
        mine = [role for c, role in roles if c == conv]
        assert mine == ["user", "assistant"] * (len(mine) // 2), "no half-stored turn"
        assert len(mine) // 2 == sum(1 for c in responses.values() if c == conv)


def test_a_stream_cut_off_by_the_client_is_stored_incomplete(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()
    with sdk(server) as client:
        conv = client.conversations.create()
        received = ""
        with _long_stream(client, conv.id) as stream:
            for event in stream:
                if event.type == "response.output_text.delta":
                    received += event.delta
                    if len(received) > 20:
                        break
        deadline = time.monotonic() + WAIT
        items: list[Any] = []
        while len(items) < 2 and time.monotonic() < deadline:
            items = client.conversations.items.list(conv.id, order="asc").data
            time.sleep(0.1)
    assert [i.role for i in items] == ["user", "assistant"]
    assert items[1].status == "incomplete"
    assert items[1].content[0].text.startswith(received)


def test_an_engine_crash_mid_stream_is_response_failed_and_stores_nothing(
    start_server: Callable[..., Server],
) -> None:
    """The engine is killed on purpose: the one real way to fail after the stream began."""
    server = start_server()
    with sdk(server) as client:
        conv = client.conversations.create()
        events = []
        with _long_stream(client, conv.id) as stream:
            for event in stream:
                events.append(event)
                if event.type == "response.output_text.delta" and len(events) == 6:
                    for pid in server.engine_pids():
                        os.kill(pid, signal.SIGKILL)
        assert events[-1].type == "response.failed"
        failed = events[-1].response
        assert failed.status == "failed" and failed.error is not None
        assert "terminated" in failed.error.message
        assert [e.sequence_number for e in events] == list(range(len(events)))
        assert client.conversations.items.list(conv.id).data == []
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(failed.id)
