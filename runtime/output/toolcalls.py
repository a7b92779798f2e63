"""Tool calls out of model output, while it streams.

Models write calls in a handful of shapes:

- Hermes/Qwen: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
- Mistral: ``[TOOL_CALLS] [{"name": ..., "arguments": {...}}]``
- Llama 3.x: ``<|python_tag|>{"name": ..., "parameters": {...}}`` or bare JSON
- generic (llamaport's own tool preamble, and forced calls): a JSON object
  ``{"name": ..., "arguments": {...}}`` or an array of them.

:class:`ToolCallParser` passes ordinary text through at once. Output that
starts like a call (a tag, or ``{``/``[`` as its first character) is held
back; at the end it becomes tool calls when it parses into calls of known
tools, and is released as text otherwise, so nothing is ever lost.
"""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

from llamaport.runtime.types import ToolCall

__all__ = ["TAGS", "ToolCallParser", "new_call_id", "parse_calls"]

TAGS = ("<tool_call>", "[TOOL_CALLS]", "<|python_tag|>")
_CLOSERS = ("</tool_call>",)
_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_call_id() -> str:
    """Ollama's form: ``call_`` and eight characters of ``[a-z0-9]``."""
    return "call_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


def _as_call(obj: Any, names: set[str]) -> tuple[str, dict[str, Any]] | None:
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict):
        obj = obj["function"]
    name = obj.get("name")
    if not isinstance(name, str) or name not in names:
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            return None
    return (name, args) if isinstance(args, dict) else None


def _json_values(text: str) -> list[Any] | None:
    """Every JSON value in ``text``, separated only by whitespace, tags or commas."""
    decoder = json.JSONDecoder()
    for tag in (*TAGS, *_CLOSERS):
        text = text.replace(tag, " ")
    values: list[Any] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,;":
            pos += 1
        if pos >= len(text):
            return values
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return None
        values.append(value)


def parse_calls(text: str, names: set[str]) -> list[tuple[str, dict[str, Any]]] | None:
    """The calls ``text`` holds, or None when it is not made only of calls."""
    values = _json_values(text)
    if not values:
        return None
    calls: list[tuple[str, dict[str, Any]]] = []
    for value in values:
        for item in value if isinstance(value, list) else [value]:
            call = _as_call(item, names)
            if call is None:
                return None
            calls.append(call)
    return calls or None


class ToolCallParser:
    """Splits a stream of text into content and tool calls of known tools."""

    def __init__(self, names: set[str], forced: bool = False) -> None:
        self._names = names
        self._forced = forced
        self._held = ""
        self._calling = forced
        self._decided = forced
        self._next_index = 0

    def feed(self, text: str) -> str:
        """Return the text that is safe to show now."""
        if self._calling:
            self._held += text
            return ""
        buffer = self._held + text
        if not self._decided:
            stripped = buffer.lstrip()
            if not stripped:
                self._held = buffer
                return ""
            if stripped[0] in "{[" or stripped.startswith(TAGS):
                self._decided = self._calling = True
                self._held = buffer
                return ""
            if any(tag.startswith(stripped) for tag in TAGS):
                self._held = buffer
                return ""
            self._decided = True
        return self._scan_content(buffer)

    def _scan_content(self, buffer: str) -> str:
        """Ordinary text, watching for a tag that opens calls mid-reply."""
        for tag in TAGS:
            at = buffer.find(tag)
            if at >= 0:
                self._calling = True
                self._held = buffer[at:]
                return buffer[:at]
        keep = max(
            (n for tag in TAGS for n in range(1, len(tag)) if buffer.endswith(tag[:n])),
            default=0,
        )
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep]

    def finish(self) -> tuple[str, list[ToolCall]]:
        """At the end of generation: the remaining text and the parsed calls."""
        held, self._held = self._held, ""
        if not self._calling:
            return held, []
        calls = parse_calls(held, self._names)
        if calls is None:
            return held, []
        out = []
        for name, args in calls:
            out.append(
                ToolCall(id=new_call_id(), name=name, arguments=args, index=self._next_index)
            )
            self._next_index += 1
        return "", out
