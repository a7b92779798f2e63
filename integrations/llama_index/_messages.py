"""LlamaIndex chat messages to native ``/api/chat`` messages, and answers back."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ContentBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)

from llamaport.compat.client import ChatChunk, GenerateChunk
from llamaport.compat.client import ChatMessage as NativeMessage
from llamaport.integrations._native import parse_arguments

__all__ = ["assistant_message", "raw_with_usage", "to_native", "tool_call_blocks"]

_ROLES = {
    MessageRole.CHATBOT: "assistant",
    MessageRole.MODEL: "assistant",
    MessageRole.FUNCTION: "tool",
    MessageRole.DEVELOPER: "system",
}


def _tool_calls(message: ChatMessage) -> list[dict[str, Any]]:
    calls = [
        {
            "id": b.tool_call_id,
            "function": {"name": b.tool_name, "arguments": parse_arguments(b.tool_kwargs)},
        }
        for b in message.blocks
        if isinstance(b, ToolCallBlock)
    ]
    for call in message.additional_kwargs.get("tool_calls") or []:
        fn = call["function"] if isinstance(call, Mapping) else call.function
        name, arguments = (
            (fn["name"], fn.get("arguments"))
            if isinstance(fn, Mapping)
            else (fn.name, fn.arguments)
        )
        calls.append({"function": {"name": name, "arguments": parse_arguments(arguments)}})
    return calls


def _native(message: ChatMessage) -> dict[str, Any]:
    role = _ROLES.get(message.role, message.role.value)
    text = "".join(b.text for b in message.blocks if isinstance(b, TextBlock))
    native: dict[str, Any] = {"role": role, "content": text}
    images = [
        base64.b64encode(b.resolve_image().read()).decode()
        for b in message.blocks
        if isinstance(b, ImageBlock)
    ]
    if images:
        native["images"] = images
    thinking = "".join(b.content or "" for b in message.blocks if isinstance(b, ThinkingBlock))
    if thinking:
        native["thinking"] = thinking
    if calls := _tool_calls(message):
        native["tool_calls"] = calls
    if role == "tool":
        extra = message.additional_kwargs
        if extra.get("tool_call_id"):
            native["tool_call_id"] = extra["tool_call_id"]
        if name := extra.get("name") or extra.get("tool_name"):
            native["tool_name"] = name
    return native


def to_native(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    return [_native(m) for m in messages]


def tool_call_blocks(message: NativeMessage) -> list[ToolCallBlock]:
    return [
        ToolCallBlock(
            tool_call_id=call.id, tool_name=call.function.name, tool_kwargs=call.function.arguments
        )
        for call in message.tool_calls or []
    ]


def assistant_message(text: str, thinking: str, calls: list[ToolCallBlock]) -> ChatMessage:
    blocks: list[ContentBlock] = [ThinkingBlock(content=thinking)] if thinking else []
    blocks += [TextBlock(text=text), *calls]
    return ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks)


def raw_with_usage(part: ChatChunk | GenerateChunk) -> dict[str, Any]:
    """The native object, plus OpenAI-style ``usage`` as llama-index's callbacks read it."""
    raw = part.model_dump(exclude_unset=True)
    if counts := part.usage:
        raw["usage"] = {
            "prompt_tokens": counts[0],
            "completion_tokens": counts[1],
            "total_tokens": sum(counts),
        }
    return raw
