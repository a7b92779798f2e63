"""OpenAI's ``/v1`` requests lowered into the runtime's types.

Requests lower into :class:`GenerateRequest` / :class:`EmbedRequest`
(:mod:`.render` turns what the runtime yields back into OpenAI's shapes).
There is no generation, template, grammar or tool-parsing logic here:
``format``, ``tools`` and ``tool_choice`` are handed to the runtime as they
are, and the runtime refuses what a model cannot do.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from llamaport.compat.errors import ApiError
from llamaport.compat.openai.protocol import (
    ChatBody,
    CompletionBody,
    EmbeddingBody,
    MessageBody,
    json_kind,
)
from llamaport.runtime.options import parse_keep_alive, validate_options
from llamaport.runtime.types import (
    EmbedRequest,
    GenerateRequest,
    Message,
    ToolCall,
    image_payload,
    parse_arguments,
)

__all__ = [
    "chat_request",
    "chat_settings",
    "choice_count",
    "completion_request",
    "embed_request",
    "encoding_format",
    "fan_out",
]

MAX_CHOICES = 128
"""OpenAI's own limit on ``n``."""
MAX_TOP_LOGPROBS = 20
"""OpenAI's limit on ``top_logprobs``; the legacy ``logprobs`` gets the same."""

_ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}
_EFFORT: dict[str, bool | str] = {
    "none": False,
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "max": "max",
    "xhigh": "max",
    "ultra": "max",
}
_TOOL_CHOICES = ("none", "auto", "required")
_ENCODINGS = ("float", "base64")

# -- request fields ------------------------------------------------------------------


def _bad(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, param)


def _minimum(value: int | None, low: int, param: str) -> None:
    if value is not None and value < low:
        raise _bad(
            f"Invalid '{param}': integer below minimum value. "
            f"Expected a value >= {low}, but got {value} instead.",
            param,
        )


def choice_count(body: ChatBody | CompletionBody) -> int:
    """``n``: how many runtime generations one request fans out to."""
    n = 1 if body.n is None else body.n
    _minimum(n, 1, "n")
    if n > MAX_CHOICES:
        raise _bad(
            f"Invalid 'n': integer above maximum value. "
            f"Expected a value <= {MAX_CHOICES}, but got {n} instead.",
            "n",
        )
    return n


def _stop(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value] if value else None
    if not isinstance(value, list):
        raise _bad(
            f"Invalid type for 'stop': expected a string or an array of strings, "
            f"but got {json_kind(value)} instead.",
            "stop",
        )
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _bad(
                f"Invalid type for 'stop[{i}]': expected a string, "
                f"but got {json_kind(item)} instead.",
                f"stop[{i}]",
            )
    return [s for s in value if s] or None


def _options(body: ChatBody | CompletionBody, max_tokens: int | None) -> dict[str, Any]:
    """The runtime's ``options``: the ``options`` extension under the explicit fields.

    Absent sampling fields stay absent, so the Modelfile's parameters and the
    defaults apply (Ollama forces temperature and top_p to 1.0 instead).
    """
    _minimum(max_tokens, 1, "max_tokens")
    explicit = {
        "num_predict": max_tokens,
        "temperature": body.temperature,
        "top_p": body.top_p,
        "seed": body.seed,
        "frequency_penalty": body.frequency_penalty,
        "presence_penalty": body.presence_penalty,
        "stop": _stop(body.stop),
    }
    merged = dict(body.options or {})
    merged.update({k: v for k, v in explicit.items() if v is not None})
    return validate_options(merged)


def fan_out(req: GenerateRequest, n: int) -> list[GenerateRequest]:
    """``n`` independent requests; a given seed becomes seed, seed+1, ... per choice."""
    seed = req.options.get("seed")
    if n == 1:
        return [req]
    out = []
    for i in range(n):
        options = dict(req.options)
        if isinstance(seed, int):
            options["seed"] = seed + i
        out.append(dataclasses.replace(req, options=options))
    return out


def _response_format(value: dict[str, Any] | None) -> str | dict[str, Any] | None:
    if value is None:
        return None
    kind = value.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            param = "response_format.json_schema.schema"
            raise _bad(f"Missing required parameter: '{param}'.", param)
        return schema
    raise _bad(
        f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', and 'json_schema'.",
        "response_format.type",
    )


def _think(body: ChatBody) -> bool | str | None:
    effort = (body.reasoning or {}).get("effort") or body.reasoning_effort
    if effort is None:
        return None
    if not isinstance(effort, str) or effort not in _EFFORT:
        allowed = ", ".join(f'"{e}"' for e in _EFFORT)
        raise _bad(f'invalid reasoning value: "{effort}" (must be {allowed})', "reasoning_effort")
    return _EFFORT[effort]


def _tools(body: ChatBody) -> list[dict[str, Any]]:
    tools = list(body.tools or [])
    for i, tool in enumerate(tools):
        fn = tool.get("function")
        if tool.get("type") != "function" or not isinstance(fn, dict):
            raise _bad(f"Invalid value for 'tools[{i}]': only function tools are supported.")
        if not isinstance(fn.get("name"), str):
            raise _bad(
                f"Missing required parameter: 'tools[{i}].function.name'.",
                f"tools[{i}].function.name",
            )
    return tools


def _tool_choice(value: Any) -> str | dict[str, Any] | None:
    if value is None or (isinstance(value, str) and value in _TOOL_CHOICES):
        return value
    fn = value.get("function") if isinstance(value, dict) else None
    if isinstance(fn, dict) and value.get("type") == "function" and isinstance(fn.get("name"), str):
        return value  # type: ignore[no-any-return]
    raise _bad(
        "Invalid value for 'tool_choice': expected 'none', 'auto', 'required' or "
        '{"type": "function", "function": {"name": ...}}.',
        "tool_choice",
    )


def _top_logprobs(value: int | None, param: str) -> int:
    if value is not None and not 0 <= value <= MAX_TOP_LOGPROBS:
        raise _bad(
            f"Invalid '{param}': expected a value between 0 and {MAX_TOP_LOGPROBS}, "
            f"but got {value} instead.",
            param,
        )
    return value or 0


def _logprobs(body: ChatBody) -> dict[str, Any]:
    """``logprobs`` and ``top_logprobs``; the latter needs the former, as OpenAI says."""
    top = _top_logprobs(body.top_logprobs, "top_logprobs")
    if top and not body.logprobs:
        raise _bad(
            "Invalid value for 'top_logprobs': 'logprobs' must be true when "
            "'top_logprobs' is given.",
            "top_logprobs",
        )
    return {"logprobs": bool(body.logprobs), "top_logprobs": top}


# -- messages ------------------------------------------------------------------------


def _image(value: Any, param: str) -> str:
    """A data URI's base64 payload, or an http(s) URL as given.

    The runtime refuses images for models without vision; URLs are passed on
    so that refusal (or, later, fetching) happens in one place.
    """
    url = value.get("url") if isinstance(value, dict) else value
    if isinstance(url, str):
        payload = image_payload(url)
        if payload is not None:
            return payload
        if url.startswith(("http://", "https://")):
            return url
    raise _bad("invalid image input", param)


def _content(content: Any, param: str) -> tuple[str, list[str]]:
    """Text (parts joined by newlines) and images of one message."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise _bad(
            f"Invalid type for '{param}': expected a string or an array of content parts, "
            f"but got {json_kind(content)} instead.",
            param,
        )
    texts: list[str] = []
    images: list[str] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            images.append(_image(part.get("image_url"), f"{param}[{j}].image_url"))
        else:
            raise _bad(
                f"Invalid value: '{kind}'. Supported values are: 'text' and 'image_url'.",
                f"{param}[{j}].type",
            )
    return "\n".join(texts), images


def _tool_calls(calls: list[Any] | None, param: str) -> list[ToolCall]:
    """OpenAI history tool calls (``arguments`` a JSON string) -> runtime calls."""
    out = []
    for j, call in enumerate(calls or []):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise _bad("invalid tool call", f"{param}[{j}].function")
        arguments = parse_arguments(fn.get("arguments"))
        if arguments is None:
            raise _bad("invalid tool call arguments", f"{param}[{j}].function.arguments")
        call_id = call.get("id")
        out.append(
            ToolCall(
                id=call_id if isinstance(call_id, str) else "",
                name=fn["name"],
                arguments=arguments,
                index=j,
            )
        )
    return out


def _message(m: MessageBody, i: int) -> Message:
    role = _ROLES.get(m.role.lower())
    if role is None:
        raise _bad(
            f"Invalid value: '{m.role}'. Supported values are: 'system', 'developer', "
            "'user', 'assistant', and 'tool'.",
            f"messages[{i}].role",
        )
    text, images = _content(m.content, f"messages[{i}].content")
    calls = _tool_calls(m.tool_calls, f"messages[{i}].tool_calls") if role == "assistant" else []
    return Message(
        role=role,
        content=text,
        thinking=m.reasoning or m.reasoning_content,
        images=images,
        tool_calls=calls,
        tool_name=m.name if role == "tool" else None,
        tool_call_id=m.tool_call_id if role == "tool" else None,
    )


def _messages(raw: list[MessageBody] | None) -> list[Message]:
    if not raw:
        raise _bad("[] is too short - 'messages'", "messages")
    return [_message(m, i) for i, m in enumerate(raw)]


# -- requests ------------------------------------------------------------------------


def chat_request(body: ChatBody) -> GenerateRequest:
    """One runtime request for ``/v1/chat/completions`` (see :func:`fan_out` for ``n``)."""
    return dataclasses.replace(chat_settings(body), messages=_messages(body.messages))


def chat_settings(body: ChatBody) -> GenerateRequest:
    """Everything of a chat request but its messages (``/v1/responses`` brings its own)."""
    max_tokens = body.max_completion_tokens
    if max_tokens is None:
        max_tokens = body.max_tokens
    else:
        _minimum(max_tokens, 1, "max_completion_tokens")
    return GenerateRequest(
        model=body.model,
        messages=[],
        options=_options(body, max_tokens),
        keep_alive=parse_keep_alive(body.keep_alive),
        format=_response_format(body.response_format),
        think=_think(body),
        tools=_tools(body),
        tool_choice=_tool_choice(body.tool_choice),
        parallel_tool_calls=body.parallel_tool_calls is not False,
        **_logprobs(body),
    )


def _prompt(value: Any) -> str:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, str):
        return value
    raise _bad(
        "Invalid value for 'prompt': llamaport takes one prompt per request, "
        "a string or an array holding one string.",
        "prompt",
    )


def completion_request(body: CompletionBody) -> GenerateRequest:
    """``/v1/completions`` lowers like Ollama's ``/api/generate``: templated, not raw."""
    if body.echo:
        raise _bad("echo is not supported by this llamaport release yet", "echo")
    top = _top_logprobs(body.logprobs, "logprobs")
    return GenerateRequest(
        model=body.model,
        prompt=_prompt(body.prompt),
        logprobs=body.logprobs is not None,
        top_logprobs=top,
        suffix=body.suffix or None,
        options=_options(body, body.max_tokens),
        keep_alive=parse_keep_alive(body.keep_alive),
    )


def encoding_format(body: EmbeddingBody) -> str:
    value = body.encoding_format
    if value is None:
        return "float"
    if value not in _ENCODINGS:
        raise _bad(
            f"Invalid value for 'encoding_format' = {value}. "
            "Supported values: ['float', 'base64'].",
            "encoding_format",
        )
    return str(value)


def _inputs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(x, str) for x in value):
        return list(value)
    if isinstance(value, list) and value and all(isinstance(x, int | list) for x in value):
        raise _bad("invalid input: token arrays are not supported, send text", "input")
    raise _bad("invalid input", "input")


def embed_request(body: EmbeddingBody) -> EmbedRequest:
    """``/v1/embeddings``: normalised vectors, as Ollama's ``/api/embed``."""
    _minimum(body.dimensions, 1, "dimensions")
    return EmbedRequest(
        model=body.model,
        inputs=_inputs(body.input),
        dimensions=body.dimensions,
        normalize=True,
        options=validate_options(body.options),
        keep_alive=parse_keep_alive(body.keep_alive),
    )
