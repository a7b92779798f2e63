"""Engine text to :class:`Chunk`s: thinking, content, tool calls and logprobs.

Text passes through the thinking parser first (reasoning never reaches the
content), then the tool-call parser (calls never reach the content). Either
may hold text back; the log-probabilities of tokens whose text is held wait
with it and go out on the next chunk, so each token is reported once.
"""

from __future__ import annotations

from llamaport.runtime.output.thinking import ThinkingParser
from llamaport.runtime.output.toolcalls import ToolCallParser
from llamaport.runtime.types import Chunk, TokenLogprob, ToolCall

__all__ = ["OutputPipeline"]


class OutputPipeline:
    """Splits one generation's text; ``show_thinking`` false drops the reasoning."""

    def __init__(
        self,
        thinking: ThinkingParser | None,
        tools: ToolCallParser | None,
        show_thinking: bool = True,
    ) -> None:
        self._thinking = thinking
        self._tools = tools
        self._show_thinking = show_thinking
        self._logprobs: list[TokenLogprob] = []

    def feed(self, text: str, logprobs: tuple[TokenLogprob, ...] = ()) -> Chunk | None:
        """The chunk this piece of text makes, or None while everything is held."""
        self._logprobs.extend(logprobs)
        thinking, content = self._thinking.feed(text) if self._thinking else ("", text)
        return self._chunk(thinking, content, final=False)

    def finish(self) -> Chunk | None:
        """At the end of generation: what was still held, and the parsed tool calls."""
        thinking, content = self._thinking.finish() if self._thinking else ("", "")
        return self._chunk(thinking, content, final=True)

    def _chunk(self, thinking: str, content: str, final: bool) -> Chunk | None:
        calls: list[ToolCall] = []
        deltas = []
        if self._tools is not None:
            content = self._tools.feed(content)
            if final:
                tail, calls = self._tools.finish()
                content += tail
            deltas, self._tools.deltas = self._tools.deltas, []
        thinking = thinking if self._show_thinking else ""
        if not (thinking or content or calls or deltas or (final and self._logprobs)):
            return None
        logprobs, self._logprobs = self._logprobs, []
        return Chunk(
            text=content,
            thinking=thinking,
            tool_calls=calls,
            tool_deltas=deltas,
            logprobs=logprobs,
        )
