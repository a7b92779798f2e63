"""Ollama's option table, and typing option values written as text.

One table serves every layer: the runtime checks request ``options`` against
it, the Modelfile parser types ``PARAMETER`` lines with it, and the CLI types
``/set parameter`` words with it. It lives here, in the lowest layer, so
storage can use it without importing the runtime.

Text typing follows Ollama's ``api.FormatParams``, error texts included
(``invalid int value [abc]``), so a mistake reads the same everywhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

__all__ = [
    "DEPRECATED_PARAMETERS",
    "OPTION_TYPES",
    "ParameterError",
    "go_float",
    "go_value",
    "parse_parameter",
]

OPTION_TYPES: dict[str, type] = {
    "num_keep": int,
    "seed": int,
    "num_predict": int,
    "top_k": int,
    "top_p": float,
    "min_p": float,
    "typical_p": float,
    "repeat_last_n": int,
    "temperature": float,
    "repeat_penalty": float,
    "presence_penalty": float,
    "frequency_penalty": float,
    "stop": list,
    "num_ctx": int,
    "num_batch": int,
    "num_gpu": int,
    "main_gpu": int,
    "use_mmap": bool,
    "num_thread": int,
    "draft_num_predict": int,
}
"""Every valid option and its type (Ollama's ``api.Options`` and ``api.Runner``)."""

DEPRECATED_PARAMETERS = frozenset(
    {
        "penalize_newline",
        "low_vram",
        "f16_kv",
        "logits_all",
        "vocab_only",
        "use_mlock",
        "mirostat",
        "mirostat_tau",
        "mirostat_eta",
    }
)
"""Options Ollama removed: a Modelfile naming one gets a warning and the line is dropped."""

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_FLOAT32_MAX = 3.4028234663852886e38
_INT64 = 2**63


class ParameterError(ValueError):
    """A parameter name is unknown or its value does not parse as its type."""


def _go_list(values: Sequence[str]) -> str:
    """Go's ``%s`` of a ``[]string``: ``[a b]``."""
    return "[" + " ".join(values) + "]"


def parse_parameter(name: str, values: Sequence[str]) -> Any:
    """Type the text ``values`` of option ``name``.

    ``stop`` keeps every value as a list; every other type reads only the
    first, as Ollama does. Raises :class:`ParameterError` with Ollama's
    message for unknown names and unparsable values.
    """
    kind = OPTION_TYPES.get(name)
    if kind is None:
        raise ParameterError(f"unknown parameter '{name}'")
    if not values:
        raise ParameterError(f"missing value for parameter '{name}'")
    first = values[0]
    if kind is list:
        return list(values)
    if kind is int:
        if not _INT.fullmatch(first) or not -_INT64 <= int(first) < _INT64:
            raise ParameterError(f"invalid int value {_go_list(values)}")
        return int(first)
    if kind is float:
        if not _FLOAT.fullmatch(first):
            raise ParameterError(f"invalid float value {_go_list(values)}")
        number = float(first)
        if abs(number) > _FLOAT32_MAX:  # JSON has no infinities to send
            raise ParameterError(f"invalid float value {_go_list(values)}")
        return number
    if first in _TRUE:
        return True
    if first in _FALSE:
        return False
    raise ParameterError(f"invalid bool value {_go_list(values)}")


def go_value(value: Any) -> str:
    """Go's ``%v`` for decoded option values: ``true``, ``0.7``, ``[a b]``.

    Whole floats print as integers (``4096``, never ``4096.0`` or Go's
    ``4.096e+03``), so the text types back to the same value.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_value(item) for item in value) + "]"
    return str(value)


def go_float(value: float) -> str:
    """Go's ``%v`` (and ``%g``, ``%#v``) of a ``float64``: the shortest digits, in
    exponent form when the exponent is below -4 or at least 6 (``1e+06``,
    ``1.34515008e+08``, ``0.0001``, ``1e-05``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    point = len(text) + exponent
    prefix = "-" if sign else ""
    if not -4 <= point - 1 < 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        power = point - 1
        return f"{prefix}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return prefix + text + "0" * (point - len(text))
    return f"{prefix}{text[:point]}.{text[point:]}"
