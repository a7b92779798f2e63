"""The client for any OpenAI-compatible ``/v1`` server, through the ``openai`` SDK.

vLLM, SGLang, llama-server, llama-cpp-python's server, LiteLLM, a llamaport
``/v1`` or OpenAI itself. The SDK's own retries are off: the router retries.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator
from typing import Any

import httpx
import openai
from openai import AsyncOpenAI

from llamaport.runtime.proxy.config import UpstreamConfig
from llamaport.runtime.proxy.errors import (
    UpstreamBadReply,
    UpstreamBroken,
    UpstreamError,
    UpstreamRejected,
)
from llamaport.runtime.proxy.upstream import (
    dropped_warning,
    error_text,
    scrub,
    status_error,
    transport_error,
)
from llamaport.runtime.types import (
    Chunk,
    DoneReason,
    EmbedRequest,
    EmbedResult,
    GenerateRequest,
    Message,
    Metrics,
    ToolCall,
)

__all__ = ["OpenAIUpstream", "to_openai_message"]

_SAME_OPTIONS = ("temperature", "top_p", "stop", "seed", "presence_penalty", "frequency_penalty")


def to_openai_message(message: Message) -> dict[str, Any]:
    """One stored or requested turn in Chat Completions' shape (the one conversion)."""
    out: dict[str, Any] = {"role": message.role}
    if message.images:
        parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}]
        for image in message.images:
            url = image if image.startswith("data:") else f"data:image/png;base64,{image}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
        out["content"] = parts
    else:
        out["content"] = message.content
    if message.tool_calls:
        calls = message.template_view()["tool_calls"]
        out["tool_calls"] = [
            {
                "id": call.get("id") or f"call_{i}",
                "type": "function",
                "function": {
                    "name": call["function"]["name"],
                    "arguments": json.dumps(call["function"]["arguments"]),
                },
            }
            for i, call in enumerate(calls)
        ]
    if message.role == "tool" and message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    return out


def _response_format(fmt: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(fmt, dict):
        return {"type": "json_schema", "json_schema": {"name": "format", "schema": fmt}}
    return {"type": "json_object"}


def _params(req: GenerateRequest, model: str) -> tuple[dict[str, Any], list[str]]:
    """The SDK call's keyword arguments, and the options this kind cannot take."""
    params: dict[str, Any] = {"model": model, "stream": True}
    dropped = []
    for key, value in req.options.items():
        if key in _SAME_OPTIONS:
            params[key] = value
        elif key == "num_predict":
            if int(value) > 0:
                params["max_tokens"] = int(value)
        else:
            dropped.append(key)
    if req.format:
        params["response_format"] = _response_format(req.format)
    if req.tools:
        params["tools"] = req.tools
        if req.tool_choice is not None:
            params["tool_choice"] = req.tool_choice
    if isinstance(req.think, str):
        params["reasoning_effort"] = req.think
    elif req.think is not None:
        dropped.append("think")
    if req.logprobs:
        dropped.append("logprobs")
    return params, dropped


def _chat_messages(req: GenerateRequest) -> list[dict[str, Any]]:
    if req.messages is not None:
        return [to_openai_message(m) for m in req.messages]
    head = [Message(role="system", content=req.system)] if req.system else []
    turns = [*head, Message(role="user", content=req.prompt, images=list(req.images))]
    return [to_openai_message(m) for m in turns]


class _Calls:
    """Streamed tool-call deltas joined into whole calls."""

    def __init__(self) -> None:
        self.parts: dict[int, dict[str, str]] = {}

    def add(self, deltas: Any) -> None:
        for delta in deltas or []:
            part = self.parts.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            part["id"] = delta.id or part["id"]
            if delta.function is not None:
                part["name"] += delta.function.name or ""
                part["arguments"] += delta.function.arguments or ""

    def calls(self) -> list[ToolCall]:
        out = []
        for index, part in sorted(self.parts.items()):
            arguments = json.loads(part["arguments"] or "{}")
            if not isinstance(arguments, dict):
                raise TypeError("tool call arguments are not an object")
            out.append(ToolCall(part["id"] or f"call_{index}", part["name"], arguments, index))
        return out


class OpenAIUpstream:
    """An upstream of kind ``openai``."""

    kind = "openai"

    def __init__(self, config: UpstreamConfig, api_key: str | None) -> None:
        self.name = config.name
        self._key = api_key
        self._sdk = AsyncOpenAI(
            base_url=config.base_url,
            api_key=api_key or "none",
            timeout=config.timeout_s,
            max_retries=0,
        )

    def _error(self, exc: Exception) -> UpstreamError | UpstreamRejected:
        if isinstance(exc, openai.APIStatusError):
            return status_error(
                self.name, exc.status_code, error_text(exc.response.content, self._key)
            )
        if isinstance(exc, openai.APITimeoutError):
            return transport_error(self.name, httpx.ReadTimeout(scrub(str(exc), self._key)))
        if isinstance(exc, httpx.TransportError):
            return transport_error(self.name, exc)
        cause = exc.__cause__ if isinstance(exc.__cause__, httpx.TransportError) else None
        return transport_error(self.name, cause or httpx.ConnectError(scrub(str(exc), self._key)))

    async def generate(self, req: GenerateRequest, model: str) -> AsyncGenerator[Chunk, None]:
        params, dropped = _params(req, model)
        warnings = dropped_warning(self.name, self.kind, dropped)
        completions = req.messages is None and bool(req.raw or req.suffix or req.context)
        sent = False
        start = time.perf_counter_ns()
        first_ns = start
        try:
            if completions:
                params.pop("tools", None)
                params.pop("tool_choice", None)
                if req.suffix:
                    params["suffix"] = req.suffix
                params["prompt"] = req.prompt
                create: Any = self._sdk.completions.create  # params is a mapping: untyped
            else:
                params["messages"] = _chat_messages(req)
                create = self._sdk.chat.completions.create
            stream: Any = await create(stream_options={"include_usage": True}, **params)
            calls, finish, usage = _Calls(), None, None
            async with stream:
                async for event in stream:
                    chunk, finish, usage = self._read(event, calls, finish, usage, completions)
                    if chunk is None:
                        continue
                    if not sent:
                        first_ns = time.perf_counter_ns()
                    chunk.warnings, warnings = warnings, []
                    sent = True
                    yield chunk
            tail = calls.calls()
        except (openai.APIError, httpx.TransportError) as exc:
            error = self._error(exc)
            if sent and isinstance(error, UpstreamError):
                raise UpstreamBroken(self.name, error.detail) from None
            raise error from None
        except (AttributeError, TypeError, ValueError, KeyError):
            raise UpstreamBadReply(self.name, "a stream event has the wrong shape") from None
        if tail:
            yield Chunk(tool_calls=tail, warnings=warnings)
            warnings = []
        end = time.perf_counter_ns()
        metrics = Metrics(
            prompt_eval_count=int(getattr(usage, "prompt_tokens", 0) or 0),
            prompt_eval_duration=first_ns - start,
            eval_count=int(getattr(usage, "completion_tokens", 0) or 0),
            eval_duration=end - first_ns,
        )
        reason: DoneReason = "length" if finish == "length" else "stop"
        yield Chunk(done=True, done_reason=reason, metrics=metrics, warnings=warnings)

    @staticmethod
    def _read(
        event: Any, calls: _Calls, finish: str | None, usage: Any, completions: bool
    ) -> tuple[Chunk | None, str | None, Any]:
        """One SSE event: the text it carries (or None), the finish reason, the usage."""
        usage = event.usage or usage
        if not event.choices:
            return None, finish, usage
        choice = event.choices[0]
        finish = choice.finish_reason or finish
        if completions:
            text, thinking = choice.text or "", ""
        else:
            delta = choice.delta
            calls.add(delta.tool_calls)
            text = delta.content or ""
            thinking = str(
                getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None) or ""
            )
        if not isinstance(text, str):
            raise TypeError("content is not text")
        if not text and not thinking:
            return None, finish, usage
        return Chunk(text=text, thinking=thinking), finish, usage

    async def embed(self, req: EmbedRequest, model: str) -> EmbedResult:
        start = time.perf_counter_ns()
        dimensions = req.dimensions or openai.omit
        try:
            result = await self._sdk.embeddings.create(
                model=model, input=req.inputs, dimensions=dimensions
            )
            vectors = [[float(v) for v in item.embedding] for item in result.data]
            count = int(getattr(result.usage, "prompt_tokens", 0) or 0)
        except (openai.APIError, httpx.TransportError) as exc:
            raise self._error(exc) from None
        except (AttributeError, TypeError, ValueError):
            raise UpstreamBadReply(self.name, "the embeddings have the wrong shape") from None
        return EmbedResult(vectors, count, time.perf_counter_ns() - start, 0)

    async def models(self) -> list[str]:
        try:
            page = await self._sdk.models.list(timeout=5)
            return [str(m.id) for m in page.data]
        except (openai.APIError, httpx.TransportError) as exc:
            raise self._error(exc) from None
        except (AttributeError, TypeError, ValueError):
            raise UpstreamBadReply(self.name, "the model list has the wrong shape") from None

    async def aclose(self) -> None:
        await self._sdk.close()
