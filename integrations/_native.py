"""Pieces of Ollama's native request and response shapes both integrations build on.

Pure functions over what the integrations send: the option block,
``tool_choice`` in the form the server enforces, tool-call arguments.
(What the server answers is typed by :mod:`llamaport.compat.client`.)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["drop_none", "parse_arguments", "tool_choice"]


def drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    """Only the values that were set: the server's defaults stand for the rest."""
    return {k: v for k, v in values.items() if v is not None}


def tool_choice(choice: Any, names: Iterable[str]) -> str | dict[str, Any] | None:
    """``choice`` as the server takes it: "auto", "none", "required" or a named function.

    Accepts what LangChain and OpenAI callers pass: ``"any"`` and ``True``
    mean a call is required, a bare tool name or ``{"type": "function",
    "function": {"name": ...}}`` names one, ``False`` forbids calls.
    """
    if choice is None or choice in ("auto", "none", "required"):
        return choice  # type: ignore[no-any-return]
    if choice is True or choice == "any":
        return "required"
    if choice is False:
        return "none"
    if isinstance(choice, str):
        if choice not in set(names):
            raise ValueError(f"tool_choice {choice!r} is not one of the bound tools")
        return {"type": "function", "function": {"name": choice}}
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        if isinstance(name, str):
            return {"type": "function", "function": {"name": name}}
    raise ValueError(f"unsupported tool_choice: {choice!r}")


def parse_arguments(arguments: Any) -> dict[str, Any]:
    """Tool-call arguments as an object: native routes send one, /v1-style callers a string."""
    if isinstance(arguments, str):
        arguments = json.loads(arguments) if arguments.strip() else {}
    return dict(arguments or {})
