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

from llamaport.integrations._native import parse_arguments, usage
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


def _metadata(final: Mapping[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in final.items() if k not in ("message", "response", "context")}
    meta["model_name"] = final.get("model")
    meta["model_provider"] = PROVIDER
    return meta


def usage_metadata(final: Mapping[str, Any]) -> UsageMetadata | None:
    counts = usage(final)
    if counts is None:
        return None
    return UsageMetadata(input_tokens=counts[0], output_tokens=counts[1], total_tokens=sum(counts))


def chunk_from_native(part: Mapping[str, Any]) -> ChatGenerationChunk:
    """One ``/api/chat`` NDJSON object; the ``done`` one carries usage and metadata."""
    message = part.get("message") or {}
    calls = [
        tool_call_chunk(
            name=call["function"]["name"],
            args=json.dumps(parse_arguments(call["function"].get("arguments"))),
            id=call.get("id") or f"call_{uuid4().hex[:12]}",
            index=call["function"].get("index", i),
        )
        for i, call in enumerate(message.get("tool_calls") or [])
    ]
    extra = {"reasoning_content": message["thinking"]} if message.get("thinking") else {}
    chunk = AIMessageChunk(
        content=message.get("content") or "", tool_call_chunks=calls, additional_kwargs=extra
    )
    info = None
    if part.get("done"):
        chunk.usage_metadata = usage_metadata(part)
        chunk.response_metadata = _metadata(part)
        info = chunk.response_metadata
    return ChatGenerationChunk(message=chunk, generation_info=info)


def message_from_native(part: Mapping[str, Any]) -> ChatGeneration:
    """A whole ``stream: false`` answer."""
    chunk = chunk_from_native(part)
    return ChatGeneration(
        message=message_chunk_to_message(chunk.message), generation_info=chunk.generation_info
    )
