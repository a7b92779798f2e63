"""Typing of ``/set parameter NAME VALUE...`` words into request ``options``.

The REPL receives every value as text; the server wants JSON of the right
type. The rules and error texts follow Ollama's ``api.FormatParams``, so
``Couldn't set parameter: "invalid int value [abc]"`` reads the same in both.
The option table itself is the runtime's (a plain mapping; importing it loads
no engine code).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from llamaport.runtime.options import OPTION_TYPES

__all__ = ["PARAMETER_TYPES", "ParameterError", "parse_parameter"]

PARAMETER_TYPES = OPTION_TYPES
"""Every option a user may set, with the JSON type the server expects (one table:
:mod:`llamaport.runtime.options`)."""

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
    """Convert the words after ``/set parameter NAME`` into a typed value.

    ``stop`` keeps every word as a list; every other type reads only the
    first word, as Ollama does. Raises :class:`ParameterError` with Ollama's
    message for unknown names and unparsable values.
    """
    kind = PARAMETER_TYPES.get(name)
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
