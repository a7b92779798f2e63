"""One generation's chunks folded into what it produced: the one accumulator of a turn.

Every face reads a finished (or cut-off) generation through
:class:`GeneratedReply`: the native routes answer ``stream: false`` with
:meth:`GeneratedReply.as_chunk`, ``/v1`` keeps one per choice, and the
Responses API and stored conversations turn one into output items.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from llamaport.runtime.types import Chunk, TokenLogprob, ToolCall

__all__ = ["GeneratedReply"]


@dataclass
class GeneratedReply:
    """What one generation yielded so far; ``final`` is its ``done`` chunk once it came."""

    text_parts: list[str] = field(default_factory=list)
    thinking_parts: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    final: Chunk | None = None

    @classmethod
    def of(cls, chunks: Iterable[Chunk]) -> GeneratedReply:
        reply = cls()
        for chunk in chunks:
            reply.add(chunk)
        return reply

    def add(self, chunk: Chunk) -> None:
        """Fold in the next chunk of the same generation, in the order they came."""
        self.text_parts.append(chunk.text)
        self.thinking_parts.append(chunk.thinking)
        self.tool_calls.extend(chunk.tool_calls)
        self.logprobs.extend(chunk.logprobs)
        self.warnings.extend(chunk.warnings)
        if chunk.done:
            self.final = chunk

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    @property
    def thinking(self) -> str:
        return "".join(self.thinking_parts)

    @property
    def status(self) -> Literal["completed", "incomplete"]:
        """``completed``, or ``incomplete`` when cut off (client gone) or out of tokens."""
        if self.final is None or self.final.done_reason == "length":
            return "incomplete"
        return "completed"

    def as_chunk(self) -> Chunk:
        """The whole reply as one ``done`` chunk: all text, the final chunk's metrics."""
        final = self.final or Chunk()
        return Chunk(
            text=self.text,
            thinking=self.thinking,
            tool_calls=list(self.tool_calls),
            logprobs=list(self.logprobs),
            done=True,
            done_reason=final.done_reason,
            metrics=final.metrics,
            context=final.context,
            truncated_messages=final.truncated_messages,
            closed=final.closed,
            warnings=list(self.warnings),
            upstream=final.upstream,
        )
