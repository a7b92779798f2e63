"""Reasoning out of model output, while it streams: ``<think>…</think>``.

As in Ollama's thinking parser, leading whitespace is skipped; output that
opens with ``<think>`` is thinking until ``</think>``, and the rest is
content. When the prompt already ends inside ``<think>`` (templates that
prefill it), the output starts as thinking. Whitespace right after either tag
is eaten, trailing whitespace of the thinking is dropped, and text that could
still grow into a tag is held back, so a tag split across tokens never leaks.
"""

from __future__ import annotations

__all__ = ["CLOSE_TAG", "OPEN_TAG", "ThinkingParser"]

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"


def _partial_tag(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that starts ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


class ThinkingParser:
    """Splits a stream of text into (thinking, content) pieces."""

    def __init__(self, opened: bool) -> None:
        self.opened = opened
        """The prompt ended inside the opening tag."""
        self._state = "thinking" if opened else "start"
        self._held = ""
        self._eat_space = opened

    def feed(self, text: str) -> tuple[str, str]:
        """Return the (thinking, content) text that is safe to show now."""
        buffer = self._held + text
        self._held = ""
        thinking = content = ""
        if self._state == "start":
            stripped = buffer.lstrip()
            if stripped.startswith(OPEN_TAG):
                self._state, self._eat_space = "thinking", True
                buffer = stripped[len(OPEN_TAG) :]
            elif not stripped or OPEN_TAG.startswith(stripped):
                self._held = buffer
                return "", ""
            else:
                self._state = "content"
        if self._state == "thinking":
            if self._eat_space:
                buffer = buffer.lstrip()
                self._eat_space = not buffer
            at = buffer.find(CLOSE_TAG)
            if at < 0:
                shown = buffer[: len(buffer) - _partial_tag(buffer, CLOSE_TAG)].rstrip()
                self._held = buffer[len(shown) :]
                return shown, ""
            thinking = buffer[:at].rstrip()
            buffer = buffer[at + len(CLOSE_TAG) :]
            self._state, self._eat_space = "content", True
        if self._eat_space:
            buffer = buffer.lstrip()
            self._eat_space = not buffer
        content = buffer
        return thinking, content

    def finish(self) -> tuple[str, str]:
        """At the end of generation: what was held, as (thinking, content)."""
        held, self._held = self._held, ""
        if self._state == "thinking":
            return held.rstrip(), ""
        return "", held
