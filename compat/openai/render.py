"""What the runtime yields, rendered in OpenAI's ``/v1`` shapes.

Whole responses and SSE chunk streams for chat and legacy completions,
embeddings and model objects. Random ids and clocks come from the caller, so
every function here is deterministic.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from typing import Any

from llamaport.compat.models_info import model_capabilities
from llamaport.compat.streaming import CLOSED_FIELD
from llamaport.runtime.reply import GeneratedReply
from llamaport.runtime.types import Chunk, EmbedResult, TokenLogprob, ToolCall, ToolCallDelta
from llamaport.storage.gguf_meta import GGUFInfo
from llamaport.storage.store import ModelRecord

__all__ = [
    "FINGERPRINT",
    "ChatStream",
    "CompletionStream",
    "ResponseHead",
    "chat_completion",
    "completion",
    "embedding_response",
    "model_object",
]

FINGERPRINT = "fp_llamaport"


@dataclass(frozen=True)
class ResponseHead:
    """What one response's bodies or chunks share: one id and ``created``, the
    model as asked, ``n`` choices, and what the request asked to include."""

    rid: str
    created: int
    model: str
    n: int = 1
    logprobs: bool = False
    include_usage: bool = False


def _head(rid: str, obj: str, created: int, model: str) -> dict[str, Any]:
    return {
        "id": rid,
        "object": obj,
        "created": created,
        "model": model,
        "system_fingerprint": FINGERPRINT,
    }


def _usage(finals: list[Chunk]) -> dict[str, Any]:
    """Token counts; with ``n`` choices the prompt is counted once."""
    metrics = [c.metrics for c in finals if c.metrics is not None]
    prompt = max((m.prompt_eval_count for m in metrics), default=0)
    completion_tokens = sum(m.eval_count for m in metrics)
    cached = max((m.prompt_cached_count for m in metrics), default=0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def _tool_call(call: ToolCall) -> dict[str, Any]:
    """OpenAI's tool call: ``arguments`` is a JSON *string* on ``/v1``."""
    return {
        "index": call.index,
        "id": call.id,
        "type": "function",
        "function": {
            "name": call.name,
            "arguments": json.dumps(call.arguments, ensure_ascii=False),
        },
    }


def _tool_deltas(deltas: list[ToolCallDelta]) -> list[dict[str, Any]]:
    """Streamed call pieces; consecutive pieces of one call share one entry."""
    out: list[dict[str, Any]] = []
    for d in deltas:
        if out and out[-1]["index"] == d.index and d.id is None:
            out[-1]["function"]["arguments"] += d.arguments
            continue
        entry: dict[str, Any] = {"index": d.index, "function": {"arguments": d.arguments}}
        if d.id is not None:
            entry.update(id=d.id, type="function")
            entry["function"] = {"name": d.name, "arguments": d.arguments}
        out.append(entry)
    return out


def _finish_reason(final: Chunk | None, tool_calls: bool) -> str:
    """``length`` when the token limit cut the answer (even inside a streamed call),
    else ``tool_calls`` once any call was sent, else ``stop``."""
    if final is not None and final.done_reason == "length":
        return "length"
    return "tool_calls" if tool_calls else "stop"


def _closed(choice: dict[str, Any], final: Chunk | None) -> dict[str, Any]:
    """Mark a finishing choice whose document the engine closed at the token limit."""
    if final is not None and final.closed:
        choice[CLOSED_FIELD] = True
    return choice


def _logprob(entry: TokenLogprob, top: bool = True) -> dict[str, Any]:
    """A chat ``logprobs.content`` item (``top_logprobs`` always a list)."""
    out: dict[str, Any] = {
        "token": entry.token,
        "logprob": entry.logprob,
        "bytes": list(entry.bytes),
    }
    if top:
        out["top_logprobs"] = [_logprob(alt, top=False) for alt in entry.top]
    return out


def _chat_logprobs(entries: list[TokenLogprob], wanted: bool) -> dict[str, Any] | None:
    if not wanted:
        return None
    return {"content": [_logprob(e) for e in entries], "refusal": None}


def _text_logprobs(
    entries: list[TokenLogprob], wanted: bool, offset: int = 0
) -> dict[str, Any] | None:
    """The legacy completions form: parallel lists, with each token's offset in the text."""
    if not wanted:
        return None
    offsets = []
    for e in entries:
        offsets.append(offset)
        offset += len(e.token)
    return {
        "tokens": [e.token for e in entries],
        "token_logprobs": [e.logprob for e in entries],
        "top_logprobs": [{alt.token: alt.logprob for alt in e.top} for e in entries],
        "text_offset": offsets,
    }


def _reasoning(delta: dict[str, Any], thinking: str) -> None:
    """Both names clients read: ``reasoning`` (Ollama) and ``reasoning_content`` (DeepSeek)."""
    if thinking:
        delta["reasoning"] = delta["reasoning_content"] = thinking


def _gather(pairs: list[tuple[int, Chunk]], n: int) -> list[GeneratedReply]:
    """One reply per choice from ``(choice index, chunk)`` pairs."""
    choices = [GeneratedReply() for _ in range(n)]
    for index, chunk in pairs:
        choices[index].add(chunk)
    return choices


def _finals(choices: list[GeneratedReply]) -> list[Chunk]:
    return [c.final for c in choices if c.final is not None]


def chat_completion(head: ResponseHead, pairs: list[tuple[int, Chunk]]) -> dict[str, Any]:
    """The ``stream: false`` body from every choice's chunks, tagged by index."""
    choices = _gather(pairs, head.n)
    out = _head(head.rid, "chat.completion", head.created, head.model)
    out["choices"] = []
    for index, choice in enumerate(choices):
        text = choice.text
        message: dict[str, Any] = {"role": "assistant", "content": text}
        _reasoning(message, choice.thinking)
        if choice.tool_calls:
            message["content"] = text or None
            message["tool_calls"] = [_tool_call(c) for c in choice.tool_calls]
        entry = {
            "index": index,
            "message": message,
            "finish_reason": _finish_reason(choice.final, bool(choice.tool_calls)),
            "logprobs": _chat_logprobs(choice.logprobs, head.logprobs),
        }
        out["choices"].append(_closed(entry, choice.final))
    out["usage"] = _usage(_finals(choices))
    return out


def completion(head: ResponseHead, pairs: list[tuple[int, Chunk]]) -> dict[str, Any]:
    """The ``stream: false`` body of ``/v1/completions``."""
    choices = _gather(pairs, head.n)
    out = _head(head.rid, "text_completion", head.created, head.model)
    out["choices"] = [
        _closed(
            {
                "text": c.text,
                "index": i,
                "finish_reason": _finish_reason(c.final, False),
                "logprobs": _text_logprobs(c.logprobs, head.logprobs),
            },
            c.final,
        )
        for i, c in enumerate(choices)
    ]
    out["usage"] = _usage(_finals(choices))
    return out


class _Stream:
    """Shared state of one streamed response: one id and ``created`` for every chunk."""

    object = ""

    def __init__(self, head: ResponseHead) -> None:
        self.head = head
        self._finals: dict[int, Chunk] = {}

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        out = _head(self.head.rid, self.object, self.head.created, self.head.model)
        out["choices"] = choices
        return out

    def tail(self) -> list[dict[str, Any]]:
        """After every choice finished: the ``choices: []`` usage chunk, if asked for."""
        if not self.head.include_usage:
            return []
        out = self._chunk([])
        out["usage"] = _usage([self._finals[i] for i in sorted(self._finals)])
        return [out]


class ChatStream(_Stream):
    """Renders ``(choice index, Chunk)`` pairs as ``chat.completion.chunk`` frames.

    The first delta of each choice carries ``role``. Reasoning goes out as
    ``reasoning`` and ``reasoning_content``. A tool call the runtime could
    follow as it was generated is streamed in pieces (id, type and name first,
    then argument fragments); any other call comes whole. Every tool-call
    entry has its ``index``. A choice ends with an empty-delta chunk holding
    ``finish_reason`` (``tool_calls`` once it sent any).
    """

    object = "chat.completion.chunk"

    def __init__(self, head: ResponseHead) -> None:
        super().__init__(head)
        self._started: set[int] = set()
        self._called: set[int] = set()

    def _choice(
        self,
        index: int,
        delta: dict[str, Any],
        finish: str | None,
        chunk: Chunk | None = None,
        final: Chunk | None = None,
    ) -> dict[str, Any]:
        entries = chunk.logprobs if chunk is not None else []
        logprobs = _chat_logprobs(entries, self.head.logprobs and chunk is not None)
        choice = {"index": index, "delta": delta, "finish_reason": finish, "logprobs": logprobs}
        return self._chunk([_closed(choice, final)])

    def render(self, item: tuple[int, Chunk]) -> list[dict[str, Any]]:
        index, chunk = item
        delta: dict[str, Any] = {}
        if index not in self._started:
            self._started.add(index)
            delta = {"role": "assistant", "content": chunk.text}
        elif chunk.text:
            delta["content"] = chunk.text
        _reasoning(delta, chunk.thinking)
        calls = _tool_deltas(chunk.tool_deltas)
        calls += [_tool_call(c) for c in chunk.tool_calls if not c.streamed]
        if calls or chunk.tool_calls:
            self._called.add(index)
        if calls:
            delta["tool_calls"] = calls
        frames = [self._choice(index, delta, None, chunk)] if delta or chunk.logprobs else []
        if chunk.done:
            self._finals[index] = chunk
            reason = _finish_reason(chunk, index in self._called)
            frames.append(self._choice(index, {}, reason, final=chunk))
        return frames


class CompletionStream(_Stream):
    """Renders ``(choice index, Chunk)`` pairs as streamed ``text_completion`` frames."""

    object = "text_completion"

    def __init__(self, head: ResponseHead) -> None:
        super().__init__(head)
        self._offsets: dict[int, int] = {}

    def _choice(self, index: int, chunk: Chunk, finish: str | None) -> dict[str, Any]:
        offset = self._offsets.get(index, 0)
        self._offsets[index] = offset + len(chunk.text)
        choice = {
            "text": chunk.text,
            "index": index,
            "finish_reason": finish,
            "logprobs": _text_logprobs(chunk.logprobs, self.head.logprobs, offset),
        }
        return self._chunk([_closed(choice, chunk if chunk.done else None)])

    def render(self, item: tuple[int, Chunk]) -> list[dict[str, Any]]:
        index, chunk = item
        if not chunk.done:
            return [self._choice(index, chunk, None)] if chunk.text or chunk.logprobs else []
        self._finals[index] = chunk
        return [self._choice(index, chunk, _finish_reason(chunk, False))]


def _vector(values: list[float], fmt: str) -> list[float] | str:
    """base64 is little-endian float32, what the SDK's ``np.frombuffer`` expects."""
    if fmt == "float":
        return values
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")


def embedding_response(model: str, result: EmbedResult, fmt: str) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "embedding": _vector(v, fmt), "index": i}
            for i, v in enumerate(result.embeddings)
        ],
        "model": model,
        "usage": {
            "prompt_tokens": result.prompt_eval_count,
            "total_tokens": result.prompt_eval_count,
        },
    }


def model_object(record: ModelRecord, info: GGUFInfo) -> dict[str, Any]:
    """OpenAI's model object plus llamaport's ``context_length`` and ``capabilities``."""
    return {
        "id": record.short_name,
        "object": "model",
        "created": int(record.modified_at.timestamp()),
        "owned_by": record.name.namespace,
        "context_length": info.context_length,
        "capabilities": model_capabilities(record, info),
    }
