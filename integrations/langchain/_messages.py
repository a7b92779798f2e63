"""LangChain messages to native ``/api/chat`` messages, and native chunks back.

Unlike langchain-ollama, which goes through ollama-python's ``Message`` model
and loses them, ``tool_call_id``, the tool's name (as ``tool_name``) and
call ids reach the server, so the chat template can pair results with calls.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import uuid4

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.messages.utils import message_chunk_to_message
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk

from llamaport.compat.client import ChatChunk
from llamaport.integrations.langchain._base import PROVIDER

__all__ = ["chunk_from_native", "message_from_native", "to_native"]

_SKIPPED_BLOCKS = {"tool_call", "tool_use", "reasoning", "thinking", "tool_call_chunk"}


def _image(block: Mapping[str, Any]) -> str:
    """Base64 image data from an ``image_url`` (data URL) or v1 ``image`` block."""
    if block.get("type") == "image_url":
        url = block["image_url"]
        url = url.get("url", "") if isinstance(url, dict) else url
    else:
        url = block.get("base64") or block.get("data") or block.get("url") or ""
    if url.startswith("data:"):
        return str(url.split(",", 1)[1])
    if url.startswith(("http://", "https://")):
        raise ValueError("image URLs are not fetched; pass the image as base64 or a data URL")
    return str(url)


def _content(content: str | list[Any]) -> tuple[str, list[str]]:
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[str] = []
    for block in content:
        if isinstance(block, str):
            texts.append(block)
        elif block.get("type") == "text":
            texts.append(block["text"])
        elif block.get("type") in ("image_url", "image"):
            images.append(_image(block))
        elif block.get("type") not in _SKIPPED_BLOCKS:
            raise ValueError(f"unsupported content block type: {block.get('type')!r}")
    return "\n".join(texts), images


def _role(message: BaseMessage) -> str:
    if isinstance(message, HumanMessage):
        return "user"
    if isinstance(message, AIMessage):
        return "assistant"
    if isinstance(message, SystemMessage):
        return "system"
    if isinstance(message, ToolMessage):
        return "tool"
    if isinstance(message, ChatMessage):
        return message.role
    raise ValueError(f"unsupported message type: {type(message).__name__}")


def to_native(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    names = {
        call["id"]: call["name"]
        for m in messages
        if isinstance(m, AIMessage)
        for call in m.tool_calls
        if call.get("id")
    }
    out: list[dict[str, Any]] = []
    for message in messages:
        text, images = _content(message.content)
        native: dict[str, Any] = {"role": _role(message), "content": text}
        if images:
            native["images"] = images
        if isinstance(message, AIMessage):
            if message.tool_calls:
                native["tool_calls"] = [
                    {"id": c["id"], "function": {"name": c["name"], "arguments": c["args"]}}
                    for c in message.tool_calls
                ]
            if thinking := message.additional_kwargs.get("reasoning_content"):
                native["thinking"] = thinking
        if isinstance(message, ToolMessage):
            native["tool_call_id"] = message.tool_call_id
            if name := message.name or names.get(message.tool_call_id):
                native["tool_name"] = name
        out.append(native)
    return out


def _metadata(final: ChatChunk) -> dict[str, Any]:
    meta = final.model_dump(exclude_unset=True, exclude={"message"})
    meta["model_name"] = final.model
    meta["model_provider"] = PROVIDER
    return meta


def usage_metadata(final: ChatChunk) -> UsageMetadata | None:
    if final.usage is None:
        return None
    prompt, generated = final.usage
    return UsageMetadata(
        input_tokens=prompt, output_tokens=generated, total_tokens=prompt + generated
    )


def chunk_from_native(part: ChatChunk) -> ChatGenerationChunk:
    """One ``/api/chat`` NDJSON object; the ``done`` one carries usage and metadata."""
    message = part.message
    calls = [
        tool_call_chunk(
            name=call.function.name,
            args=json.dumps(call.function.arguments),
            id=call.id or f"call_{uuid4().hex[:12]}",
            index=i if call.function.index is None else call.function.index,
        )
        for i, call in enumerate(message.tool_calls or [])
    ]
    extra = {"reasoning_content": message.thinking} if message.thinking else {}
    chunk = AIMessageChunk(content=message.content, tool_call_chunks=calls, additional_kwargs=extra)
    info = None
    if part.done:
        chunk.usage_metadata = usage_metadata(part)
        chunk.response_metadata = _metadata(part)
        info = chunk.response_metadata
    return ChatGenerationChunk(message=chunk, generation_info=info)


def message_from_native(part: ChatChunk) -> ChatGeneration:
    """A whole ``stream: false`` answer."""
    chunk = chunk_from_native(part)
    return ChatGeneration(
        message=message_chunk_to_message(chunk.message), generation_info=chunk.generation_info
    )
