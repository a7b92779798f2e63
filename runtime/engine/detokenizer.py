"""Incremental, UTF-8-safe detokenizing and stop-string hold-back.

llama-cpp-python's ``Llama.detokenize`` drops pieces longer than 32 bytes and
re-decodes the whole completion every step. Here each token's piece is
fetched once (by a caller-supplied function with a growable buffer) and fed
through an incremental UTF-8 decoder, so a character split across tokens is
emitted whole and the cost per token is constant.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Sequence

__all__ = ["Detokenizer", "StopMatcher"]


class Detokenizer:
    """Turns a stream of token ids into a stream of complete characters."""

    def __init__(self, piece: Callable[[int], bytes]) -> None:
        self._piece = piece
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token: int) -> str:
        """Return the text this token completes (possibly empty)."""
        return self._decoder.decode(self._piece(token))

    def peek(self, token: int) -> tuple[str, bytes]:
        """The text :meth:`feed` would return for ``token``, without feeding it,
        and the first bytes of a character it would leave unfinished."""
        state = self._decoder.getstate()
        try:
            return self._decoder.decode(self._piece(token)), self._decoder.getstate()[0]
        finally:
            self._decoder.setstate(state)

    @property
    def held(self) -> bytes:
        """The first bytes of a character the tokens fed so far leave unfinished."""
        held: bytes = self._decoder.getstate()[0]
        return held

    def flush(self) -> str:
        """End the stream: a character whose bytes never all arrived (generation
        stopped inside it) is dropped rather than sent as U+FFFD."""
        self._decoder.reset()
        return ""


class StopMatcher:
    """Holds back text that could still grow into a stop string.

    ``push`` returns the text that is safe to emit and whether a stop string
    was hit; after a hit the text from the stop string on is discarded.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._held = ""

    def push(self, text: str) -> tuple[str, bool]:
        if not self._stops:
            return text, False
        buffer = self._held + text
        cut = min((i for i in (buffer.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self._held = ""
            return buffer[:cut], True
        keep = self._partial_suffix(buffer)
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep], False

    def flush(self) -> str:
        """Release held text at the end of generation (no stop can match now)."""
        held, self._held = self._held, ""
        return held

    def _partial_suffix(self, buffer: str) -> int:
        """Length of the longest suffix of ``buffer`` that starts a stop string."""
        best = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(buffer)), best, -1):
                if buffer.endswith(stop[:n]):
                    best = n
                    break
        return best
