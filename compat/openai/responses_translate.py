"""Pure functions between OpenAI's Responses API and the runtime.

A ``/v1/responses`` body lowers into the same :class:`GenerateRequest` a chat
completion does: its settings go through :func:`chat_settings` (options,
function tools and ``tool_choice``, ``text.format`` as ``response_format``),
its items through :func:`~llamaport.compat.openai.items.to_messages`.
:class:`ResponseRun` holds one response's ids and builds its object;
:class:`ResponseStream` renders chunks as the API's named events, each with
a ``sequence_number`` that counts up from 0.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from llamaport.compat.errors import ApiError, status_and_message
from llamaport.compat.openai.items import JSONObject, output_items
from llamaport.compat.openai.protocol import ChatBody, ResponsesBody
from llamaport.compat.openai.translate import chat_settings
from llamaport.compat.streaming import CLOSED_FIELD
from llamaport.runtime.reply import GeneratedReply
from llamaport.runtime.types import Chunk, GenerateRequest
from llamaport.storage.conversations import new_id

__all__ = ["ResponseRun", "ResponseStream", "conversation_id", "settings"]


def _bad(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, param)


def conversation_id(body: ResponsesBody) -> str | None:
    """``conversation`` as an id (a string or ``{"id": ...}``); not with a previous response."""
    value = body.conversation
    if value is None:
        return None
    if body.previous_response_id is not None:
        raise _bad(
            "Mutually exclusive parameters: Ensure you are only providing one of: "
            "'previous_response_id' or 'conversation'.",
            "conversation",
        )
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not value:
        raise _bad("Invalid type for 'conversation': expected a string or an object with an id.")
    return value


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    """A Responses function tool (flat) in Chat Completions' shape (nested)."""
    if tool.get("type") != "function" or "function" in tool:
        return tool
    fn = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
    return {"type": "function", "function": fn}


def _tool_choice(value: Any) -> Any:
    if isinstance(value, dict) and value.get("type") == "function" and "function" not in value:
        return {"type": "function", "function": {"name": value.get("name")}}
    return value


def _format(text: dict[str, Any] | None) -> dict[str, Any] | None:
    """``text.format`` as ``response_format``: the same structured-output path."""
    fmt = (text or {}).get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        kind = fmt.get("type") if isinstance(fmt, dict) else fmt
        raise _bad(
            f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', "
            "and 'json_schema'.",
            "text.format.type",
        )
    if fmt["type"] != "json_schema":
        return {"type": fmt["type"]}
    if not isinstance(fmt.get("schema"), dict):
        raise _bad("Missing required parameter: 'text.format.schema'.", "text.format.schema")
    return {
        "type": "json_schema",
        "json_schema": {"name": fmt.get("name"), "schema": fmt["schema"]},
    }


def settings(body: ResponsesBody) -> GenerateRequest:
    """Everything but the messages, checked and lowered as a chat completion's are."""
    if body.max_output_tokens is not None and body.max_output_tokens < 1:
        raise _bad(
            "Invalid 'max_output_tokens': integer below minimum value. "
            f"Expected a value >= 1, but got {body.max_output_tokens} instead.",
            "max_output_tokens",
        )
    chat = ChatBody(
        model=body.model,
        max_completion_tokens=body.max_output_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        response_format=_format(body.text),
        tools=[_tool(t) for t in body.tools or []],
        tool_choice=_tool_choice(body.tool_choice),
        parallel_tool_calls=body.parallel_tool_calls,
        options=body.options,
        keep_alive=body.keep_alive,
    )
    return dataclasses.replace(chat_settings(chat), truncate=body.truncation != "disabled")


def _usage(final: Chunk | None) -> JSONObject | None:
    if final is None or final.metrics is None:
        return None
    m = final.metrics
    return {
        "input_tokens": m.prompt_eval_count,
        "input_tokens_details": {"cached_tokens": m.prompt_cached_count, "cache_write_tokens": 0},
        "output_tokens": m.eval_count,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": m.prompt_eval_count + m.eval_count,
    }


@dataclass
class ResponseRun:
    """One response: its ids, its request's echo, and (once finished) its output."""

    body: ResponsesBody
    created_at: int
    conversation: str | None
    id: str = field(default_factory=lambda: new_id("resp"))
    message_id: str = field(default_factory=lambda: new_id("msg"))
    output: list[JSONObject] | None = None
    final: JSONObject | None = None

    def obj(self, status: str, reply: GeneratedReply | None = None) -> JSONObject:
        """The response object; ``truncated_items`` (llamaport) counts items left
        out of the prompt because the history did not fit ``num_ctx``, and
        ``llamaport_closed`` marks a ``text.format`` document the engine closed at
        ``max_output_tokens``."""
        body = self.body
        fmt = (body.text or {}).get("format") or {"type": "text"}
        final = reply.final if reply is not None else None
        incomplete = None
        if status == "incomplete":
            cut = final is not None and final.done_reason == "length"
            incomplete = {"reason": "max_output_tokens" if cut else "interrupted"}
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "model": body.model,
            "output": self.output or [],
            "instructions": body.instructions,
            "previous_response_id": body.previous_response_id,
            "conversation": {"id": self.conversation} if self.conversation else None,
            "tools": body.tools or [],
            "tool_choice": body.tool_choice or "auto",
            "parallel_tool_calls": body.parallel_tool_calls is not False,
            "text": {"format": fmt},
            "temperature": body.temperature,
            "top_p": body.top_p,
            "max_output_tokens": body.max_output_tokens,
            "metadata": body.metadata or {},
            "store": body.store is not False,
            "truncation": body.truncation or "auto",
            "usage": _usage(final),
            "error": None,
            "incomplete_details": incomplete,
            "truncated_items": final.truncated_messages if final is not None else 0,
        } | ({CLOSED_FIELD: True} if final is not None and final.closed else {})

    def finish(self, reply: GeneratedReply) -> JSONObject:
        """The finished (or cut-off) response; its output items get their ids once."""
        self.output = output_items(reply, self.message_id)
        self.final = self.obj(reply.status, reply)
        return self.final

    def failed(self, exc: Exception) -> JSONObject:
        out = self.obj("failed")
        out["error"] = {"code": "server_error", "message": status_and_message(exc)[1]}
        return out


class ResponseStream:
    """Chunks as the Responses API's events, in OpenAI's order.

    ``response.created`` and ``response.in_progress`` open the stream; the
    message item and its ``output_text`` part open with the first text;
    function calls come whole once generation ended (the runtime parses them
    at the end); ``response.completed`` (or ``response.incomplete``) closes
    it, after the turn was stored.
    """

    def __init__(self, run: ResponseRun) -> None:
        self.run = run
        self.sequence = 0
        self.opened = False

    def _event(self, kind: str, **fields: Any) -> JSONObject:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def _message_events(self, item: JSONObject | None) -> list[JSONObject]:
        """The message item's opening (``item is None``) or closing events."""
        ids = {"item_id": self.run.message_id, "output_index": 0}
        if item is None:
            self.opened = True
            shell = {
                "id": self.run.message_id,
                "type": "message",
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            }
            empty = {"type": "output_text", "text": "", "annotations": []}
            return [
                self._event("response.output_item.added", item=shell, output_index=0),
                self._event("response.content_part.added", content_index=0, part=empty, **ids),
            ]
        part = item["content"][0]
        return [
            self._event(
                "response.output_text.done",
                content_index=0,
                text=part["text"],
                logprobs=[],
                **ids,
            ),
            self._event("response.content_part.done", content_index=0, part=part, **ids),
            self._event("response.output_item.done", item=item, output_index=0),
        ]

    def _call_events(self, item: JSONObject, index: int) -> list[JSONObject]:
        ids = {"item_id": item["id"], "output_index": index}
        shell = {**item, "status": "in_progress", "arguments": ""}
        args = item["arguments"]
        return [
            self._event("response.output_item.added", item=shell, output_index=index),
            self._event("response.function_call_arguments.delta", delta=args, **ids),
            self._event("response.function_call_arguments.done", arguments=args, **ids),
            self._event("response.output_item.done", item=item, output_index=index),
        ]

    def opening(self) -> list[JSONObject]:
        head = self.run.obj("in_progress")
        return [
            self._event("response.created", response=head),
            self._event("response.in_progress", response=head),
        ]

    def render(self, chunk: Chunk) -> list[JSONObject]:
        events = self.opening() if self.sequence == 0 else []
        if chunk.text:
            if not self.opened:
                events += self._message_events(None)
            ids = {"item_id": self.run.message_id, "output_index": 0, "content_index": 0}
            events.append(
                self._event("response.output_text.delta", delta=chunk.text, logprobs=[], **ids)
            )
        if not chunk.done:
            return events
        final = self.run.final
        assert final is not None, "the turn is stored before its last chunk is passed on"
        for index, item in enumerate(final["output"]):
            if item["type"] == "message":
                if not self.opened:
                    events += self._message_events(None)
                events += self._message_events(item)
            else:
                events += self._call_events(item, index)
        kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
        events.append(self._event(kind, response=final))
        return events

    def fail(self, exc: Exception) -> list[JSONObject]:
        return [self._event("response.failed", response=self.run.failed(exc))]
