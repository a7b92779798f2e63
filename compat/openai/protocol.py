"""OpenAI's ``/v1`` request bodies, and decoding them with OpenAI-style error texts.

Bodies are lenient where OpenAI is: unknown fields (``user``, ``metadata``,
``logit_bias``...) are ignored. Fields that take several shapes (``content``,
``stop``, ``tool_choice``, ``input``, ``prompt``) stay ``Any`` here and are
checked in :mod:`.translate`, which can name the exact element at fault.
``options`` and ``keep_alive`` are llamaport extensions (``extra_body``).
Every decoding failure is a 400, never FastAPI's 422, so the SDK raises
``BadRequestError`` and does not retry.
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from llamaport.compat.body import load_json, param_path
from llamaport.compat.errors import ApiError

__all__ = [
    "ChatBody",
    "CompletionBody",
    "ConversationBody",
    "EmbeddingBody",
    "ItemsBody",
    "MessageBody",
    "ResponsesBody",
    "StreamOptions",
    "decode",
    "json_kind",
    "param_path",
]

M = TypeVar("M", bound=BaseModel)

_EXPECTED = {
    "string_type": "a string",
    "bool_type": "a boolean",
    "int_type": "an integer",
    "float_type": "a number",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def json_kind(value: Any) -> str:
    """How OpenAI names a JSON value's type in its errors ("an integer")."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _describe(error: ErrorDetails) -> ApiError:
    param = param_path(tuple(error["loc"]))
    if error["type"] == "missing":
        return ApiError(400, f"Missing required parameter: '{param}'.", param)
    expected = _EXPECTED.get(error["type"])
    if expected is None:
        return ApiError(400, f"Invalid value for '{param}': {error['msg']}", param)
    got = json_kind(error.get("input"))
    return ApiError(
        400, f"Invalid type for '{param}': expected {expected}, but got {got} instead.", param
    )


def decode(model: type[M], raw: bytes) -> M:
    """Parse a request body into ``model`` or raise a 400 :class:`ApiError`."""
    try:
        data = load_json(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(
            400,
            f"We could not parse the JSON body of your request ({exc}). "
            "The API expects a JSON object.",
        ) from None
    if not isinstance(data, dict):
        raise ApiError(
            400, f"The request body must be a JSON object, but got {json_kind(data)} instead."
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _describe(exc.errors()[0]) from None


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class StreamOptions(_Body):
    include_usage: bool | None = None


class MessageBody(_Body):
    role: str
    content: Any = None
    name: str | None = None
    tool_calls: list[Any] | None = None
    tool_call_id: str | None = None
    reasoning: str | None = None
    reasoning_content: str | None = None


class _Sampling(_Body):
    """Fields chat and legacy completions share."""

    model: str
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stop: Any = None
    n: int | None = None
    options: dict[str, Any] | None = None
    keep_alive: Any = None

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatBody(_Sampling):
    messages: list[MessageBody] | None = None
    max_completion_tokens: int | None = None
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    reasoning_effort: str | None = None
    reasoning: dict[str, Any] | None = None


class CompletionBody(_Sampling):
    prompt: Any = None
    suffix: str | None = None
    echo: bool | None = None
    logprobs: int | None = None
    best_of: int | None = None


class EmbeddingBody(_Body):
    model: str
    input: Any = None
    encoding_format: Any = None
    dimensions: int | None = None
    options: dict[str, Any] | None = None
    keep_alive: Any = None


class ConversationBody(_Body):
    """``POST /v1/conversations`` (create) and ``POST /v1/conversations/{id}`` (update)."""

    items: Any = None
    metadata: Any = None


class ItemsBody(_Body):
    items: Any = None


class ResponsesBody(_Body):
    """``POST /v1/responses``; ``input``, ``conversation`` and ``tool_choice`` take
    several shapes and are checked in :mod:`.responses_translate`."""

    model: str
    input: Any = None
    instructions: str | None = None
    conversation: Any = None
    previous_response_id: str | None = None
    store: bool | None = True
    stream: bool | None = False
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    metadata: dict[str, str] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    options: dict[str, Any] | None = None
    keep_alive: Any = None
