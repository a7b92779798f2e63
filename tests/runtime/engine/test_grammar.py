"""Integer bounds in the schema converter: the GBNF for a range matches exactly
the canonical decimals inside it (checked through an equivalent regex), and
llama.cpp accepts the grammars it is part of."""

from __future__ import annotations

import ctypes
import json
import random
import re

import llama_cpp as L
import pytest

from llamaport.runtime.engine.grammar import GrammarError, gbnf_for, int_range_gbnf
from llamaport.runtime.engine.worker import Engine


def _as_regex(gbnf: str) -> re.Pattern[str]:
    """The expression's language as a regex: it only uses literals, classes,
    counted repeats, groups and alternation, which read the same in both."""
    pattern = re.sub(r'"([^"]*)"', lambda m: re.escape(m.group(1)), gbnf).replace(" ", "")
    return re.compile(pattern)


RANGES = [
    (0, 0),
    (0, 9),
    (1, 10),
    (-5, 12),
    (-130, -7),
    (7, 1234),
    (100, 999),
    (199, 2001),
    (-(10**16) + 1, 10**16 - 1),
    (1000, 10**16 - 1),
]


@pytest.mark.parametrize(("low", "high"), RANGES, ids=[f"{lo}..{hi}" for lo, hi in RANGES])
def test_range_matches_exactly_its_integers(low: int, high: int) -> None:
    regex = _as_regex(int_range_gbnf(low, high))
    rng = random.Random(low * 31 + high)
    probes = set(range(low - 30, low + 30)) | set(range(high - 30, high + 30))
    probes |= {rng.randint(low - 10**6, high + 10**6) for _ in range(2000)}
    probes |= {0, 1, -1, 10, 99, 100, 101, 10**15, -(10**15)}
    for n in probes:
        assert bool(regex.fullmatch(str(n))) == (low <= n <= high), n
    for bad in ("-0", "007", "+1", "1.0", ""):
        assert not regex.fullmatch(bad)


def test_schema_bounds_become_grammar_llama_cpp_accepts(engine: Engine) -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "integer", "minimum": -3.5, "maximum": 40},
            "b": {"type": "integer", "exclusiveMinimum": 9, "exclusiveMaximum": 12},
            "c": {"type": "integer", "minimum": 2, "exclusiveMinimum": True},
        },
    }
    gbnf = gbnf_for(json.dumps(schema))
    sampler = L.llama_sampler_init_grammar(engine.vocab, gbnf.encode(), b"root")
    assert sampler
    L.llama_sampler_free(sampler)
    assert 'b ::= (("1" ([0-1]))) space' in gbnf  # 10 or 11


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "integer", "minimum": 3, "maximum": 2},
        {"type": "integer", "exclusiveMinimum": 2, "exclusiveMaximum": 3},
        {"type": "number", "minimum": 0},
        {"type": "integer", "maximum": "ten"},
    ],
    ids=["empty", "empty-exclusive", "number", "not-a-number"],
)
def test_bounds_that_cannot_be_enforced_are_refused(schema: dict[str, object]) -> None:
    with pytest.raises(GrammarError):
        gbnf_for(json.dumps(schema))


def _allowed(engine: Engine, gbnf: str, prefix: str, candidates: list[str]) -> list[bool]:
    """Which one-token ``candidates`` the grammar lets follow ``prefix``."""
    sampler = L.llama_sampler_init_grammar(engine.vocab, gbnf.encode(), b"root")
    assert sampler
    try:
        for token in engine.tokenize_text(prefix, special=False):
            L.llama_sampler_accept(sampler, token)
        ids = [engine.tokenize_text(c, special=False) for c in candidates]
        assert all(len(t) == 1 for t in ids), ids
        data = (L.llama_token_data * len(ids))(*(L.llama_token_data(t[0], 1.0, 0.0) for t in ids))
        array = L.llama_token_data_array(data, len(ids), -1, False)
        L.llama_sampler_apply(sampler, ctypes.byref(array))
        return [data[i].logit != float("-inf") for i in range(len(ids))]
    finally:
        L.llama_sampler_free(sampler)


def test_strings_in_a_schema_refuse_raw_control_characters(engine: Engine) -> None:
    """JSON forbids a raw newline or tab inside a string (the converter allowed them)."""
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    gbnf = gbnf_for(json.dumps(schema))
    assert _allowed(engine, gbnf, '{"name": "Lag', ["os", "\n", "\t"]) == [True, False, False]
