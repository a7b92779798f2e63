"""The native API's request bodies, shared by the server and the client (Ollama's ``api/types.go``).

They are plain pydantic models and import nothing of the server: the server
decodes request bodies into them (``compat/native/protocol.py`` adds
Ollama's Go-style error texts), and the client validates what it sends with
them. Types are strict, as Go's ``encoding/json`` is: a number where a
string belongs is an error; unknown fields are ignored. ``options`` stays a
raw mapping; the server's ``runtime/options.py`` types it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, populate_by_name=True)


class _Named(_Body):
    """A body that names its model as ``model`` or, as older clients do, ``name``."""

    model: str = ""
    name: str | None = None

    @property
    def model_name(self) -> str:
        return self.model or self.name or ""


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


class _Inference(_Named):
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


class RegistryBody(_Named):
    """``/api/pull`` and ``/api/push``; ``username``/``password`` are ignored, as in Ollama."""

    insecure: bool | None = False
    stream: bool | None = True


class ShowBody(_Named):
    verbose: bool | None = False
    system: str | None = None
    options: dict[str, Any] | None = Field(default=None)


class CopyBody(_Body):
    source: str = ""
    destination: str = ""


class DeleteBody(_Named):
    pass


class CreateBody(_Named):
    """Ollama's ``api.CreateRequest``, plus the ``modelfile`` text that clients
    older than Ollama 0.5.5 send instead of the structured fields."""

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
