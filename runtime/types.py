"""The one internal request and response model every face lowers into.

Native ``/api/*`` routes (and later ``/v1``) translate their wire shapes into
:class:`GenerateRequest` / :class:`EmbedRequest` and read back :class:`Chunk`
and :class:`EmbedResult`. Nothing here knows about HTTP.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from llamaport.runtime.engine.wire import TokenLogprob

__all__ = [
    "Chunk",
    "DoneReason",
    "EmbedRequest",
    "EmbedResult",
    "GenerateRequest",
    "Message",
    "Metrics",
    "TokenLogprob",
    "ToolCall",
    "ToolCallDelta",
    "image_payload",
    "link_tool_results",
    "parse_arguments",
]

DoneReason = Literal["stop", "length", "load", "unload"]


@dataclass
class ToolCall:
    """A parsed tool call; ``arguments`` is always a JSON object."""

    id: str
    name: str
    arguments: dict[str, Any]
    index: int = 0
    streamed: bool = False
    """Its ``ToolCallDelta``s already carried all of it (id, name and every argument)."""

    def template_view(self) -> dict[str, Any]:
        """The call in the shape Hugging Face templates read (no ``id`` when it has none)."""
        fn = {"name": self.name, "arguments": self.arguments}
        view: dict[str, Any] = {"type": "function", "function": fn}
        return {"id": self.id, **view} if self.id else view


def parse_arguments(value: Any) -> dict[str, Any] | None:
    """Tool-call arguments as a JSON object: given as one, or as its JSON text.

    Blank text is ``{}``. ``None`` when the value is neither an object nor an
    object's text; the face that received it names the field in its 400.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError:
            return None
    return value if isinstance(value, dict) else None


def image_payload(url: str) -> str | None:
    """The base64 payload of a ``data:...;base64,`` URI, or ``None`` for anything else."""
    if url.startswith("data:") and ";base64," in url:
        return url.split(";base64,", 1)[1]
    return None


@dataclass
class Message:
    """One chat turn, already validated by the face that received it."""

    role: str
    content: str = ""
    thinking: str | None = None
    images: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_name: str | None = None
    tool_call_id: str | None = None

    def template_view(self) -> dict[str, Any]:
        """The mapping a chat template sees (HF/Jinja conventions)."""
        view: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.thinking:
            view["thinking"] = view["reasoning_content"] = self.thinking
        if self.tool_calls:
            view["tool_calls"] = [c.template_view() for c in self.tool_calls]
        if self.tool_name:
            view["tool_name"] = self.tool_name
            view["name"] = self.tool_name
        if self.tool_call_id:
            view["tool_call_id"] = self.tool_call_id
        return view


def link_tool_results(messages: list[Message]) -> list[Message]:
    """Each tool result tied to the call it answers, the one place call ids meet names.

    A result that names its call id gets that call's tool name; one that names
    only a tool (Ollama's native ``tool_name``) gets the id of the earliest
    unanswered call of that tool; one that names neither answers the earliest
    unanswered call. Results already complete, or with no call to answer, are
    left as they are. Returns new messages; the input is not changed.
    """
    names: dict[str, str] = {}
    open_calls: list[ToolCall] = []
    out: list[Message] = []
    for m in messages:
        if m.role == "assistant":
            names.update({c.id: c.name for c in m.tool_calls if c.id})
            open_calls += [c for c in m.tool_calls if c.id]
        elif m.role == "tool":
            m = _linked(m, names, open_calls)
        out.append(m)
    return out


def _linked(result: Message, names: dict[str, str], open_calls: list[ToolCall]) -> Message:
    call_id, name = result.tool_call_id, result.tool_name
    if call_id is None:
        call = next((c for c in open_calls if name in (None, c.name)), None)
        call_id = call.id if call is not None else None
    name = name or names.get(call_id or "")
    open_calls[:] = [c for c in open_calls if c.id != call_id]
    return replace(result, tool_call_id=call_id, tool_name=name)


@dataclass
class GenerateRequest:
    """A completion (``messages is None``) or chat (``messages`` given) request.

    ``options`` holds the request's raw option mapping; the service merges it
    over the model's Modelfile parameters and the defaults, so precedence stays
    in one place (:mod:`llamaport.runtime.options`).
    """

    model: str
    prompt: str = ""
    messages: list[Message] | None = None
    system: str | None = None
    raw: bool = False
    context: list[int] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    keep_alive: float | None = None
    truncate: bool = True
    shift: bool = True
    suffix: str | None = None
    template: str | None = None
    images: list[str] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    format: str | dict[str, Any] | None = None
    think: bool | str | None = None
    """``None`` (the model's default: on when it can think), a bool, or a level."""
    logprobs: bool = False
    top_logprobs: int = 0
    tool_choice: str | dict[str, Any] | None = None
    """``None``/``"auto"``, ``"none"``, ``"required"``, or ``{"type": "function",
    "function": {"name": ...}}``; anything but auto/none forces a call by grammar."""
    parallel_tool_calls: bool = True
    affinity: str | None = None
    """A stored conversation's key (its id, or a response chain's first item), so the
    proxy can keep the conversation's turns on the upstream that served the last one."""
    stored: bool = False
    """The turn belongs to a stored conversation: its KV state is kept on disk
    (``LLAMAPORT_CACHE_DISK``) and read back by its next turn, even after a restart."""

    @property
    def is_chat(self) -> bool:
        return self.messages is not None

    @property
    def task(self) -> str:
        """The capability it needs, in Ollama's refusal ("does not support chat")."""
        return "chat" if self.is_chat else "generate"

    @property
    def is_load_only(self) -> bool:
        """An empty prompt (or empty message list) only loads or unloads the model."""
        if self.messages is not None:
            return not self.messages
        return not self.prompt and not self.context


@dataclass
class Metrics:
    """Ollama's timing fields, all in nanoseconds."""

    total_duration: int = 0
    load_duration: int = 0
    prompt_eval_count: int = 0
    prompt_eval_duration: int = 0
    eval_count: int = 0
    eval_duration: int = 0
    prompt_cached_count: int = 0


@dataclass
class ToolCallDelta:
    """A piece of a tool call while it is generated (OpenAI's streamed form).

    The first delta of a call has its ``id`` and ``name``; ``arguments`` are
    fragments of the arguments' JSON text that join to the whole object.
    """

    index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None


@dataclass
class Chunk:
    """A piece of generated text; the last one has ``done`` set and the metrics."""

    text: str = ""
    thinking: str = ""
    """Reasoning the model wrote inside its thinking tags (never part of ``text``)."""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_deltas: list[ToolCallDelta] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    """Log-probabilities of the tokens generated since the previous chunk."""
    done: bool = False
    done_reason: DoneReason | None = None
    metrics: Metrics | None = None
    context: list[int] | None = None
    truncated_messages: int = 0
    closed: bool = False
    """The token limit was reached inside a ``format`` document (or forced tool call),
    and the engine closed it with the shortest valid completion (``done_reason``
    stays ``length``)."""
    warnings: list[str] = field(default_factory=list)
    """Notes for the client (for example a clamped ``num_ctx``), sent as headers."""
    upstream: str | None = None
    """Which link of a routed model's chain served it (``local`` for this server's
    runtime), on every chunk; None for a model with no route."""


@dataclass
class EmbedRequest:
    model: str
    inputs: list[str]
    truncate: bool = True
    dimensions: int | None = None
    normalize: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    keep_alive: float | None = None


@dataclass
class EmbedResult:
    embeddings: list[list[float]]
    prompt_eval_count: int
    total_duration: int
    load_duration: int
    upstream: str | None = None
    """As :attr:`Chunk.upstream`."""
