"""The native API's answers as the client returns them: typed, tolerant of what they do not know.

Unlike the request bodies, these are lenient: a newer server (or Ollama)
may add fields, so unknown fields are kept (``model_extra``) rather than
refused, and only what is typed here is checked. ``model_dump(
exclude_unset=True)`` gives back exactly the object the server sent.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ChatChunk",
    "ChatMessage",
    "EmbedResponse",
    "GenerateChunk",
    "Metrics",
    "ModelDetails",
    "ModelEntry",
    "ProgressLine",
    "PsResponse",
    "RunningModel",
    "ShowResponse",
    "TagsResponse",
    "ToolCall",
    "ToolCallFunction",
    "VersionResponse",
]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


class Metrics(_Answer):
    """What a final chunk (and ``/api/embed``) counts and times, in nanoseconds."""

    model: str = ""
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None

    @property
    def usage(self) -> tuple[int, int] | None:
        """(prompt tokens, generated tokens), when the server counted them."""
        if self.prompt_eval_count is None and self.eval_count is None:
            return None
        return self.prompt_eval_count or 0, self.eval_count or 0


class _Chunk(Metrics):
    created_at: str | None = None
    done: bool = False
    done_reason: str | None = None
    logprobs: list[dict[str, Any]] | None = None


class ToolCallFunction(_Answer):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    index: int | None = None


class ToolCall(_Answer):
    id: str | None = None
    function: ToolCallFunction


class ChatMessage(_Answer):
    role: str = "assistant"
    content: str = ""
    thinking: str | None = None
    images: list[str] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_name: str | None = None


class GenerateChunk(_Chunk):
    """One ``/api/generate`` line (the whole answer when not streaming)."""

    response: str = ""
    thinking: str | None = None
    context: list[int] | None = None


class ChatChunk(_Chunk):
    """One ``/api/chat`` line (the whole answer when not streaming)."""

    message: ChatMessage = Field(default_factory=ChatMessage)


class EmbedResponse(Metrics):
    embeddings: list[list[float]] = Field(default_factory=list)


class ModelDetails(_Answer):
    parent_model: str = ""
    format: str = ""
    family: str = ""
    families: list[str] | None = None
    parameter_size: str = ""
    quantization_level: str = ""


class ModelEntry(_Answer):
    """One model of ``/api/tags``."""

    name: str = ""
    model: str = ""
    modified_at: str | None = None
    size: int = 0
    digest: str = ""
    details: ModelDetails = Field(default_factory=ModelDetails)
    remote_model: str | None = None
    remote_host: str | None = None


class TagsResponse(_Answer):
    models: list[ModelEntry] = Field(default_factory=list)


class RunningModel(ModelEntry):
    """One loaded model of ``/api/ps``."""

    expires_at: str | None = None
    size_vram: int = 0
    context_length: int = 0


class PsResponse(_Answer):
    models: list[RunningModel] = Field(default_factory=list)


class ShowResponse(_Answer):
    license: str = ""
    modelfile: str = ""
    parameters: str = ""
    template: str = ""
    system: str = ""
    details: ModelDetails = Field(default_factory=ModelDetails)
    messages: list[dict[str, Any]] | None = None
    model_info: dict[str, Any] | None = None
    projector_info: dict[str, Any] | None = None
    capabilities: list[str] = Field(default_factory=list)
    tensors: list[dict[str, Any]] | None = None
    modified_at: str | None = None
    requires: str | None = None
    remote_model: str | None = None
    remote_host: str | None = None

    @property
    def context_length(self) -> int | None:
        """The trained context, from ``<architecture>.context_length``."""
        info = self.model_info or {}
        lengths = [v for k, v in info.items() if k.endswith(".context_length") and v]
        return int(lengths[0]) if lengths else None


class VersionResponse(_Answer):
    version: str = ""
    llamaport: str | None = None
    """Set by llamaport only: it enforces ``tool_choice`` and serves tools to every model."""


class ProgressLine(_Answer):
    """One line of ``/api/pull``, ``/api/push`` or ``/api/create``."""

    status: str = ""
    digest: str | None = None
    total: int | None = None
    completed: int | None = None
