"""Render a Modelfile TEMPLATE (Go ``text/template``) the way Ollama does.

Ollama executes a template in one of three modes (``template/template.go``):

* ``suffix`` given (fill-in-the-middle): once, with ``.Prompt`` and ``.Suffix``;
* the template mentions ``.Messages``: once, with ``.System`` (every system
  message, joined by a blank line), ``.Messages`` (consecutive messages of one
  role merged, tool results kept apart) and ``.Tools``;
* otherwise (``.System``/``.Prompt``/``.Response`` templates): once per turn,
  and the last turn cut right after ``{{ .Response }}`` so generation starts
  there (a trailing assistant message is the reply's prefill).

A template that names neither ``.Messages`` nor ``.Response`` gets
``{{ .Response }}`` appended, as in Ollama. User text never becomes control
tokens (:mod:`._spans`). ``.Think``, ``.ThinkLevel`` and ``.IsThinkSet``
follow the request's ``think`` as Ollama sets them (``true`` is level
``medium``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from functools import lru_cache
from typing import Any

from llamaport.runtime.engine.wire import Segment
from llamaport.runtime.errors import BadRequest
from llamaport.runtime.prompt._goexec import (
    FUNCTIONS,
    LAZY,
    JSONMap,
    JSONText,
    Struct,
    TemplateExecError,
    execute,
)
from llamaport.runtime.prompt._goparse import (
    Action,
    Branch,
    Chain,
    Cmd,
    Field,
    Node,
    Pipe,
    TemplateSyntaxError,
    Variable,
    parse,
)
from llamaport.runtime.prompt._spans import Wrap, user_segments
from llamaport.runtime.types import Message, ToolCall

__all__ = ["GoTemplateRenderer", "check_template"]

_RESPONSE = Action(Pipe((Cmd((Field(("Response",)),)),)))


@lru_cache(maxsize=32)
def _compile(source: str) -> tuple[Node, ...]:
    try:
        return parse(source, frozenset(FUNCTIONS) | LAZY)
    except TemplateSyntaxError as exc:
        raise BadRequest(f"template error: {exc}") from None


def check_template(source: str) -> None:
    """Raise ``BadRequest("template error: ...")`` unless ``source`` parses."""
    _compile(source)


# -- the tree: which variables it names, and the cut after .Response --------------


def _pipe_names(pipe: Pipe) -> Iterable[str]:
    for cmd in pipe.cmds:
        for arg in cmd.args:
            if isinstance(arg, Field | Variable):
                yield from arg.names
            elif isinstance(arg, Chain):
                yield from arg.names
                yield from _pipe_names(arg.pipe)
            elif isinstance(arg, Pipe):
                yield from _pipe_names(arg)


def _names(nodes: Iterable[Node]) -> set[str]:
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, Action):
            found.update(n.lower() for n in _pipe_names(node.pipe))
        elif isinstance(node, Branch):
            found.update(n.lower() for n in _pipe_names(node.pipe))
            found |= _names(node.body) | _names(node.otherwise)
    return found


class _Cut:
    """Ollama's ``deleteNode``: keep everything up to the first ``.Response`` field."""

    def __init__(self) -> None:
        self.done = False

    def pipe(self, pipe: Pipe) -> Pipe | None:
        cmds = []
        for cmd in pipe.cmds:
            args: list[Any] = []
            for arg in cmd.args:
                if self.done:
                    continue
                kept = self.pipe(arg) if isinstance(arg, Pipe) else arg
                if isinstance(arg, Field) and "Response" in arg.names:
                    self.done = True
                if kept is not None:
                    args.append(kept)
            if args:
                cmds.append(Cmd(tuple(args)))
        return replace(pipe, cmds=tuple(cmds)) if cmds else None

    def nodes(self, nodes: Iterable[Node]) -> tuple[Node, ...]:
        out: list[Node] = []
        for node in nodes:
            if self.done:
                break
            if isinstance(node, Action):
                pipe = self.pipe(node.pipe)
                if pipe is not None:
                    out.append(replace(node, pipe=pipe))
            elif isinstance(node, Branch):
                body = self.nodes(node.body)
                out.append(replace(node, body=body, otherwise=self.nodes(node.otherwise)))
            else:
                out.append(node)
        return tuple(out)


# -- values the template sees -----------------------------------------------------


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _tool_call(call: ToolCall) -> Struct:
    function = Struct(
        [
            ("Index", "Index", call.index, False),
            ("Name", "Name", call.name, False),
            ("Arguments", "Arguments", JSONMap(call.arguments), False),
        ]
    )
    return Struct([("ID", "ID", call.id, False), ("Function", "Function", function, False)])


def _message(message: Message, content: str) -> Struct:
    fields = [
        ("Role", message.role),
        ("Content", content),
        ("Thinking", message.thinking or ""),
        ("Images", list(message.images)),
        ("ToolCalls", [_tool_call(c) for c in message.tool_calls]),
        ("ToolName", message.tool_name or ""),
        ("ToolCallID", message.tool_call_id or ""),
    ]
    return Struct([(name, name, value, False) for name, value in fields])


def _property(raw: Any) -> Struct:
    prop = _object(raw)
    kind = prop.get("type")
    kinds = [kind] if isinstance(kind, str) else list(kind or [])
    nested = prop.get("properties")
    fields: list[tuple[str, str, Any, bool]] = [
        ("AnyOf", "anyOf", [_property(p) for p in prop.get("anyOf") or []], True),
        ("Type", "type", kinds[0] if len(kinds) == 1 else kinds, True),
        ("Items", "items", prop.get("items"), True),
        ("Description", "description", prop.get("description", ""), True),
        ("Enum", "enum", prop.get("enum") or [], True),
        ("Properties", "properties", _properties(nested) if nested else None, True),
        ("Required", "required", prop.get("required") or [], True),
    ]
    return Struct(fields)


def _properties(raw: Any) -> JSONMap:
    return JSONMap({k: _property(v) for k, v in (raw or {}).items()})


def _tool(tool: dict[str, Any]) -> Struct:
    fn = _object(tool.get("function"))
    params = _object(fn.get("parameters"))
    parameters = Struct(
        [
            ("Type", "type", params.get("type", ""), False),
            ("Defs", "$defs", params.get("$defs"), True),
            ("Items", "items", params.get("items"), True),
            ("Required", "required", params.get("required") or [], True),
            ("Properties", "properties", _properties(params.get("properties")), False),
        ]
    )
    function = Struct(
        [
            ("Name", "name", fn.get("name", ""), False),
            ("Description", "description", fn.get("description", ""), False),
            ("Parameters", "parameters", parameters, False),
        ]
    )
    return Struct(
        [
            ("Type", "type", tool.get("type", "function"), False),
            ("Items", "items", tool.get("items"), True),
            ("Function", "function", function, False),
        ]
    )


def _collate(messages: list[Message], wrap: Wrap) -> tuple[str, list[Struct]]:
    """All system text, and the messages with same-role neighbours merged (not tools)."""
    system = "\n\n".join(wrap(m.content) for m in messages if m.role == "system")
    merged: list[tuple[Message, str]] = []
    for message in messages:
        content = wrap(message.content)
        if merged and merged[-1][0].role == message.role and message.role != "tool":
            first, text = merged[-1]
            merged[-1] = (first, f"{text}\n\n{content}")
        else:
            merged.append((message, content))
    return system, [_message(m, text) for m, text in merged]


class GoTemplateRenderer:
    """Renders chat with a Modelfile TEMPLATE; raises ``BadRequest`` for a bad template."""

    def __init__(self, source: str) -> None:
        self.source = source
        nodes = _compile(source)
        names = _names(nodes)
        self._messages_mode = "messages" in names
        if not self._messages_mode and "response" not in names:
            nodes = (*nodes, _RESPONSE)
        self._nodes = nodes
        self._last_turn = _Cut().nodes(nodes)

    def _execute(self, nodes: tuple[Node, ...], data: dict[str, Any]) -> str:
        try:
            return execute(nodes, data)
        except TemplateExecError as exc:
            raise BadRequest(f"template error: {exc}") from None

    def render(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]] | None = None,
        think: bool | str | None = None,
    ) -> list[Segment]:
        """``think`` reaches the template as ``.Think``, ``.ThinkLevel`` and ``.IsThinkSet``."""
        level = think if isinstance(think, str) else "medium" if think else ""
        thinking = {"Think": bool(think), "ThinkLevel": level, "IsThinkSet": think is not None}
        if self._messages_mode:
            return user_segments(lambda wrap: self._with_messages(messages, tools, wrap, thinking))
        return user_segments(lambda wrap: self._per_turn(messages, wrap, thinking))

    def render_infill(self, prompt: str, suffix: str) -> list[Segment]:
        """Fill-in-the-middle: the template with ``.Prompt`` and ``.Suffix`` only."""
        return user_segments(
            lambda wrap: self._execute(
                self._nodes, {"Prompt": wrap(prompt), "Suffix": wrap(suffix), "Response": ""}
            )
        )

    def _with_messages(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]] | None,
        wrap: Wrap,
        thinking: dict[str, Any],
    ) -> str:
        system, collated = _collate(messages, wrap)
        data = {
            "System": system,
            "Messages": collated,
            "Tools": JSONText(_tool(t) for t in tools) if tools else None,
            "Response": "",
            **thinking,
        }
        return self._execute(self._nodes, data)

    def _per_turn(self, messages: list[Message], wrap: Wrap, thinking: dict[str, Any]) -> str:
        """Ollama's legacy loop: one execution per (system, prompt, response) turn."""
        _, collated = _collate(messages, wrap)
        out: list[str] = []
        turn: dict[str, Any] = {"System": "", "Prompt": "", "Response": ""}
        for message in collated:
            role, content = message.get("Role"), message.get("Content")
            pending = turn["Prompt"] or turn["Response"]
            if (role == "system" and pending) or (role == "user" and turn["Response"]):
                out.append(self._execute(self._nodes, {**turn, **thinking}))
                turn = {"System": "", "Prompt": "", "Response": ""}
            if role == "system":
                turn["System"] = content
            elif role == "user":
                turn["Prompt"] = content
            elif role == "assistant":
                turn["Response"] = content
        out.append(self._execute(self._last_turn, {**turn, **thinking}))
        return "".join(out)
