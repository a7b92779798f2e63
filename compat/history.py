"""Server-side history: the conversation store off the event loop, one turn at a time.

:class:`History` lives on ``app.state`` next to the runtime service. Its
:meth:`~History.call` runs a blocking repository method in a worker thread.
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
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from llamaport.runtime.reply import GeneratedReply
from llamaport.runtime.types import Chunk
from llamaport.storage.conversations import ConversationStore

__all__ = ["History"]

T = TypeVar("T")


class History:
    """The store plus one lock per conversation id (this server process only)."""

    def __init__(self, store: ConversationStore) -> None:
        self.store = store
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

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
