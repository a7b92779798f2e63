"""Structured output: ``format`` ("json" or a JSON schema) to a GBNF grammar.

The conversion uses llama-cpp-python's port of llama.cpp's
``json_schema_to_grammar``. Both steps that can fail are checked here, before
sampling: the converter raises on schemas it cannot express, and llama.cpp
returns NULL (never a sampler) for a grammar it cannot parse. Passing that
NULL on would crash the process, so :func:`grammar_sampler` refuses it.

Integer ``minimum``/``maximum`` (and the exclusive forms), which the
converter would drop, are turned into a grammar of exactly the allowed
digit strings (:func:`int_range_gbnf`).

For a model that thinks first, the grammar admits a bounded thinking span
(no ``<`` inside, at most ``think_budget`` characters), then ``</think>``,
then the format, so the answer after the reasoning always validates.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any

import llama_cpp as L
from llama_cpp.llama_grammar import JSON_GBNF, RESERVED_NAMES, BuiltinRule, SchemaConverter

__all__ = ["GrammarError", "gbnf_for", "grammar_sampler", "grammar_text", "int_range_gbnf"]


class GrammarError(ValueError):
    """The requested format cannot become a grammar; the message says why."""


_BOUNDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
"""Enforced for integers (:func:`int_range_gbnf`), refused for other numbers."""
_MAX_DIGITS = 16
"""As the converter's own integers: at most this many digits."""
_UNENFORCED = frozenset(
    {
        *_BOUNDS,
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
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions")


def _check_enforceable(schema: object, path: str = "#") -> None:
    if not isinstance(schema, dict):
        return
    refused = _UNENFORCED - _BOUNDS if schema.get("type") == "integer" else _UNENFORCED
    for key in sorted(refused & schema.keys()):
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
    converter = _Converter(  # type: ignore[no-untyped-call]
        prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False
    )
    try:
        converter.visit(converter.resolve_refs(schema, "stdin"), "")
        gbnf: str = converter.format_grammar()  # type: ignore[no-untyped-call]
    except GrammarError:
        raise
    except (AssertionError, KeyError, TypeError, ValueError, RecursionError) as exc:
        raise GrammarError(f"invalid JSON schema: {exc or type(exc).__name__}") from None
    return gbnf


_JSON_CHAR = BuiltinRule(r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})', [])
"""A character inside a JSON string. The converter's own ``char`` lets raw control
characters (a newline) through, which makes the document invalid JSON; llama.cpp's
C++ converter and ``JSON_GBNF`` exclude them, as RFC 8259 does."""


class _Converter(SchemaConverter):
    """llama-cpp-python's converter, plus integer bounds and JSON-valid string characters."""

    def _add_primitive(self, name: str, rule: BuiltinRule) -> str:
        result: str = super()._add_primitive(name, _JSON_CHAR if name == "char" else rule)
        return result

    def visit(self, schema: dict[str, Any], name: str) -> str:
        if schema.get("type") == "integer" and _BOUNDS & schema.keys():
            rule_name = name + "-" if name in RESERVED_NAMES else name or "root"
            low, high = _int_bounds(schema)
            gbnf = f"({int_range_gbnf(low, high)}) space"
            rule: str = self._add_rule(rule_name, gbnf)  # type: ignore[no-untyped-call]
            return rule
        result: str = super().visit(schema, name)  # type: ignore[no-untyped-call]
        return result


def _int_bounds(schema: dict[str, Any]) -> tuple[int, int]:
    """The closed range an integer schema allows, within the converter's 16 digits."""
    limit = 10**_MAX_DIGITS - 1
    low, high = -limit, limit
    for key in _BOUNDS & schema.keys():
        value = schema[key]
        if isinstance(value, bool):  # draft 4: exclusiveM* flags the plain bound
            continue
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise GrammarError(f"invalid JSON schema: '{key}' must be a number")
        if key == "minimum":
            low = max(low, math.ceil(value))
        elif key == "exclusiveMinimum":
            low = max(low, math.floor(value) + 1)
        elif key == "maximum":
            high = min(high, math.floor(value))
        else:
            high = min(high, math.ceil(value) - 1)
    if schema.get("exclusiveMinimum") is True and "minimum" in schema:
        low = max(low, math.floor(schema["minimum"]) + 1)
    if schema.get("exclusiveMaximum") is True and "maximum" in schema:
        high = min(high, math.ceil(schema["maximum"]) - 1)
    if low > high:
        raise GrammarError(f"invalid JSON schema: no integer lies in [{low}, {high}]")
    return low, high


def _same_length(low: str, high: str) -> str:
    """GBNF for the digit strings of one length from ``low`` to ``high`` (leading
    zeros allowed: these are the tail digits of a longer number)."""
    if low == high:
        return f'"{low}"'
    first = f"[{low[0]}-{high[0]}]" if low[0] != high[0] else f'"{low[0]}"'
    rest = len(low) - 1
    if rest == 0:
        return first
    if low[1:] == "0" * rest and high[1:] == "9" * rest:
        return f"{first} [0-9]{{{rest}}}"
    if low[0] == high[0]:
        return f'"{low[0]}" ({_same_length(low[1:], high[1:])})'
    parts = [f'"{low[0]}" ({_same_length(low[1:], "9" * rest)})']
    if int(high[0]) - int(low[0]) > 1:
        parts.append(f"[{int(low[0]) + 1}-{int(high[0]) - 1}] [0-9]{{{rest}}}")
    parts.append(f'"{high[0]}" ({_same_length("0" * rest, high[1:])})')
    return " | ".join(parts)


def _non_negative(low: int, high: int) -> list[str]:
    """Alternatives matching the canonical decimals of ``low..high`` (0 <= low <= high)."""
    out = []
    for length in range(len(str(low)), len(str(high)) + 1):
        first = max(low, 10 ** (length - 1) if length > 1 else 0)
        last = min(high, 10**length - 1)
        if first <= last:
            out.append(_same_length(str(first), str(last)))
    return out


def int_range_gbnf(low: int, high: int) -> str:
    """A GBNF expression matching exactly the JSON integers from ``low`` to ``high``."""
    alternatives = []
    if low < 0:
        negative = _non_negative(max(1, -high), -low)
        alternatives.append(f'"-" ({" | ".join(negative)})')
    if high >= 0:
        alternatives.extend(f"({alt})" for alt in _non_negative(max(0, low), high))
    return " | ".join(alternatives)


def _with_thinking(gbnf: str, budget: int, opened: bool) -> str:
    """Add ``think-root``: thinking (already opened by the prompt, or optional), then ``root``."""
    span = f'think-char{{0,{budget}}} "</think>" think-space'
    start = span if opened else f'("<think>" think-space {span})?'
    return (
        f"{gbnf}\nthink-root ::= {start} root\n"
        "think-char ::= [^<]\nthink-space ::= [ \\t\\n]{0,4}\n"
    )


def grammar_text(fmt: str, think_budget: int = 0, opened: bool = True) -> tuple[str, str]:
    """The GBNF for ``fmt`` and its start rule, after a thinking span of up to
    ``think_budget`` characters when that is positive; raises :class:`GrammarError`.
    The sampler and the closer (``closing.py``) both read this one text."""
    if think_budget > 0:
        return _with_thinking(gbnf_for(fmt), think_budget, opened), "think-root"
    return gbnf_for(fmt), "root"


def grammar_sampler(vocab: object, fmt: str, think_budget: int = 0, opened: bool = True) -> object:
    """A llama.cpp grammar sampler for :func:`grammar_text`; raises :class:`GrammarError`."""
    gbnf, start = grammar_text(fmt, think_budget, opened)
    sampler = L.llama_sampler_init_grammar(vocab, gbnf.encode(), start.encode())
    if not sampler:
        raise GrammarError("the JSON schema produced a grammar llama.cpp cannot parse")
    return sampler
