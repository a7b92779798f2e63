"""Structured output: ``format`` ("json" or a JSON schema) to a GBNF grammar.

The conversion uses llama-cpp-python's port of llama.cpp's
``json_schema_to_grammar``. Both steps that can fail are checked here, before
sampling: the converter raises on schemas it cannot express, and llama.cpp
returns NULL (never a sampler) for a grammar it cannot parse. Passing that
NULL on would crash the process, so :func:`grammar_sampler` refuses it.
"""

from __future__ import annotations

import json
from functools import lru_cache

import llama_cpp as L
from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

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
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions")


def _check_enforceable(schema: object, path: str = "#") -> None:
    if not isinstance(schema, dict):
        return
    for key in sorted(_UNENFORCED & schema.keys()):
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
