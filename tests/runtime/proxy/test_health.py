"""The breaker's LiteLLM semantics, on a clock the test moves."""

from __future__ import annotations

import asyncio

import pytest

from llamaport.runtime.errors import ServerBusy
from llamaport.runtime.proxy import Breaker, UpstreamState


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_failure_alone_never_opens() -> None:
    breaker = Breaker(clock=Clock())
    breaker.failure()
    assert breaker.closed


def test_over_half_failed_in_the_minute_opens() -> None:
    breaker = Breaker(clock=Clock())
    breaker.success()
    breaker.failure()
    assert breaker.closed  # exactly half
    breaker.failure()
    assert not breaker.closed


def test_a_fatal_failure_opens_at_once() -> None:
    breaker = Breaker(clock=Clock())
    breaker.failure(fatal=True)
    assert not breaker.closed


def test_a_probe_closes_after_the_cooldown_only() -> None:
    clock = Clock()
    breaker = Breaker(cooldown_s=5, clock=clock)
    breaker.failure(fatal=True)
    assert not breaker.probe_due
    clock.now = 5
    assert breaker.probe_due
    breaker.probed(healthy=False)
    assert not breaker.probe_due and not breaker.closed
    clock.now = 10
    breaker.probed(healthy=True)
    assert breaker.closed and breaker.failures == 0


def test_the_window_forgets_old_failures() -> None:
    clock = Clock()
    breaker = Breaker(clock=clock)
    breaker.failure()
    clock.now = 61
    breaker.failure()
    assert breaker.closed


async def test_past_max_concurrency_requests_queue_then_refuse() -> None:
    state = UpstreamState("a", max_concurrency=1, max_queue=1)
    release = asyncio.Event()

    async def hold() -> None:
        async with state.slot():
            await release.wait()

    holder = asyncio.create_task(hold())
    while state.outstanding == 0:
        await asyncio.sleep(0)
    waiter = asyncio.create_task(hold())
    while state.waiting == 0:
        await asyncio.sleep(0)
    with pytest.raises(ServerBusy):
        async with state.slot():
            pass
    release.set()
    await asyncio.gather(holder, waiter)
    assert state.outstanding == 0 and state.waiting == 0
