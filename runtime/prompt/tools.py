"""Putting tools into the prompt, and forcing a call when ``tool_choice`` asks.

A template that knows tools (its Jinja source mentions them) gets them
natively, as Hugging Face templates expect. Any other model still gets tools:
llamaport adds a short preamble to the system message describing them and the
JSON shape of a call, and rewrites earlier calls and results in the history
into text the template can render. ``tool_choice`` ``"required"`` or a named
function becomes a JSON schema for grammar-constrained decoding, so even a
tiny model returns a well-formed call to an allowed function.
"""

from __future__ import annotations

import json
from typing import Any

from llamaport.runtime.errors import BadRequest
from llamaport.runtime.types import Message

__all__ = ["ToolPlan", "plan_tools"]

_PREAMBLE = (
    "You can use the following tools:\n{tools}\n\n"
    'To call a tool, reply with only a JSON object: {{"name": <tool name>, "arguments": '
    "<object of arguments>}}. To call several tools, reply with a JSON array of such "
    "objects. Otherwise, answer normally."
)


def _function(tool: dict[str, Any]) -> dict[str, Any]:
    fn = tool.get("function") if isinstance(tool.get("function"), dict) else tool
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise BadRequest("invalid tool: every tool needs a function with a name")
    return fn


def _forced_schema(functions: list[dict[str, Any]], choice: Any) -> dict[str, Any] | None:
    if choice in (None, "auto", "none"):
        return None
    if choice == "required":
        selected = functions
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        selected = [f for f in functions if f["name"] == name]
        if not selected:
            raise BadRequest(f"tool_choice names a function that is not in tools: {name!r}")
    else:
        raise BadRequest('tool_choice must be "none", "auto", "required" or a named function')
    variants = [
        {
            "type": "object",
            "properties": {
                "name": {"const": f["name"]},
                "arguments": f.get("parameters") or {"type": "object"},
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for f in selected
    ]
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


def _as_text(message: Message) -> Message:
    """An earlier call or result, rewritten for a template without tool support."""
    if message.role == "tool":
        who = message.tool_name or "the tool"
        return Message(role="user", content=f"Result from {who}: {message.content}")
    calls = [{"name": c.name, "arguments": c.arguments} for c in message.tool_calls]
    text = json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False)
    return Message(role="assistant", content=f"{message.content}\n{text}".strip())


def _with_preamble(messages: list[Message], functions: list[dict[str, Any]]) -> list[Message]:
    listing = "\n".join(json.dumps(f, ensure_ascii=False) for f in functions)
    preamble = _PREAMBLE.format(tools=listing)
    if messages and messages[0].role == "system":
        first = messages[0]
        system = Message(role="system", content=f"{first.content}\n\n{preamble}".strip())
        return [system, *messages[1:]]
    return [Message(role="system", content=preamble), *messages]


class ToolPlan:
    """What rendering and decoding need to know about a request's tools."""

    def __init__(
        self,
        messages: list[Message],
        template_tools: list[dict[str, Any]] | None,
        names: set[str],
        forced: dict[str, Any] | None,
    ) -> None:
        self.messages = messages
        self.template_tools = template_tools
        self.names = names
        """Tools whose calls the output parser accepts (empty: parse nothing)."""
        self.forced = forced
        """A JSON schema that forces one call, or None."""


def plan_tools(
    messages: list[Message],
    tools: list[dict[str, Any]],
    tool_choice: Any,
    native: bool,
) -> ToolPlan:
    """Prepare ``messages`` for a model whose template does (``native``) or does not know tools."""
    functions = [_function(t) for t in tools]
    offered = bool(functions) and tool_choice != "none"
    forced = _forced_schema(functions, tool_choice) if functions else None
    names = {f["name"] for f in functions} if offered else set()
    if native:
        return ToolPlan(messages, tools if offered else None, names, forced)
    history = [_as_text(m) if m.role == "tool" or m.tool_calls else m for m in messages]
    if offered:
        history = _with_preamble(history, functions)
    return ToolPlan(history, None, names, forced)
