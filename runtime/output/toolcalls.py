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

Where a call has certainly begun (a call tag, or a call forced by grammar),
:class:`CallStreamer` also reports it as it is generated: the call's id and
name once the name is complete, then fragments of its arguments' JSON text,
OpenAI's streamed form.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from typing import Any

from llamaport.runtime.types import ToolCall, ToolCallDelta

__all__ = ["TAGS", "CallStreamer", "ToolCallParser", "new_call_id", "parse_calls"]

TAGS = ("<tool_call>", "[TOOL_CALLS]", "<|python_tag|>")
_CLOSERS = ("</tool_call>",)
_CALL_HEAD = re.compile(
    r"[\s,;\[\]}]*(?:</tool_call>)?[\s,;\[]*(?:<tool_call>|\[TOOL_CALLS\]|<\|python_tag\|>)?"
    r'[\s\[]*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"(?:arguments|parameters)"\s*:\s*\{'
)
"""The start of a call whose name comes before its arguments object."""
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


class CallStreamer:
    """Follows call text as it grows and reports :class:`ToolCallDelta`s.

    A call is reported once its name is complete and known and its arguments
    object has begun; the arguments' text then goes out as it arrives, up to
    the brace that closes it. Calls written another way (arguments first, a
    string of arguments) are not streamed; they come whole at the end.
    """

    def __init__(self, names: set[str]) -> None:
        self._names = names
        self._text = ""
        self._pos = 0
        self._in_args = False
        self._depth = 0
        self._in_string = self._escaped = False
        self._stopped = False
        self.ids: list[str] = []
        """The id of every call reported so far, by index."""
        self.complete = 0
        """How many reported calls had their whole arguments reported."""

    def feed(self, text: str) -> list[ToolCallDelta]:
        self._text += text
        out: list[ToolCallDelta] = []
        while not self._stopped:
            if not self._in_args:
                head = _CALL_HEAD.match(self._text, self._pos)
                if head is None:
                    break
                try:
                    name = json.loads(f'"{head.group(1)}"')
                except json.JSONDecodeError:
                    name = None
                if name not in self._names:
                    self._stopped = True
                    break
                self.ids.append(new_call_id())
                out.append(ToolCallDelta(len(self.ids) - 1, "", self.ids[-1], name))
                self._pos = head.end() - 1
                self._in_args, self._depth = True, 0
            start = self._pos
            self._scan()
            if self._pos > start:
                out.append(ToolCallDelta(len(self.ids) - 1, self._text[start : self._pos]))
            if self._in_args:
                break
            self.complete += 1
        return out

    def _scan(self) -> None:
        """Advance through the arguments object; leave it when its brace closes."""
        text = self._text
        while self._pos < len(text):
            c = text[self._pos]
            self._pos += 1
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif c == "\\":
                    self._escaped = True
                elif c == '"':
                    self._in_string = False
            elif c == '"':
                self._in_string = True
            elif c in "{[":
                self._depth += 1
            elif c in "}]":
                self._depth -= 1
                if self._depth == 0:
                    self._in_args = False
                    return


class ToolCallParser:
    """Splits a stream of text into content and tool calls of known tools.

    :attr:`deltas` collects the streamed form of calls that have certainly
    begun; the caller takes them after each :meth:`feed`.
    """

    def __init__(self, names: set[str], forced: bool = False) -> None:
        self._names = names
        self._forced = forced
        self._held = ""
        self._calling = forced
        self._decided = forced
        self._next_index = 0
        self._streamer = CallStreamer(names) if forced else None
        self.deltas: list[ToolCallDelta] = []

    def _hold(self, text: str, tagged: bool = False) -> None:
        """Keep call text; stream it once a call has certainly begun."""
        self._held += text
        if self._streamer is None and tagged:
            self._streamer = CallStreamer(self._names)
            text = self._held
        if self._streamer is not None:
            self.deltas.extend(self._streamer.feed(text))

    def feed(self, text: str) -> str:
        """Return the text that is safe to show now."""
        if self._calling:
            self._hold(text)
            return ""
        buffer = self._held + text
        if not self._decided:
            stripped = buffer.lstrip()
            if not stripped:
                self._held = buffer
                return ""
            if stripped[0] in "{[" or stripped.startswith(TAGS):
                self._decided = self._calling = True
                self._held = ""
                self._hold(buffer, tagged=stripped.startswith(TAGS))
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
                self._held = ""
                self._hold(buffer[at:], tagged=True)
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
        streamer = self._streamer
        ids = streamer.ids if streamer is not None else []
        complete = streamer.complete if streamer is not None else 0
        out = []
        for name, args in calls:
            index = self._next_index
            call_id = ids[index] if index < len(ids) else new_call_id()
            out.append(ToolCall(call_id, name, args, index, streamed=index < complete))
            self._next_index += 1
        return "", out
