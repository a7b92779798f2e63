"""Integer bounds in JSON schemas become grammar rules (llama-cpp-python's converter drops them)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from llamaport.runtime.engine.grammar import GrammarError, _integer_range, gbnf_for
from tests.conftest import MODEL


def _as_regex(alternation: str) -> re.Pattern[str]:
    """The GBNF alternation as a Python regex: quoted literals and digit classes only."""
    return re.compile(re.sub(r'"(.)"', r"\1", alternation).replace(" ", ""))


@pytest.mark.parametrize(
    "bounds",
    [
        {"minimum": 17, "maximum": 342},
        {"exclusiveMinimum": -1000, "exclusiveMaximum": 1000},
        {"minimum": -45, "maximum": -3},
        {"minimum": 0, "maximum": 0},
        {"minimum": 5, "maximum": 10000},
        {"minimum": -1.5, "exclusiveMaximum": 99.5},
    ],
    ids=["positive", "exclusive", "negative", "zero", "wide", "fractional-bounds"],
)
def test_the_rule_matches_exactly_the_integers_in_range(bounds: dict[str, Any]) -> None:
    pattern = _as_regex(_integer_range({"type": "integer", **bounds}))
    for n in range(-1200, 12000):
        inside = (
            n >= bounds.get("minimum", -(10**9))
            and n > bounds.get("exclusiveMinimum", -(10**9))
            and n <= bounds.get("maximum", 10**9)
            and n < bounds.get("exclusiveMaximum", 10**9)
        )
        assert bool(pattern.fullmatch(str(n))) == inside, n
    assert not pattern.fullmatch("007")


def test_one_sided_bounds_allow_up_to_fifteen_digits() -> None:
    pattern = _as_regex(_integer_range({"type": "integer", "minimum": 3}))
    assert pattern.fullmatch("3") and pattern.fullmatch("9" * 15)
    assert not pattern.fullmatch("2") and not pattern.fullmatch("-4")
    assert not pattern.fullmatch("1" + "0" * 15)


def test_empty_ranges_and_bounded_numbers_are_refused() -> None:
    with pytest.raises(GrammarError, match="admit no value"):
        gbnf_for(json.dumps({"type": "integer", "minimum": 5, "maximum": 4}))
    with pytest.raises(GrammarError, match="'maximum'"):
        gbnf_for(json.dumps({"type": "number", "maximum": 4}))


def test_a_bounded_integer_format_is_obeyed_by_the_model(client: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 40, "maximum": 42}},
        "required": ["n"],
    }
    r = client.post(
        "/api/generate",
        json={
            "model": MODEL,
            "prompt": "Pick a number from 1 to 1000.",
            "format": schema,
            "stream": False,
            "options": {"temperature": 1.0, "num_predict": 16, "seed": 3},
        },
    )
    assert r.status_code == 200, r.text
    assert json.loads(r.json()["response"])["n"] in (40, 41, 42)
