"""Typing option values from text (``/set parameter``, ``PARAMETER``), with Ollama's error texts."""

from __future__ import annotations

from typing import Any

import pytest

from llamaport.storage.params import OPTION_TYPES, ParameterError, go_value, parse_parameter

VALID: list[tuple[str, list[str], Any]] = [
    ("num_ctx", ["4096"], 4096),
    ("seed", ["-1"], -1),
    ("top_k", ["+40"], 40),
    ("temperature", ["0.5"], 0.5),
    ("temperature", ["1"], 1.0),
    ("top_p", [".9"], 0.9),
    ("min_p", ["1e-2"], 0.01),
    ("use_mmap", ["true"], True),
    ("use_mmap", ["F"], False),
    ("use_mmap", ["1"], True),
    ("stop", ["<|eot|>"], ["<|eot|>"]),
    ("stop", ["a", "b", "c"], ["a", "b", "c"]),
    ("num_predict", ["128", "ignored"], 128),
]


@pytest.mark.parametrize(
    ("name", "values", "expected"), VALID, ids=[f"{n}={' '.join(v)}" for n, v, _ in VALID]
)
def test_parse_parameter(name: str, values: list[str], expected: Any) -> None:
    value = parse_parameter(name, values)
    assert value == expected
    assert type(value) is type(expected)


INVALID = [
    ("foo", ["1"], "unknown parameter 'foo'"),
    ("Temperature", ["1"], "unknown parameter 'Temperature'"),
    ("num_ctx", ["abc"], "invalid int value [abc]"),
    ("num_ctx", ["1.5"], "invalid int value [1.5]"),
    ("num_ctx", ["1_000"], "invalid int value [1_000]"),
    ("num_ctx", ["99999999999999999999"], "invalid int value [99999999999999999999]"),
    ("temperature", ["hot", "cold"], "invalid float value [hot cold]"),
    ("temperature", ["inf"], "invalid float value [inf]"),
    ("temperature", ["1e39"], "invalid float value [1e39]"),
    ("use_mmap", ["yes"], "invalid bool value [yes]"),
]


@pytest.mark.parametrize(("name", "values", "message"), INVALID, ids=[m for _, _, m in INVALID])
def test_parse_parameter_errors(name: str, values: list[str], message: str) -> None:
    with pytest.raises(ParameterError) as info:
        parse_parameter(name, values)
    assert str(info.value) == message


def test_parameter_table_matches_spec() -> None:
    ints = {"num_keep", "seed", "num_predict", "top_k", "repeat_last_n", "num_ctx", "num_batch"}
    ints |= {"num_gpu", "main_gpu", "num_thread", "draft_num_predict"}
    floats = {"top_p", "min_p", "typical_p", "temperature", "repeat_penalty"}
    floats |= {"presence_penalty", "frequency_penalty"}
    assert {n for n, t in OPTION_TYPES.items() if t is int} == ints
    assert {n for n, t in OPTION_TYPES.items() if t is float} == floats
    assert {n for n, t in OPTION_TYPES.items() if t is bool} == {"use_mmap"}
    assert {n for n, t in OPTION_TYPES.items() if t is list} == {"stop"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, "true"), (0.7, "0.7"), (1.0, "1"), (42, "42"), (["a", "b"], "[a b]"), ("x", "x")],
    ids=["bool", "float", "whole-float", "int", "list", "str"],
)
def test_go_value(value: Any, expected: str) -> None:
    assert go_value(value) == expected
