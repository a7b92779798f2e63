"""Server-side history: the conversation store off the event loop, one turn at a time.

:class:`History` lives on ``app.state`` next to the runtime service. Its
store is opened in a thread on first use, so a server that never stores a
conversation never imports SQLAlchemy (about 0.2 s of CPU and 18 MB); that
thread is the one place the server imports the store
(:mod:`llamaport.storage.conversations` itself imports no SQL). Opened at
start-up instead, that import held the GIL while the first request after the
start ran, and cost its first token 0.1-0.2 s on the 2-core machine. Every
route takes the history with :meth:`~History.ready`, which starts the open
(or waits for the one running) on the first requests and costs nothing
after. :meth:`~History.call` runs a blocking repository method
in a worker thread.
:meth:`~History.turn` runs one generation of a conversation under that
conversation's lock, so concurrent requests on one conversation run one after
another (each sees the turns before it, none is lost or interleaved), and
saves the turn exactly once:

- when the last chunk arrives, before it is passed on, so a client that saw
  a reply complete knows it is stored;
- when the stream is cut off (client gone, cancel) with what was generated,
  marked ``incomplete``; that save is shielded from the cancellation;
- never when generation failed (nothing is stored for an error).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from concurrent.futures import Future
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
from starlette.requests import Request

from llamaport.runtime.reply import GeneratedReply
from llamaport.runtime.types import Chunk
from llamaport.storage.errors import ConversationStoreUnavailable

if TYPE_CHECKING:
    from llamaport.storage.conversations.repository import ConversationStore

__all__ = ["History", "ready_history"]

T = TypeVar("T")

log = logging.getLogger("llamaport")


class History:
    """The store plus one lock per conversation id (this server process only).

    Take it with :meth:`ready` before any use (the first call opens the
    store), and end with :meth:`close`.
    """

    def __init__(self, database: Path) -> None:
        self.database = database
        self._store: Future[ConversationStore] = Future()
        # Running from here on: a waiter that is cancelled (its client gone)
        # cannot cancel the open for everyone else.
        self._store.set_running_or_notify_cancel()
        self._opening = False
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    def _start_open(self) -> None:
        """Open the store in a thread of its own, once; returns at once."""
        if not self._opening:
            self._opening = True
            threading.Thread(target=self._open, name="history-open", daemon=True).start()

    def _open(self) -> None:
        try:
            from llamaport.storage.conversations.repository import ConversationStore

            self._store.set_result(ConversationStore(self.database))
        except Exception as exc:  # handed to every caller of ready(): a 503
            failure = ConversationStoreUnavailable(self.database, exc)
            log.error("%s", failure)
            self._store.set_exception(failure)

    async def ready(self) -> History:
        """This history once its store is open (opening it on the first call);
        raises what opening raised."""
        if not self._store.done():
            self._start_open()
            await asyncio.wrap_future(self._store)
        self._store.result()
        return self

    @property
    def store(self) -> ConversationStore:
        """The open store. Only after :meth:`ready` (or in the functions given to
        :meth:`call` and :meth:`turn`, which run after it)."""
        if not self._store.done():
            raise RuntimeError("History.store before History.ready()")
        return self._store.result()

    async def close(self) -> None:
        """Close the store if it was opened (waiting for an open still running)."""
        if not self._opening:
            return
        try:
            store = await asyncio.wrap_future(self._store)
        except Exception:
            return  # it never opened: nothing to close
        await asyncio.to_thread(store.close)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking store method in a worker thread."""
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))

    async def _shielded(self, fn: Callable[..., T], *args: Any) -> T:
        with anyio.CancelScope(shield=True):
            result = await self.call(fn, *args)
        return result

    @asynccontextmanager
    async def locked(self, key: str | None) -> AsyncIterator[None]:
        """Hold ``key``'s lock (no lock for ``None``); locks are dropped when unused."""
        if key is None:
            yield
            return
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._locks[key]

    async def turn(
        self,
        key: str | None,
        start: Callable[[], Awaitable[AsyncGenerator[Chunk, None]]],
        save: Callable[[GeneratedReply], object],
    ) -> AsyncGenerator[Chunk, None]:
        """Chunks of one turn: ``start()`` (read history, begin generating) runs
        under ``key``'s lock, and ``save(reply)`` (blocking) stores the turn."""
        await self.ready()
        async with self.locked(key):
            chunks = await start()
            reply = GeneratedReply()
            saved = failed = False
            try:
                async for chunk in chunks:
                    reply.add(chunk)
                    if chunk.done:
                        saved = True
                        await self._shielded(save, reply)
                    yield chunk
            except Exception:
                failed = True
                raise
            finally:
                with anyio.CancelScope(shield=True):
                    await chunks.aclose()
                    if not saved and not failed:
                        await self.call(save, reply)


async def ready_history(request: Request) -> History:
    """The app's history once its store is open (see :meth:`History.ready`)."""
    history: History = request.app.state.history
    return await history.ready()
