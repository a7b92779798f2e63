"""Context shift: a sequence that fills its context keeps ``num_keep`` tokens,
drops half of the rest and goes on; with ``shift: false`` it stops instead.
With no ``num_predict`` at all, generation stops after ``num_ctx`` tokens."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import MODEL, Server, _launch

CTX = 64


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = _launch(tmp_path_factory.mktemp("shift"), {"LLAMAPORT_CONTEXT_LENGTH": str(CTX)})
    yield srv
    srv.stop()


def _count(srv: Server, **extra: Any) -> dict[str, Any]:
    body = {
        "model": MODEL,
        "raw": True,
        "prompt": "1, 2, 3, 4, 5, 6, 7, 8,",
        "stream": False,
        "options": {"num_predict": 120, "temperature": 0},
        **extra,
    }
    with srv.client() as c:
        r = c.post("/api/generate", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_without_shift_generation_stops_at_the_context(small: Server) -> None:
    out = _count(small, shift=False)
    assert out["done_reason"] == "length"
    assert out["prompt_eval_count"] + out["eval_count"] <= CTX


def test_with_shift_generation_runs_past_the_context(small: Server) -> None:
    out = _count(small)
    assert out["prompt_eval_count"] + out["eval_count"] > CTX
    assert out["eval_count"] <= 120


def test_a_shifted_slot_is_still_reused_safely(small: Server) -> None:
    first = _count(small)
    second = _count(small, shift=False)
    assert first["eval_count"] > second["eval_count"]
    assert second["prompt_eval_count"] + second["eval_count"] <= CTX


def test_with_no_limit_given_generation_stops_after_num_ctx_tokens(small: Server) -> None:
    """Counting on, the tiny model runs past its context (see above); without a
    ``num_predict`` it once ran on through context shifts for good."""
    native = _count(small, options={"temperature": 0})
    assert native["done_reason"] == "length" and native["eval_count"] == CTX
    with small.client() as c:
        body = {"model": MODEL, "prompt": "1, 2, 3, 4, 5, 6, 7, 8,", "temperature": 0}
        completion = c.post("/v1/completions", json=body).json()
    assert completion["choices"][0]["finish_reason"] == "length"
    assert completion["usage"]["completion_tokens"] == CTX


def test_ollamas_minus_one_still_means_no_limit(small: Server) -> None:
    """Read the stream past ``num_ctx`` tokens and hang up (it would not end)."""
    options = {"num_predict": -1, "temperature": 0}
    body = {"model": MODEL, "raw": True, "prompt": "1, 2, 3, 4, 5, 6, 7, 8,", "options": options}
    with small.client() as c, c.stream("POST", "/api/generate", json=body) as r:
        lines = r.iter_lines()
        chunks = [json.loads(next(lines)) for _ in range(CTX + 8)]
    assert not any(chunk["done"] or "error" in chunk for chunk in chunks)
