"""``History``'s store is opened in a thread on first use: waiters, cancellation, close.

The server-level cases (the first requests wait for the open; a restart keeps
what they stored) are in tests/compat/openai/test_conversations.py; these
drive ``History`` alone on a real SQLite file, for orderings a server cannot
be made to show on cue.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from llamaport.compat.history import History
from llamaport.storage.conversations import NewItem
from llamaport.storage.errors import ConversationStoreUnavailable


async def test_a_cancelled_waiter_does_not_cancel_the_open(tmp_path: Path) -> None:
    history = History(tmp_path / "llamaport.db")
    waiter = asyncio.create_task(history.ready())
    await asyncio.sleep(0)  # it started the open and waits on it
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await history.ready()
    record, _ = await history.call(history.store.create_conversation, None, [NewItem({})])
    assert (await history.call(history.store.get_conversation, record.id)).id == record.id
    await history.close()


async def test_the_store_is_not_handed_out_before_it_is_open(tmp_path: Path) -> None:
    history = History(tmp_path / "llamaport.db")
    with pytest.raises(RuntimeError):
        history.store  # noqa: B018 (the property is the code under test)
    assert not (tmp_path / "llamaport.db").exists()  # nothing opens it before first use
    assert (await history.ready()).store.schema_version() > 0
    await history.close()


async def test_a_database_that_cannot_open_fails_its_requests_not_the_server(
    tmp_path: Path,
) -> None:
    (tmp_path / "llamaport.db").mkdir()  # a folder where the file should be
    history = History(tmp_path / "llamaport.db")
    for _ in range(2):  # every request gets the error, not just the first
        with pytest.raises(ConversationStoreUnavailable, match=r"llamaport\.db cannot be opened"):
            await history.ready()
    await history.close()  # nothing to close, and no error


async def test_a_history_never_used_closes_without_opening(tmp_path: Path) -> None:
    history = History(tmp_path / "llamaport.db")
    await asyncio.wait_for(history.close(), timeout=5)
    assert not (tmp_path / "llamaport.db").exists()
