"""The host-memory prefix cache on a real server: evicted sequences come back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import llama_cpp as L
import pytest

from llamaport.runtime.engine.prefix_cache import PrefixCache
from llamaport.runtime.engine.prefixes import common_prefix
from llamaport.runtime.engine.worker import Engine
from tests.conftest import MODEL, Server
from tests.runtime.engine._batch import decode
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


def test_an_entry_evicted_after_its_lookup_still_restores(engine: Engine) -> None:
    """The batcher saves the slot it is about to reuse between a lookup and the
    restore, and that save can evict the entry it found (the soak's KeyError)."""
    mem = L.llama_get_memory(engine.ctx)
    first = engine.tokenize_text("Llamas hum when they are curious. " * 6, special=False)
    second = engine.tokenize_text("Alpacas are sheared once a year. " * 6, special=False)
    decode(engine, first)
    cache = PrefixCache(engine.ctx, int(L.llama_state_seq_get_size(engine.ctx, 0)) * 3 // 2)
    cache.save(0, first)
    entry, hit = cache.lookup(first)
    assert entry is not None and hit == len(first)
    L.llama_memory_clear(mem, True)
    decode(engine, second)
    cache.save(0, second)
    assert cache.lookup(first)[1] < len(first)  # the first entry is gone
    L.llama_memory_clear(mem, True)
    assert cache.restore(entry, 0)
    assert L.llama_memory_seq_pos_max(mem, 0) == len(first) - 1
