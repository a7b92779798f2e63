"""Conversation items: OpenAI's item shapes, checked, and lowered into runtime messages.

Every stored turn, whichever face wrote it, is kept as OpenAI's items
(``message``, ``function_call``, ``function_call_output``, ``reasoning``), so
``/v1/conversations``, ``/v1/responses``, the native ``/api/chat`` extension
and the CLI read one history. This module is pure: it checks input items
(:func:`normalize_items`), lowers items into runtime :class:`Message`s
(:func:`to_messages`, one message per item, so a count of dropped messages is
a count of left-out items), turns native messages into items
(:func:`from_messages`) and a generated reply into output items
(:func:`output_items`).
"""

from __future__ import annotations

import json
from typing import Any

from llamaport.compat.errors import ApiError
from llamaport.runtime.reply import GeneratedReply
from llamaport.runtime.types import Message, ToolCall, image_payload, parse_arguments
from llamaport.storage.conversations import NewItem, new_id, new_item_id

__all__ = [
    "from_messages",
    "item_text",
    "normalize_items",
    "output_items",
    "to_messages",
    "turn_items",
]

JSONObject = dict[str, Any]

ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning")
_ROLES = ("user", "assistant", "system", "developer")
_TEXT_PARTS = ("input_text", "output_text", "text", "summary_text", "reasoning_text", "refusal")


def _bad(message: str, param: str) -> ApiError:
    return ApiError(400, message, param)


def _string(item: JSONObject, key: str, param: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise _bad(f"Missing required parameter: '{param}.{key}'.", f"{param}.{key}")
    return value


def _part(part: Any, role: str, param: str) -> JSONObject:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
        text_kind = "output_text" if role == "assistant" else "input_text"
        out: JSONObject = {"type": text_kind, "text": part["text"]}
        if text_kind == "output_text":
            out["annotations"] = part.get("annotations") or []
        return out
    if kind == "refusal" and isinstance(part.get("refusal"), str):
        return {"type": "refusal", "refusal": part["refusal"]}
    if kind == "input_image" and isinstance(part.get("image_url"), str):
        return {"type": "input_image", "image_url": part["image_url"], "detail": "auto"}
    raise _bad(
        f"Invalid value: '{kind}'. Supported values are: 'input_text', 'output_text', "
        "'refusal' and 'input_image' (with an image_url).",
        f"{param}.type",
    )


def _message(item: JSONObject, param: str) -> JSONObject:
    role = item.get("role")
    if role not in _ROLES:
        raise _bad(
            f"Invalid value: '{role}'. Supported values are: 'user', 'assistant', "
            "'system', and 'developer'.",
            f"{param}.role",
        )
    content = item.get("content")
    if isinstance(content, str):
        content = [{"type": "input_text", "text": content}]
    if not isinstance(content, list):
        raise _bad(
            f"Invalid type for '{param}.content': expected a string or an array of content parts.",
            f"{param}.content",
        )
    parts = [_part(p, role, f"{param}.content[{j}]") for j, p in enumerate(content)]
    return {"type": "message", "role": role, "content": parts}


def _function_call(item: JSONObject, param: str) -> JSONObject:
    arguments = _string(item, "arguments", param)
    if parse_arguments(arguments) is None:
        raise _bad(f"Invalid '{param}.arguments': expected a JSON object.", f"{param}.arguments")
    return {
        "type": "function_call",
        "call_id": _string(item, "call_id", param),
        "name": _string(item, "name", param),
        "arguments": arguments,
    }


def _function_call_output(item: JSONObject, param: str) -> JSONObject:
    output = item.get("output")
    if isinstance(output, list):
        output = item_text({"content": output})
    if not isinstance(output, str):
        raise _bad(f"Missing required parameter: '{param}.output'.", f"{param}.output")
    return {
        "type": "function_call_output",
        "call_id": _string(item, "call_id", param),
        "output": output,
    }


def _reasoning(item: JSONObject, param: str) -> JSONObject:
    summary = item.get("summary")
    if not isinstance(summary, list):
        raise _bad(f"Missing required parameter: '{param}.summary'.", f"{param}.summary")
    return {"type": "reasoning", "summary": summary, "content": item.get("content") or []}


_NORMALIZERS = {
    "message": _message,
    "function_call": _function_call,
    "function_call_output": _function_call_output,
    "reasoning": _reasoning,
}


def _stamped(item: JSONObject) -> JSONObject:
    """A fresh id (a client's own would collide when it resends items) and a status."""
    return {"id": new_item_id(item["type"]), **item, "status": "completed"}


def normalize_items(raw: Any, param: str) -> list[JSONObject]:
    """Input items (a string, one item, or a list) checked, stamped, in their stored shape.

    A message may leave ``type`` out (OpenAI's "easy input message"); any
    other type than :data:`ITEM_TYPES` is a 400 naming the item.
    """
    if isinstance(raw, str):
        return [_stamped(_message({"role": "user", "content": raw}, param))]
    if not isinstance(raw, list):
        raise _bad(
            f"Invalid type for '{param}': expected a string or an array of input items.", param
        )
    out = []
    for i, item in enumerate(raw):
        where = f"{param}[{i}]"
        if not isinstance(item, dict):
            raise _bad(f"Invalid type for '{where}': expected an object.", where)
        kind = item.get("type", "message")
        normalize = _NORMALIZERS.get(kind) if isinstance(kind, str) else None
        if normalize is None:
            raise _bad(
                f"Invalid value: '{kind}'. Supported values are: 'message', 'function_call', "
                "'function_call_output', and 'reasoning'.",
                f"{where}.type",
            )
        out.append(_stamped(normalize(item, where)))
    return out


def item_text(item: JSONObject) -> str:
    """The text of an item's content parts (or its output or arguments), joined by newlines."""
    if item.get("type") == "function_call":
        return f"{item.get('name')}({item.get('arguments')})"
    if item.get("type") == "function_call_output":
        return str(item.get("output", ""))
    texts = []
    for part in item.get("content") or item.get("summary") or []:
        if isinstance(part, dict):
            text = part.get("text", part.get("refusal"))
            if isinstance(text, str):
                texts.append(text)
    return "\n".join(texts)


def _image(url: str) -> str:
    """The base64 payload of a data URI; a URL as given (the runtime decides)."""
    payload = image_payload(url)
    return url if payload is None else payload


def to_messages(items: list[JSONObject]) -> list[Message]:
    """One runtime message per item; ``reasoning`` items become the next reply's thinking.

    A ``function_call_output`` keeps the tool ``name`` stored with it (native
    results); the runtime names the others after the call they answer.
    """
    thinking: list[str] = []
    out: list[Message] = []
    for item in items:
        kind = item.get("type", "message")
        if kind == "reasoning":
            thinking.append(item_text(item))
            continue
        if kind == "function_call":
            arguments = parse_arguments(item.get("arguments")) or {}
            call = ToolCall(str(item.get("call_id", "")), str(item.get("name", "")), arguments)
            out.append(Message(role="assistant", tool_calls=[call]))
        elif kind == "function_call_output":
            name = item.get("name")
            out.append(
                Message(
                    role="tool",
                    content=str(item.get("output", "")),
                    tool_call_id=str(item.get("call_id", "")),
                    tool_name=name if isinstance(name, str) else None,
                )
            )
        else:
            role = "system" if item.get("role") == "developer" else str(item.get("role"))
            parts = item.get("content") or []
            images = [_image(p["image_url"]) for p in parts if p.get("type") == "input_image"]
            out.append(Message(role=role, content=item_text(item), images=images))
        if thinking and out[-1].role == "assistant":
            out[-1].thinking = "\n".join(thinking)
            thinking = []
    return out


def from_messages(messages: list[Message]) -> list[JSONObject]:
    """Native chat messages as items: text messages, function calls and their outputs.

    A tool result keeps its ``tool_name`` (as the output's ``name``, a
    llamaport extension) and its call id; link the messages first
    (:func:`~llamaport.runtime.types.link_tool_results`) so a result that
    names only its tool gets the id of the call it answers.
    """
    out: list[JSONObject] = []
    for m in messages:
        if m.role == "tool":
            call_id = m.tool_call_id or new_id("call")
            output = {"type": "function_call_output", "call_id": call_id, "output": m.content}
            out.append(output if m.tool_name is None else {**output, "name": m.tool_name})
            continue
        if m.content or m.images or not m.tool_calls:
            text_kind = "output_text" if m.role == "assistant" else "input_text"
            parts: list[JSONObject] = [{"type": text_kind, "text": m.content}]
            if text_kind == "output_text":
                parts[0]["annotations"] = []
            parts += [
                {
                    "type": "input_image",
                    "image_url": f"data:image/*;base64,{image}",
                    "detail": "auto",
                }
                for image in m.images
            ]
            out.append({"type": "message", "role": m.role, "content": parts})
        for call in m.tool_calls:
            out.append(
                {
                    "type": "function_call",
                    "call_id": call.id or new_id("call"),
                    "name": call.name,
                    "arguments": json.dumps(call.arguments, ensure_ascii=False),
                }
            )
    return out


def output_items(reply: GeneratedReply, message_id: str) -> list[JSONObject]:
    """The reply as items: a message (unless only tool calls came), then function calls."""
    text = reply.text
    out: list[JSONObject] = []
    if text or not reply.tool_calls:
        out.append(
            {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "status": reply.status,
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        )
    for call in reply.tool_calls:
        out.append(
            {
                "id": new_item_id("function_call"),
                "type": "function_call",
                "status": reply.status,
                "call_id": call.id,
                "name": call.name,
                "arguments": json.dumps(call.arguments, ensure_ascii=False),
            }
        )
    return out


def turn_items(
    inputs: list[JSONObject], outputs: list[JSONObject], model: str, reply: GeneratedReply
) -> list[NewItem]:
    """A turn to store: its input items, then its output items with the token counts."""
    metrics = reply.final.metrics if reply.final is not None else None
    prompt = metrics.prompt_eval_count if metrics else 0
    generated = metrics.eval_count if metrics else 0
    return [NewItem(item, model=model) for item in inputs] + [
        NewItem(item, model=model, input_tokens=prompt, output_tokens=generated) for item in outputs
    ]
