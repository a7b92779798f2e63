"""Ollama's options: types, precedence, keep_alive."""

from __future__ import annotations

import math

import pytest

from llamaport.runtime.engine.wire import SamplingParams
from llamaport.runtime.errors import BadRequest
from llamaport.runtime.options import (
    Options,
    parse_keep_alive,
    resolve_options,
    validate_options,
)


def test_request_beats_modelfile_beats_defaults() -> None:
    opts = resolve_options({"temperature": 0.2, "top_k": 5}, {"temperature": 0.9})
    assert (opts.temperature, opts.top_k, opts.top_p) == (0.9, 5, 0.9)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"temperature": None, "num_ctx": None}, {}),
        ({"mirostat": 2, "bogus": 1}, {}),
        ({"num_predict": 8.0}, {"num_predict": 8}),
        ({"stop": "x"}, {"stop": ["x"]}),
        ({"top_p": 1}, {"top_p": 1.0}),
        ({"use_mmap": False}, {"use_mmap": False}),
    ],
    ids=[
        "nulls-ignored",
        "unknown-ignored",
        "integral-float",
        "stop-string",
        "int-as-float",
        "bool",
    ],
)
def test_valid_options(raw: dict[str, object], expected: dict[str, object]) -> None:
    assert validate_options(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"temperature": "hot"}, 'option "temperature" must be of type float32'),
        ({"num_ctx": 1.5}, 'option "num_ctx" must be of type integer'),
        ({"num_predict": True}, 'option "num_predict" must be of type integer'),
        ({"use_mmap": "yes"}, 'option "use_mmap" must be of type boolean'),
        ({"stop": [1]}, 'option "stop" must be of type array of strings'),
        ({"temperature": float("nan")}, 'option "temperature" must be of type float32'),
    ],
    ids=["str-float", "float-int", "bool-int", "str-bool", "int-list", "nan"],
)
def test_wrong_types_are_rejected(raw: dict[str, object], message: str) -> None:
    with pytest.raises(BadRequest) as err:
        validate_options(raw)
    assert str(err.value) == message


def test_options_must_be_an_object() -> None:
    with pytest.raises(BadRequest):
        validate_options([1, 2])


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        (30, 30.0),
        (1.5, 1.5),
        (-1, math.inf),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("0", 0.0),
        ("-1m", math.inf),
        ("250ms", 0.25),
    ],
    ids=["absent", "int", "float", "negative", "5m", "1h30m", "zero", "negative-str", "ms"],
)
def test_keep_alive(value: object, seconds: float | None) -> None:
    assert parse_keep_alive(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", 'time: missing unit in duration "-1"'),
        ("1d", 'time: invalid duration "1d"'),
        (True, "Unsupported type: 'bool'"),
        ([1], "Unsupported type: 'list'"),
    ],
    ids=["no-unit", "bad-unit", "bool", "list"],
)
def test_bad_keep_alive(value: object, message: str) -> None:
    with pytest.raises(BadRequest) as err:
        parse_keep_alive(value)
    assert str(err.value) == message


def test_load_options_default_from_settings() -> None:
    load = resolve_options({}, {"num_ctx": 1024}).load_options(4096, 2)
    assert (load.num_ctx, load.num_batch, load.num_gpu, load.num_thread) == (1024, 512, -1, 2)


def test_sampling_defaults_have_one_table() -> None:
    assert Options().sampling("") == SamplingParams()


def test_sampling_carries_every_shared_option_and_the_format() -> None:
    opts = resolve_options({"temperature": 0.1}, {"top_k": 3, "stop": ["x"], "num_keep": 2})
    sampling = opts.sampling("json")
    assert (sampling.temperature, sampling.top_k, sampling.stop, sampling.num_keep) == (
        0.1,
        3,
        ("x",),
        2,
    )
    assert sampling.format == "json"
