"""Decoding Ollama's native request bodies, with Ollama's error texts.

The bodies themselves are the models the client sends
(:mod:`llamaport.compat.client`), as Ollama's server and client share
``api/types.go``; they are strict as Go's ``encoding/json`` is (a number
where a string belongs is an error, unknown fields are ignored). This module
adds what only the server needs: Go's wording for every decoding error.
``options`` stays a raw mapping; :mod:`llamaport.runtime.options` types it.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from llamaport.compat.body import load_json
from llamaport.compat.errors import ApiError

__all__ = ["decode"]

M = TypeVar("M", bound=BaseModel)

_GO_TYPES = {
    "string_type": "string",
    "bool_type": "bool",
    "int_type": "int",
    "float_type": "float64",
    "list_type": "array",
    "dict_type": "object",
    "model_type": "object",
}


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _describe(error: ErrorDetails, model: type[BaseModel]) -> str:
    """Go's wording, e.g. ``json: cannot unmarshal number into Go struct field
    GenerateRequest.prompt of type string``, so clients see Ollama's text."""
    field = ".".join(str(p) for p in error["loc"] if not isinstance(p, int))
    struct = model.__name__.replace("Body", "Request")
    want = _GO_TYPES.get(error["type"])
    if want is None:
        return f"invalid value for field {field!r}: {error['msg']}"
    got = _json_kind(error.get("input"))
    return f"json: cannot unmarshal {got} into Go struct field {struct}.{field} of type {want}"


_KEY_EXPECTED = "Expecting property name enclosed in double quotes"
_GO_CONTEXT = {
    "Expecting value": "looking for beginning of value",
    _KEY_EXPECTED: "looking for beginning of object key string",
    "Expecting ':' delimiter": "after object key",
    "Extra data": "after top-level value",
}


def _innermost(doc: str) -> str:
    """``{`` or ``[``: the container open at the end of ``doc`` (strings skipped)."""
    stack: list[str] = []
    in_string = escaped = False
    for c in doc:
        if in_string:
            escaped, in_string = (False, True) if escaped else (c == "\\", c != '"')
        elif c == '"':
            in_string = True
        elif c in "{[":
            stack.append(c)
        elif c in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def _go_syntax_error(exc: json.JSONDecodeError) -> str:
    """Go's ``encoding/json`` wording for a syntax error, which clients may match on."""
    if exc.pos >= len(exc.doc) or exc.msg.startswith("Unterminated"):
        return "unexpected EOF"
    char = exc.doc[exc.pos]
    quoted = "'\\''" if char == "'" else repr(char) if not char.isprintable() else f"'{char}'"
    if exc.msg == "Expecting ',' delimiter":
        where = (
            "after object key:value pair"
            if _innermost(exc.doc[: exc.pos]) == "{"
            else ("after array element")
        )
    else:
        where = _GO_CONTEXT.get(exc.msg, "in string literal")
    return f"invalid character {quoted} {where}"


def decode(model: type[M], raw: bytes) -> M:
    """Parse a request body into ``model`` or raise a 400 :class:`ApiError`."""
    if not raw.strip():
        raise ApiError(400, "missing request body")
    try:
        data = load_json(raw)
    except json.JSONDecodeError as exc:
        raise ApiError(400, _go_syntax_error(exc)) from None
    except UnicodeDecodeError:
        raise ApiError(400, "invalid character in request body: not UTF-8") from None
    if not isinstance(data, dict):
        raise ApiError(
            400, f"json: cannot unmarshal {_json_kind(data)} into Go value of type api.Request"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, _describe(exc.errors()[0], model)) from None
