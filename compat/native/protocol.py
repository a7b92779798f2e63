"""Ollama's native request bodies, and decoding them with Ollama's error texts.

Types are strict, as Go's ``encoding/json`` is: a number where a string
belongs is an error, unknown fields are ignored. ``options`` stays a raw
mapping here; :mod:`llamaport.runtime.options` types it.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from llamaport.compat.body import load_json
from llamaport.compat.errors import ApiError

__all__ = [
    "ChatBody",
    "CopyBody",
    "CreateBody",
    "DeleteBody",
    "DetokenizeBody",
    "EmbedBody",
    "EmbeddingsBody",
    "GenerateBody",
    "MessageBody",
    "RegistryBody",
    "ShowBody",
    "TokenizeBody",
    "decode",
]

M = TypeVar("M", bound=BaseModel)

_GO_TYPES = {
    "string_type": "string",
    "bool_type": "bool",
    "int_type": "int",
    "float_type": "float64",
    "list_type": "array",
    "dict_type": "object",
    "model_type": "object",
}


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _describe(error: ErrorDetails, model: type[BaseModel]) -> str:
    """Go's wording, e.g. ``json: cannot unmarshal number into Go struct field
    GenerateRequest.prompt of type string``, so clients see Ollama's text."""
    field = ".".join(str(p) for p in error["loc"] if not isinstance(p, int))
    struct = model.__name__.replace("Body", "Request")
    want = _GO_TYPES.get(error["type"])
    if want is None:
        return f"invalid value for field {field!r}: {error['msg']}"
    got = _json_kind(error.get("input"))
    return f"json: cannot unmarshal {got} into Go struct field {struct}.{field} of type {want}"


_KEY_EXPECTED = "Expecting property name enclosed in double quotes"
_GO_CONTEXT = {
    "Expecting value": "looking for beginning of value",
    _KEY_EXPECTED: "looking for beginning of object key string",
    "Expecting ':' delimiter": "after object key",
    "Extra data": "after top-level value",
}


def _innermost(doc: str) -> str:
    """``{`` or ``[``: the container open at the end of ``doc`` (strings skipped)."""
    stack: list[str] = []
    in_string = escaped = False
    for c in doc:
        if in_string:
            escaped, in_string = (False, True) if escaped else (c == "\\", c != '"')
        elif c == '"':
            in_string = True
        elif c in "{[":
            stack.append(c)
        elif c in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def _go_syntax_error(exc: json.JSONDecodeError) -> str:
    """Go's ``encoding/json`` wording for a syntax error, which clients may match on."""
    if exc.pos >= len(exc.doc) or exc.msg.startswith("Unterminated"):
        return "unexpected EOF"
    char = exc.doc[exc.pos]
    quoted = "'\\''" if char == "'" else repr(char) if not char.isprintable() else f"'{char}'"
    if exc.msg == "Expecting ',' delimiter":
        where = (
            "after object key:value pair"
            if _innermost(exc.doc[: exc.pos]) == "{"
            else ("after array element")
        )
    else:
        where = _GO_CONTEXT.get(exc.msg, "in string literal")
    return f"invalid character {quoted} {where}"


def decode(model: type[M], raw: bytes) -> M:
    """Parse a request body into ``model`` or raise a 400 :class:`ApiError`."""
    if not raw.strip():
        raise ApiError(400, "missing request body")
    try:
        data = load_json(raw)
    except json.JSONDecodeError as exc:
        raise ApiError(400, _go_syntax_error(exc)) from None
    except UnicodeDecodeError:
        raise ApiError(400, "invalid character in request body: not UTF-8") from None
    if not isinstance(data, dict):
        raise ApiError(
            400, f"json: cannot unmarshal {_json_kind(data)} into Go value of type api.Request"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, _describe(exc.errors()[0], model)) from None


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, populate_by_name=True)


class MessageBody(_Body):
    role: str
    content: str | None = None
    thinking: str | None = None
    images: list[str] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None

    @field_validator("role")
    @classmethod
    def _lower(cls, role: str) -> str:
        return role.lower()


class _Inference(_Body):
    model: str = ""
    name: str | None = None
    stream: bool | None = True
    format: Any = None
    options: dict[str, Any] | None = None
    keep_alive: Any = None
    think: Any = None
    truncate: bool | None = None
    shift: bool | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    debug_render_only: bool | None = Field(default=None, alias="_debug_render_only")
    """Ollama's debug flag: answer the rendered prompt instead of running the model."""

    @property
    def model_name(self) -> str:
        return self.model or self.name or ""


class GenerateBody(_Inference):
    prompt: str | None = ""
    suffix: str | None = None
    system: str | None = None
    template: str | None = None
    context: list[int] | None = None
    raw: bool | None = False
    images: list[str] | None = None


class ChatBody(_Inference):
    messages: list[MessageBody] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    """A llamaport extension: Ollama has no ``tool_choice`` on ``/api/chat``."""
    conversation: str | None = None
    """A llamaport extension: a stored conversation's id (see ``compat/history.py``)."""


class EmbedBody(_Body):
    model: str = ""
    input: Any = None
    truncate: bool | None = True
    dimensions: int | None = None
    options: dict[str, Any] | None = None
    keep_alive: Any = None


class EmbeddingsBody(_Body):
    model: str = ""
    prompt: str | None = ""
    options: dict[str, Any] | None = None
    keep_alive: Any = None


class TokenizeBody(_Body):
    """llamaport extension: ``prompt`` (plain text) or ``messages`` (a chat prompt)."""

    model: str = ""
    prompt: str | None = None
    messages: list[MessageBody] | None = None
    tools: list[dict[str, Any]] | None = None
    options: dict[str, Any] | None = None
    keep_alive: Any = None


class DetokenizeBody(_Body):
    model: str = ""
    tokens: list[int] = Field(default_factory=list)
    options: dict[str, Any] | None = None
    keep_alive: Any = None


class RegistryBody(_Body):
    """``/api/pull`` and ``/api/push``; ``username``/``password`` are ignored, as in Ollama."""

    model: str = ""
    name: str | None = None
    insecure: bool | None = False
    stream: bool | None = True

    @property
    def model_name(self) -> str:
        return self.model or self.name or ""


class ShowBody(_Body):
    model: str = ""
    name: str | None = None
    verbose: bool | None = False
    system: str | None = None
    options: dict[str, Any] | None = Field(default=None)

    @property
    def model_name(self) -> str:
        return self.model or self.name or ""


class CopyBody(_Body):
    source: str = ""
    destination: str = ""


class DeleteBody(_Body):
    model: str = ""
    name: str | None = None

    @property
    def model_name(self) -> str:
        return self.model or self.name or ""


class CreateBody(_Body):
    """Ollama's ``api.CreateRequest``, plus the ``modelfile`` text that clients
    older than Ollama 0.5.5 send instead of the structured fields."""

    model: str = ""
    name: str | None = None
    from_: str | None = Field(default=None, alias="from")
    files: dict[str, str] | None = None
    adapters: dict[str, str] | None = None
    template: str | None = None
    system: str | None = None
    license: str | list[str] | None = None
    parameters: dict[str, Any] | None = None
    messages: list[MessageBody] | None = None
    quantize: str | None = None
    quantization: str | None = None
    requires: str | None = None
    modelfile: str | None = None
    stream: bool | None = True

    @property
    def model_name(self) -> str:
        return self.model or self.name or ""
