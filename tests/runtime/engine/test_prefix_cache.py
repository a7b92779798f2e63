"""The host-memory prefix cache on a real server: evicted sequences come back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from llamaport.runtime.engine.prefix_cache import common_prefix
from tests.conftest import MODEL, Server
from tests.runtime.engine._conversations import assert_warm, opening, take_turns


@pytest.mark.parametrize(
    ("a", "b", "n"),
    [([], [1], 0), ([1, 2, 3], [1, 2, 3, 4], 3), ([1, 2, 3], [1, 9, 3], 1), ([5], [6], 0)],
    ids=["empty", "prefix", "diverge", "none"],
)
def test_common_prefix(a: list[int], b: list[int], n: int) -> None:
    assert common_prefix(a, b) == n == common_prefix(b, a)


def test_more_conversations_than_slots_stay_warm(start_server: Callable[..., Server]) -> None:
    """Sixteen conversations on four slots: each turn finds its history in the
    host cache (its slot went to another conversation in between)."""
    srv = start_server(LLAMAPORT_NUM_PARALLEL="4")
    with srv.client() as c:
        table = take_turns(c, conversations=16, rounds=2)
    assert_warm(table)


def _generate(c: httpx.Client, prompt: str) -> dict[str, Any]:
    body = {
        "model": MODEL,
        "prompt": prompt,
        "stream": False,
        "options": {"num_predict": 24, "temperature": 0, "seed": 3},
    }
    r = c.post("/api/generate", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_a_restored_prefix_continues_with_the_same_greedy_tokens(
    start_server: Callable[..., Server],
) -> None:
    """One slot: the same prompt answered from its resident cells, then again
    after another prompt evicted them to the host cache and they came back."""
    srv = start_server(LLAMAPORT_NUM_PARALLEL="1")
    with srv.client() as c:
        _generate(c, opening(0))
        resident = _generate(c, opening(0))
        _generate(c, opening(1))
        restored = _generate(c, opening(0))
    assert restored["prompt_cached_count"] == resident["prompt_cached_count"]
    assert resident["prompt_cached_count"] == resident["prompt_eval_count"] - 1
    assert restored["response"] == resident["response"]


def test_a_cache_of_size_zero_is_off(start_server: Callable[..., Server]) -> None:
    srv = start_server(LLAMAPORT_NUM_PARALLEL="1", LLAMAPORT_CACHE_RAM="0")
    with srv.client() as c:
        _generate(c, opening(0))
        _generate(c, opening(1))
        again = _generate(c, opening(0))
    assert again["prompt_cached_count"] < 0.1 * again["prompt_eval_count"]
