"""Token ids of prompt segments seen before, kept in a bounded LRU.

A stored conversation sends its whole history again each turn, and most
requests share a system prompt: their segments (template text and user text,
see :mod:`~llamaport.runtime.prompt`) were tokenized anew every time, on the
engine's one thread, while every other sequence waited for its next decode.
In situ a 42-token chat prompt took 0.45 ms from the Submit's arrival to its
tokens (llama.cpp's tokenizer, 137 µs warm with special-token parsing); a
history grows that by about 1 µs per token. Segments are tokenized one by
one already, so a kept segment's ids are exactly what a new tokenization
gives.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence

__all__ = ["SegmentTokens"]

_TOKEN_BYTES = 4
"""An id is held as a C int (``array('i')``), not a Python int."""


class SegmentTokens:
    """``tokenize(text, special)`` remembered for segments up to ``budget`` bytes
    (text plus ids), least recently used out first; a segment larger than the
    whole budget is tokenized and not kept."""

    def __init__(self, tokenize: Callable[[str, bool], list[int]], budget: int) -> None:
        self._tokenize = tokenize
        self._budget = budget
        self._held = 0
        self._kept: OrderedDict[tuple[str, bool], array[int]] = OrderedDict()

    @property
    def held(self) -> int:
        """Bytes kept now (the texts' lengths plus 4 per id)."""
        return self._held

    def get(self, text: str, special: bool) -> Sequence[int]:
        key = (text, special)
        kept = self._kept.get(key)
        if kept is not None:
            self._kept.move_to_end(key)
            return kept
        tokens = array("i", self._tokenize(text, special))
        size = _size(text, tokens)
        if size <= self._budget:
            self._kept[key] = tokens
            self._held += size
            while self._held > self._budget:
                (old_text, _), old = self._kept.popitem(last=False)
                self._held -= _size(old_text, old)
        return tokens


def _size(text: str, tokens: array[int]) -> int:
    return len(text) + _TOKEN_BYTES * len(tokens)
