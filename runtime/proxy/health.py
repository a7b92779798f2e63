"""Per-upstream health: the circuit breaker, outstanding requests, the concurrency gate.

The breaker follows LiteLLM's cooldown rule: an upstream opens (cools down)
when more than half of its requests in the current minute failed, but never
on a single request alone, or at once on an error that retrying cannot fix
(a refused key). An open breaker lets nothing through; after its cool-down a
health probe (the router's prober) closes it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

from llamaport.runtime.errors import ServerBusy

__all__ = ["COOLDOWN_S", "Breaker", "Outcome", "UpstreamState"]

COOLDOWN_S = 5.0
"""How long an opened breaker waits before its first probe (LiteLLM's default)."""
_WINDOW_S = 60.0
_FAILURE_SHARE = 0.5

Outcome = Literal[
    "ok", "full", "unavailable", "missing", "rejected", "timeout", "bad_reply", "broken", "canceled"
]
"""How a request sent to an upstream ended: served; refused for want of a
``max_concurrency`` slot with the queue full; unreachable, 429 or 5xx after
its retries (the next link is tried); no such model there (404, the next link
is tried); the request itself refused (another 4xx); no reply within
``timeout_s``; a reply of the wrong shape; the stream broken after its first
token; the caller gone before the end."""


@dataclass
class Breaker:
    cooldown_s: float = COOLDOWN_S
    clock: Callable[[], float] = time.monotonic
    state: Literal["closed", "open"] = "closed"
    opened_at: float = 0.0
    requests: int = 0
    failures: int = 0
    window_start: float = field(default=0.0)

    def _window(self) -> None:
        now = self.clock()
        if now - self.window_start >= _WINDOW_S:
            self.window_start, self.requests, self.failures = now, 0, 0

    @property
    def closed(self) -> bool:
        return self.state == "closed"

    @property
    def probe_due(self) -> bool:
        return self.state == "open" and self.clock() - self.opened_at >= self.cooldown_s

    def success(self) -> None:
        self._window()
        self.requests += 1

    def failure(self, fatal: bool = False) -> None:
        self._window()
        self.requests += 1
        self.failures += 1
        share = self.failures / self.requests
        if fatal or (self.requests > 1 and share > _FAILURE_SHARE):
            self.open()

    def open(self) -> None:
        self.state, self.opened_at = "open", self.clock()

    def probed(self, healthy: bool) -> None:
        """A probe's outcome: close (and start a fresh window), or cool down again."""
        if healthy:
            self.state, self.requests, self.failures = "closed", 0, 0
            self.window_start = self.clock()
        else:
            self.opened_at = self.clock()


@dataclass
class UpstreamState:
    """What the router knows of one upstream between requests."""

    name: str
    max_concurrency: int | None
    max_queue: int
    breaker: Breaker = field(default_factory=Breaker)
    outstanding: int = 0
    waiting: int = 0
    last_error: str | None = None
    requests: Counter[Outcome] = field(default_factory=Counter)
    """Requests sent to the upstream since the server started, by how they ended."""
    retries: int = 0
    """Tries repeated after a retryable failure, before a first token."""
    _gate: asyncio.Semaphore | None = None

    def __post_init__(self) -> None:
        if self.max_concurrency:
            self._gate = asyncio.Semaphore(self.max_concurrency)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Count the request as outstanding; past ``max_concurrency`` wait for a slot,
        and past the server's queue limit refuse (:class:`ServerBusy`)."""
        gate = self._gate
        if gate is not None and gate.locked() and self.waiting >= self.max_queue:
            raise ServerBusy()
        self.waiting += 1
        try:
            if gate is not None:
                await gate.acquire()
        finally:
            self.waiting -= 1
        self.outstanding += 1
        try:
            yield
        finally:
            self.outstanding -= 1
            if gate is not None:
                gate.release()
