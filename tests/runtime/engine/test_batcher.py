"""Slot choice on a real server: conversations taking turns keep their own slots."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import MODEL, Server
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


def test_the_same_prompt_again_reuses_its_slot(start_server: Callable[..., Server]) -> None:
    """A short prompt whose reply made its slot more than twice as long: asked again
    with empty slots free, it reuses the slot (the reply's cells go to the host
    cache) instead of prefilling from nothing."""
    srv = start_server(LLAMAPORT_NUM_PARALLEL="4")
    body = {
        "model": MODEL,
        "prompt": "Write a long story about a dragon.",
        "stream": False,
        "options": {"num_predict": 96, "temperature": 0, "seed": 1},
    }
    with srv.client() as c:
        first = c.post("/api/generate", json=body).json()
        again = c.post("/api/generate", json=body).json()
    assert first["eval_count"] > 2 * first["prompt_eval_count"], first
    assert first["prompt_cached_count"] == 0, first
    assert again["prompt_cached_count"] == again["prompt_eval_count"] - 1, again
