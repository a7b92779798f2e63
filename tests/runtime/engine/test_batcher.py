"""Slot choice on a real server: conversations taking turns keep their own slots."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import Server
from tests.runtime.engine._conversations import assert_warm, take_turns


def test_alternating_conversations_keep_their_slots(start_server: Callable[..., Server]) -> None:
    """Four conversations on four slots: a new conversation shares only the
    system header with a resident one, so it must take an empty slot instead
    of evicting it."""
    srv = start_server(LLAMAPORT_NUM_PARALLEL="4")
    with srv.client() as c:
        table = take_turns(c, conversations=4, rounds=3)
    assert_warm(table)
    first = [cached for _, cached in table[0]]
    assert max(first[1:]) < 0.1 * table[0][1][0], table
