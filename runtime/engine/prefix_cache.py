"""KV state of evicted sequences, kept in host memory for the prompts that come back.

When a slot is about to be overwritten by another request, the batcher saves
the slot's cells here (``llama_state_seq_get_data``), keyed by the tokens they
hold. A later prompt that shares a longer prefix with an entry than with any
resident slot gets the entry copied back into a slot
(``llama_state_seq_set_data``) and prefills only the rest: many conversations
taking turns on few slots stay warm. Entries are bounded by their total size
in bytes and dropped least recently used first; an entry whose tokens are a
prefix of a newer one is dropped as redundant.

Only the engine's owner thread may call into this module.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import llama_cpp as L

__all__ = ["CachedPrefix", "PrefixCache", "common_prefix"]


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists of the same type.

    Slices compare in C, so the common case (one is a prefix of the other) is
    one comparison and the rest a binary search over slice equality.
    """
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass
class CachedPrefix:
    """One saved sequence: the tokens its cells hold and llama.cpp's copy of them."""

    tokens: list[int]
    data: ctypes.Array[ctypes.c_uint8]


class PrefixCache:
    """A bounded LRU of saved sequences of one context (``capacity`` in bytes)."""

    def __init__(self, ctx: object, capacity: int) -> None:
        self._ctx = ctx
        self.capacity = capacity
        self.size = 0
        self._entries: OrderedDict[tuple[int, ...], CachedPrefix] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, prompt: list[int]) -> tuple[CachedPrefix | None, int]:
        """The entry sharing the longest prefix with ``prompt``, and that length."""
        best: CachedPrefix | None = None
        length = 0
        for entry in self._entries.values():
            n = common_prefix(entry.tokens, prompt)
            if n > length:
                best, length = entry, n
        return best, length

    def save(self, seq_id: int, tokens: list[int]) -> None:
        """Copy sequence ``seq_id`` (which holds ``tokens``) into the cache.

        Nothing is copied when an entry already holds ``tokens`` or more of the
        same sequence, or when the state alone exceeds the capacity.
        """
        for key, entry in self._entries.items():
            if common_prefix(entry.tokens, tokens) == len(tokens):
                self._entries.move_to_end(key)
                return
        size = int(L.llama_state_seq_get_size(self._ctx, seq_id))
        if size <= 0 or size > self.capacity:
            return
        data = (ctypes.c_uint8 * size)()
        if int(L.llama_state_seq_get_data(self._ctx, data, size, seq_id)) != size:
            return
        for key in [k for k, e in self._entries.items() if len(e.tokens) < len(tokens)]:
            if common_prefix(self._entries[key].tokens, tokens) == len(self._entries[key].tokens):
                self._remove(key)
        self._entries[tuple(tokens)] = CachedPrefix(list(tokens), data)
        self.size += size
        while self.size > self.capacity:
            self._remove(next(iter(self._entries)))

    def restore(self, entry: CachedPrefix, seq_id: int) -> bool:
        """Load ``entry`` into the (empty) sequence ``seq_id``; False when llama.cpp refuses.

        ``entry`` may have been dropped since its lookup (the batcher saves the
        slot it is about to reuse in between, which can evict it); its data is
        still whole, so it is restored all the same.
        """
        key = tuple(entry.tokens)
        if key in self._entries:
            self._entries.move_to_end(key)
        size = len(entry.data)
        return int(L.llama_state_seq_set_data(self._ctx, entry.data, size, seq_id)) == size

    def _remove(self, key: tuple[int, ...]) -> None:
        entry = self._entries.pop(key)
        self.size -= len(entry.data)
