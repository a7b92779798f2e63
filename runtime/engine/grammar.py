"""Structured output: ``format`` ("json" or a JSON schema) to a GBNF grammar.

The conversion uses llama-cpp-python's port of llama.cpp's
``json_schema_to_grammar``. Both steps that can fail are checked here, before
sampling: the converter raises on schemas it cannot express, and llama.cpp
returns NULL (never a sampler) for a grammar it cannot parse. Passing that
NULL on would crash the process, so :func:`grammar_sampler` refuses it.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any

import llama_cpp as L
from llama_cpp.llama_grammar import JSON_GBNF, RESERVED_NAMES, SchemaConverter

__all__ = ["GrammarError", "gbnf_for", "grammar_sampler"]


class GrammarError(ValueError):
    """The requested format cannot become a grammar; the message says why."""


_UNENFORCED = frozenset(
    {
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "patternProperties",
        "propertyNames",
        "dependentRequired",
        "dependentSchemas",
        "contains",
        "minContains",
        "maxContains",
        "not",
        "if",
        "then",
        "else",
        "unevaluatedItems",
        "unevaluatedProperties",
    }
)
"""Constraints the grammar converter would silently drop. A schema using one
is refused: output that ignores part of the schema is not "structured"."""
_BOUNDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
"""Enforced on integers (:func:`_integer_range`), refused on numbers."""
_MAX_DIGITS = 15
"""Unbounded sides of an integer range stop at 15 digits, as llama.cpp's integers do."""
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions")


def _fixed_width(lo: str, hi: str) -> list[str]:
    """GBNF sequences for the digit strings from ``lo`` to ``hi`` (same length, zeros kept)."""
    if not lo:
        return [""]
    if lo[0] == hi[0]:
        return [f'"{lo[0]}" {rest}'.strip() for rest in _fixed_width(lo[1:], hi[1:])]
    width = len(lo) - 1
    low_free, high_free = lo[1:] == "0" * width, hi[1:] == "9" * width
    first = lo[0] if low_free else chr(ord(lo[0]) + 1)
    last = hi[0] if high_free else chr(ord(hi[0]) - 1)
    out = [] if low_free else [f'"{lo[0]}" {r}' for r in _fixed_width(lo[1:], "9" * width)]
    if first <= last:
        out.append(f"[{first}-{last}]" + " [0-9]" * width)
    if not high_free:
        out += [f'"{hi[0]}" {r}' for r in _fixed_width("0" * width, hi[1:])]
    return out


def _naturals(lo: int, hi: int) -> list[str]:
    """GBNF sequences for the integers ``lo..hi`` (``0 <= lo``), without leading zeros."""
    out: list[str] = []
    while lo <= hi:
        top = min(hi, 10 ** len(str(lo)) - 1)
        out += _fixed_width(str(lo), str(top))
        lo = top + 1
    return out


def _integer_range(schema: dict[str, Any]) -> str:
    """A GBNF alternation for an integer schema's bounds (unbounded sides: 15 digits)."""
    lo, hi = -(10**_MAX_DIGITS - 1), 10**_MAX_DIGITS - 1
    if "minimum" in schema:
        lo = max(lo, math.ceil(schema["minimum"]))
    if "exclusiveMinimum" in schema:
        lo = max(lo, math.floor(schema["exclusiveMinimum"]) + 1)
    if "maximum" in schema:
        hi = min(hi, math.floor(schema["maximum"]))
    if "exclusiveMaximum" in schema:
        hi = min(hi, math.ceil(schema["exclusiveMaximum"]) - 1)
    if lo > hi:
        raise GrammarError(f"integer bounds admit no value: {lo} > {hi}")
    negative = [f'"-" {r}' for r in reversed(_naturals(max(1, -hi), -lo))] if lo < 0 else []
    return " | ".join(negative + _naturals(max(0, lo), hi))


class _Converter(SchemaConverter):
    """llama-cpp-python's converter, plus integer bounds (its port drops them)."""

    def visit(self, schema: dict[str, Any], name: str) -> str:
        if schema.get("type") == "integer" and _BOUNDS & schema.keys():
            rule_name = name + "-" if name in RESERVED_NAMES else name or "root"
            rule: str = self._add_rule(rule_name, f"({_integer_range(schema)}) space")  # type: ignore[no-untyped-call]
            return rule
        out: str = super().visit(schema, name)  # type: ignore[no-untyped-call]
        return out


def json_schema_to_gbnf(schema: str) -> str:
    converter = _Converter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)  # type: ignore[no-untyped-call]
    converter.visit(converter.resolve_refs(json.loads(schema), "stdin"), "")
    gbnf: str = converter.format_grammar()  # type: ignore[no-untyped-call]
    return gbnf


def _check_enforceable(schema: object, path: str = "#") -> None:
    if not isinstance(schema, dict):
        return
    unenforced = _UNENFORCED - _BOUNDS if schema.get("type") == "integer" else _UNENFORCED
    for key in sorted(unenforced & schema.keys()):
        raise GrammarError(
            f"JSON schema keyword '{key}' at {path} cannot be enforced by constrained decoding"
        )
    for key in _SUBSCHEMA_LISTS:
        for i, sub in enumerate(schema.get(key) or []):
            _check_enforceable(sub, f"{path}/{key}/{i}")
    for key in _SUBSCHEMA_MAPS:
        for name, sub in (schema.get(key) or {}).items():
            _check_enforceable(sub, f"{path}/{key}/{name}")
    for key in ("items", "additionalProperties"):
        _check_enforceable(schema.get(key), f"{path}/{key}")


@lru_cache(maxsize=64)
def gbnf_for(fmt: str) -> str:
    """GBNF for ``"json"`` or a JSON-encoded schema."""
    if fmt == "json":
        return JSON_GBNF
    try:
        schema = json.loads(fmt)
    except json.JSONDecodeError as exc:
        raise GrammarError(f"invalid JSON schema: {exc}") from None
    if not isinstance(schema, dict):
        raise GrammarError("invalid JSON schema: a schema must be an object")
    _check_enforceable(schema)
    try:
        gbnf: str = json_schema_to_gbnf(json.dumps(schema))
    except (AssertionError, KeyError, TypeError, ValueError, RecursionError) as exc:
        raise GrammarError(f"invalid JSON schema: {exc or type(exc).__name__}") from None
    return gbnf


def grammar_sampler(vocab: object, fmt: str) -> object:
    """A llama.cpp grammar sampler for ``fmt``; raises :class:`GrammarError`."""
    sampler = L.llama_sampler_init_grammar(vocab, gbnf_for(fmt).encode(), b"root")
    if not sampler:
        raise GrammarError("the JSON schema produced a grammar llama.cpp cannot parse")
    return sampler
