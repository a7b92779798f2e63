"""Loading a JSON request body: the one place client JSON enters the server.

Both faces' ``decode`` call :func:`load_json`, so every JSON route gets the
same two checks before pydantic, the runtime or SQLite see the data:

* a nesting limit (:data:`MAX_DEPTH`): deeper bodies would otherwise end in
  a ``RecursionError`` somewhere downstream (a 500), or in the decoder itself;
* text that UTF-8 can carry: JSON's ``\\ud800`` escapes decode to lone
  surrogates, which every later ``encode`` (the tokenizer, SQLite, the
  response writer) refuses.

Both are :class:`ApiError` 400s, so each face's envelope carries them
(OpenAI's ``param`` names the field).
"""

from __future__ import annotations

import json
import re
from typing import Any

from llamaport.compat.errors import ApiError

__all__ = ["MAX_DEPTH", "BodyTooDeep", "InvalidText", "load_json", "param_path"]

MAX_DEPTH = 128
"""Arrays and objects nested deeper than this are refused (serde_json's limit)."""

_SURROGATE = re.compile("[\ud800-\udfff]")


class BodyTooDeep(ApiError):
    def __init__(self) -> None:
        super().__init__(400, f"request body is nested too deeply: the limit is {MAX_DEPTH} levels")


class InvalidText(ApiError):
    """A string (or object key) at ``param`` holds a lone UTF-16 surrogate."""

    def __init__(self, param: str) -> None:
        where = f"field '{param}'" if param else "the request body"
        super().__init__(
            400,
            f"invalid string in {where}: it contains a lone UTF-16 surrogate "
            "(an unpaired \\ud800-\\udfff escape), which is not text",
            param or None,
        )


def param_path(loc: tuple[int | str, ...]) -> str:
    """``("messages", 0, "role")`` -> ``messages[0].role``, OpenAI's ``param``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _check(data: dict[str, Any] | list[Any]) -> None:
    """Walk ``data`` without recursion, refusing deep nesting and lone surrogates.

    Strings are checked where they are met, so only containers go on the stack.
    """
    stack: list[tuple[dict[str, Any] | list[Any], tuple[int | str, ...]]] = [(data, ())]
    while stack:
        value, loc = stack.pop()
        if len(loc) >= MAX_DEPTH:
            raise BodyTooDeep()
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in pairs:
            if isinstance(key, str) and _SURROGATE.search(key):
                raise InvalidText(param_path(loc))
            if isinstance(item, str):
                if _SURROGATE.search(item):
                    raise InvalidText(param_path((*loc, key)))
            elif isinstance(item, dict | list):
                stack.append((item, (*loc, key)))


def load_json(raw: bytes) -> Any:
    """``json.loads`` plus the checks above.

    Raises ``json.JSONDecodeError`` and ``UnicodeDecodeError`` as ``json.loads``
    does (each face words those itself), :class:`BodyTooDeep` and
    :class:`InvalidText`.
    """
    try:
        data = json.loads(raw)
    except RecursionError:
        raise BodyTooDeep() from None
    if isinstance(data, dict | list):
        _check(data)
    elif isinstance(data, str) and _SURROGATE.search(data):
        raise InvalidText("")
    return data
