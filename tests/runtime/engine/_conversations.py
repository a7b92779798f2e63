"""Conversations taking turns on one server, the workload of prefix reuse.

Each conversation opens with a long user message of its own, so a turn whose
history is still in KV (a slot, or the host cache) reports nearly all of its
prompt as cached, and one whose history was lost reports only the shared
system header.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import MODEL

OPTIONS = {"num_predict": 8, "temperature": 0, "seed": 7}


def opening(k: int) -> str:
    """A first message of some 500 tokens that no other conversation shares."""
    return f"Conversation {k}. " + " ".join(f"Item {k}-{i} is {i % 7} metres." for i in range(60))


def native_turn(c: httpx.Client, messages: list[dict[str, Any]]) -> tuple[str, int, int]:
    """One ``/api/chat`` turn: (reply, prompt tokens, cached prompt tokens)."""
    body = {"model": MODEL, "messages": messages, "stream": False, "options": OPTIONS}
    r = c.post("/api/chat", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    return out["message"]["content"], out["prompt_eval_count"], out["prompt_cached_count"]


def openai_turn(c: httpx.Client, messages: list[dict[str, Any]]) -> tuple[str, int, int]:
    """One ``/v1/chat/completions`` turn: (reply, prompt tokens, cached prompt tokens)."""
    body = {"model": MODEL, "messages": messages, "max_tokens": 8, "temperature": 0, "seed": 7}
    r = c.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    usage = out["usage"]
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    return out["choices"][0]["message"]["content"], usage["prompt_tokens"], cached


def take_turns(c: httpx.Client, conversations: int, rounds: int) -> list[list[tuple[int, int]]]:
    """Run ``rounds`` rounds of ``conversations`` alternating conversations, odd
    rounds over ``/v1``; per round, each turn's (prompt tokens, cached tokens)."""
    histories: list[list[dict[str, Any]]] = [[] for _ in range(conversations)]
    table: list[list[tuple[int, int]]] = []
    for r in range(rounds):
        row: list[tuple[int, int]] = []
        for k, history in enumerate(histories):
            history.append({"role": "user", "content": opening(k) if r == 0 else "Go on."})
            turn = openai_turn if r % 2 else native_turn
            reply, prompt, cached = turn(c, history)
            history.append({"role": "assistant", "content": reply})
            row.append((prompt, cached))
        table.append(row)
    return table


def assert_warm(table: list[list[tuple[int, int]]]) -> None:
    """From the second round on, each turn reuses all of its previous turn's
    prompt and at least 95% of its own, and evaluates at least one token."""
    for r in range(1, len(table)):
        for k, (prompt, cached) in enumerate(table[r]):
            previous = table[r - 1][k][0]
            assert previous <= cached < prompt, (r, k, table)
            assert cached >= 0.95 * prompt, (r, k, table)
