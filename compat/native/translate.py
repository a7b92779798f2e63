"""Pure functions between Ollama's native shapes and the runtime's types."""

from __future__ import annotations

import functools
import json
import time
from typing import Any

from llamaport.compat.client import (
    ChatBody,
    DetokenizeBody,
    EmbedBody,
    EmbeddingsBody,
    GenerateBody,
    MessageBody,
    TokenizeBody,
)
from llamaport.compat.errors import ApiError
from llamaport.compat.streaming import CLOSED_FIELD
from llamaport.runtime.options import parse_keep_alive, validate_options
from llamaport.runtime.types import (
    Chunk,
    EmbedRequest,
    GenerateRequest,
    Message,
    Metrics,
    TokenLogprob,
    ToolCall,
    parse_arguments,
)

__all__ = [
    "chat_chunk",
    "chat_request",
    "embed_request",
    "embeddings_request",
    "generate_chunk",
    "generate_request",
    "now",
    "tokenize_request",
]

_THINK_LEVELS = ("high", "medium", "low", "max")
_THINK_CHOICES = '(must be "high", "medium", "low", "max", true, or false)'


def now() -> str:
    """RFC 3339 UTC to the nanosecond, as Go prints ``time.Time``. Every streamed
    chunk carries one: ``strftime`` per chunk was the proxy's costliest own call
    per token, so the seconds are formatted once each."""
    seconds, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
    return f"{_second(seconds)}.{nanoseconds:09d}Z"


@functools.lru_cache(maxsize=1)
def _second(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))


def _format(value: Any) -> str | dict[str, Any] | None:
    if value is None or value == "":
        return None
    if value == "json":
        return "json"
    if isinstance(value, dict):
        return value
    quoted = json.dumps(json.dumps(value))
    raise ApiError(400, f'invalid format: {quoted}; expected "json" or a valid JSON Schema object')


def _think(value: Any) -> bool | str | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value in ("true", "false"):
            return value == "true"
        if value in _THINK_LEVELS:
            return value
        raise ApiError(400, f'invalid think value: "{value}" {_THINK_CHOICES}')
    raise ApiError(400, f"think must be a boolean or string {_THINK_CHOICES}")


def _common(body: GenerateBody | ChatBody) -> dict[str, Any]:
    """Fields both inference routes share, validated once."""
    if body.top_logprobs is not None and not 0 <= body.top_logprobs <= 20:
        raise ApiError(400, "top_logprobs must be between 0 and 20")
    return {
        "model": body.model_name,
        "options": validate_options(body.options),
        "keep_alive": parse_keep_alive(body.keep_alive),
        "truncate": body.truncate is not False,
        "shift": body.shift is not False,
        "format": _format(body.format),
        "think": _think(body.think),
        "logprobs": bool(body.logprobs),
        "top_logprobs": body.top_logprobs or 0,
    }


def generate_request(body: GenerateBody) -> GenerateRequest:
    if body.raw and (body.template or body.system or body.context):
        raise ApiError(400, "raw mode does not support template, system, or context")
    return GenerateRequest(
        prompt=body.prompt or "",
        system=body.system,
        raw=bool(body.raw),
        context=body.context or None,
        suffix=body.suffix or None,
        template=body.template or None,
        images=list(body.images or []),
        **_common(body),
    )


def _tool_call(raw: dict[str, Any]) -> ToolCall:
    """A native history call, ``{"id"?, "function": {"index"?, "name", "arguments"}}``."""
    fn = raw.get("function")
    fn = fn if isinstance(fn, dict) else raw
    arguments = parse_arguments(fn.get("arguments"))
    if arguments is None:
        raise ApiError(400, "invalid tool call arguments: expected a JSON object")
    index = fn.get("index")
    return ToolCall(
        id=str(raw.get("id") or ""),
        name=str(fn.get("name") or ""),
        arguments=arguments,
        index=index if isinstance(index, int) else 0,
    )


def _message(m: MessageBody) -> Message:
    return Message(
        role=m.role,
        content=m.content or "",
        thinking=m.thinking,
        images=list(m.images or []),
        tool_calls=[_tool_call(c) for c in m.tool_calls or []],
        tool_name=m.tool_name,
        tool_call_id=m.tool_call_id,
    )


def chat_request(body: ChatBody) -> GenerateRequest:
    return GenerateRequest(
        messages=[_message(m) for m in body.messages or []],
        tools=list(body.tools or []),
        tool_choice=body.tool_choice,
        **_common(body),
    )


def tokenize_request(body: TokenizeBody | DetokenizeBody) -> GenerateRequest:
    messages = getattr(body, "messages", None)
    return GenerateRequest(
        model=body.model,
        prompt=getattr(body, "prompt", None) or "",
        messages=None if messages is None else [_message(m) for m in messages],
        tools=list(getattr(body, "tools", None) or []),
        options=validate_options(body.options),
        keep_alive=parse_keep_alive(body.keep_alive),
    )


def embed_request(body: EmbedBody) -> EmbedRequest:
    raw = body.input
    if raw is None or raw == "":
        inputs: list[str] = []
    elif isinstance(raw, str):
        inputs = [raw]
    elif isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        inputs = list(raw)
    else:
        raise ApiError(400, "invalid input type")
    return EmbedRequest(
        model=body.model,
        inputs=inputs,
        truncate=body.truncate is not False,
        dimensions=body.dimensions,
        options=validate_options(body.options),
        keep_alive=parse_keep_alive(body.keep_alive),
    )


def embeddings_request(body: EmbeddingsBody) -> EmbedRequest:
    return EmbedRequest(
        model=body.model,
        inputs=[body.prompt] if body.prompt else [],
        normalize=False,
        options=validate_options(body.options),
        keep_alive=parse_keep_alive(body.keep_alive),
    )


def _metrics(m: Metrics) -> dict[str, int]:
    return {
        "total_duration": m.total_duration,
        "load_duration": m.load_duration,
        "prompt_eval_count": m.prompt_eval_count,
        "prompt_eval_duration": m.prompt_eval_duration,
        "eval_count": m.eval_count,
        "eval_duration": m.eval_duration,
    }


def _final(chunk: Chunk, out: dict[str, Any]) -> dict[str, Any]:
    if not chunk.done:
        return out
    out["done_reason"] = chunk.done_reason
    if chunk.context:
        out["context"] = chunk.context
    if chunk.metrics is not None and chunk.done_reason not in ("load", "unload"):
        out.update(_metrics(chunk.metrics))
        out["prompt_cached_count"] = chunk.metrics.prompt_cached_count
    if chunk.truncated_messages:
        out["truncated_messages"] = chunk.truncated_messages
    if chunk.closed:
        out[CLOSED_FIELD] = True
    return out


def _logprob(entry: TokenLogprob) -> dict[str, Any]:
    """Ollama's ``{"token", "logprob", "bytes", "top_logprobs"}``; bytes as integers."""
    out: dict[str, Any] = {
        "token": entry.token,
        "logprob": entry.logprob,
        "bytes": list(entry.bytes),
    }
    if entry.top:
        out["top_logprobs"] = [_logprob(alt) for alt in entry.top]
    return out


def _extras(chunk: Chunk, out: dict[str, Any]) -> dict[str, Any]:
    if chunk.logprobs:
        out["logprobs"] = [_logprob(e) for e in chunk.logprobs]
    return _final(chunk, out)


def generate_chunk(chunk: Chunk, model: str) -> dict[str, Any]:
    out: dict[str, Any] = {"model": model, "created_at": now(), "response": chunk.text}
    if chunk.thinking:
        out["thinking"] = chunk.thinking
    out["done"] = chunk.done
    return _extras(chunk, out)


def chat_chunk(chunk: Chunk, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": chunk.text}
    if chunk.thinking:
        message["thinking"] = chunk.thinking
    if chunk.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "function": {"index": c.index, "name": c.name, "arguments": c.arguments}}
            for c in chunk.tool_calls
        ]
    out = {"model": model, "created_at": now(), "message": message, "done": chunk.done}
    return _extras(chunk, out)
