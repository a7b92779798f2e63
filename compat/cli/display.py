"""Streaming a reply to the terminal: word wrap and the thinking markers.

Chunks arrive a few characters at a time, so wrapping must decide line
breaks without seeing the whole text. :class:`WordWrapper` holds back the
word being typed until a space or newline ends it and only then decides
whether it still fits; that keeps the output free of cursor-movement escape
codes, so what tests capture is what a pipe would get.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from typing import TextIO

from llamaport.compat.client import ToolCall

__all__ = ["ResponsePrinter", "WordWrapper"]

GREY = "\x1b[38;5;245m"
BOLD = "\x1b[1m"
RESET = "\x1b[0m"

_MIN_WRAP_WIDTH = 10
"""Terminals narrower than this are not wrapped (as in Ollama)."""

_MARGIN = 5
"""Columns left free at the right edge (as in Ollama)."""


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


class WordWrapper:
    """Write streamed text to ``out``, breaking lines between words.

    ``width`` is the terminal width, or ``None`` for no wrapping. Call
    :meth:`flush` at the end of the text so the held-back word is written.
    """

    def __init__(self, out: TextIO, width: int | None) -> None:
        self._out = out
        wraps = width is not None and width >= _MIN_WRAP_WIDTH
        self._limit = (width - _MARGIN) if wraps and width is not None else None
        self._column = 0
        self._word = ""
        self._word_width = 0

    def write(self, text: str) -> None:
        """Write ``text``; the trailing partial word waits for more input."""
        if self._limit is None:
            self._out.write(text)
            return
        for ch in text:
            self._put(ch, self._limit)

    def flush(self) -> None:
        """Write the held-back word, if any."""
        if self._limit is not None:
            self._emit_word(self._limit)

    def _put(self, ch: str, limit: int) -> None:
        if ch in "\n\r":
            self._emit_word(limit)
            self._out.write(ch)
            self._column = 0
        elif ch in " \t":
            self._emit_word(limit)
            if self._column + 1 > limit:
                self._out.write("\n")
                self._column = 0
            else:
                self._out.write(ch)
                self._column += 1
        elif _char_width(ch) >= 2:  # wide glyphs may break anywhere
            self._emit_word(limit)
            self._word, self._word_width = ch, 2
            self._emit_word(limit)
        else:
            self._word += ch
            self._word_width += _char_width(ch)
            if self._word_width >= limit:  # longer than a line: break inside it
                self._emit_word(limit)

    def _emit_word(self, limit: int) -> None:
        if not self._word:
            return
        if self._column > 0 and self._column + self._word_width > limit:
            self._out.write("\n")
            self._column = 0
        self._out.write(self._word)
        self._column += self._word_width
        self._word, self._word_width = "", 0


class ResponsePrinter:
    """Print one reply's thinking and content as they stream in.

    Thinking goes between ``Thinking...`` and ``...done thinking.`` unless
    ``hide_thinking``; ``color`` greys it out as Ollama does on a terminal.
    The printer also collects the full texts for the chat history.
    """

    def __init__(
        self, out: TextIO, *, width: int | None, hide_thinking: bool = False, color: bool = False
    ) -> None:
        self._out = out
        self._width = width
        self._wrapper = WordWrapper(out, width)
        self._hide_thinking = hide_thinking
        self._color = color
        self._thinking_open = False
        self._thinking_closed = False
        self.thinking = ""
        self.content = ""

    def feed(
        self, thinking: str = "", content: str = "", tool_calls: Sequence[ToolCall] | None = None
    ) -> None:
        """Show one chunk's ``thinking``, ``content`` and ``tool_calls``."""
        if thinking and not self._hide_thinking:
            if not self._thinking_open:
                self._out.write(self._opening())
                self._thinking_open, self._thinking_closed = True, False
            self.thinking += thinking
            self._wrapper.write(thinking)
        if self._thinking_open and not self._thinking_closed and (content or tool_calls):
            self._wrapper.flush()
            if not self.thinking.endswith("\n"):
                self._out.write("\n")
            self._out.write(self._closing())
            self._thinking_open, self._thinking_closed = False, True
            self._wrapper = WordWrapper(self._out, self._width)
        self.content += content
        self._wrapper.write(content)
        if tool_calls:
            self._wrapper.flush()
            self._out.write(self._tool_calls(tool_calls))
        self._out.flush()

    def finish(self) -> None:
        """Write whatever the wrapper still holds."""
        self._wrapper.flush()
        self._out.flush()

    def _opening(self) -> str:
        text = "Thinking...\n"
        return f"{GREY}{BOLD}{text}{RESET}{GREY}" if self._color else text

    def _closing(self) -> str:
        text = "...done thinking.\n\n"
        return f"{GREY}{BOLD}{text}{RESET}" if self._color else text

    def _tool_calls(self, tool_calls: Sequence[ToolCall]) -> str:
        """The CLI registers no tools, so any call is reported, not run."""
        lines = []
        for call in tool_calls:
            name = call.function.name
            args = json.dumps(call.function.arguments, separators=(",", ":"))
            if self._color:
                name, args = f"{RESET}{name}{GREY}{BOLD}", f"{RESET}{args}{GREY}{BOLD}"
            lines.append(
                f"  Model called a non-existent function '{name}()' with arguments: {args}"
            )
        text = "\n".join(lines)
        return f"{GREY}{BOLD}{text}{RESET}" if self._color else text
