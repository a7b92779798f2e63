"""KV state of evicted sequences, kept in host memory for the prompts that come back.

When a slot is about to be overwritten by another request, the batcher saves
the slot's cells here (``llama_state_seq_get_data``), keyed by the tokens they
hold. A later prompt that shares a longer prefix with an entry than with any
resident slot gets the entry copied back into a slot
(``llama_state_seq_set_data``) and prefills only the rest: many conversations
taking turns on few slots stay warm. Entries are bounded by their total size
in bytes and dropped least recently used first; an entry whose tokens are a
prefix of a newer one is dropped as redundant.

With a :class:`~llamaport.runtime.engine.kv_disk.DiskCache`, the files of
stored conversations are a second tier: a lookup that carries their identity
weighs them with the entries in memory, and :meth:`PrefixCache.persist`
writes a finished turn's state there.
:func:`~llamaport.runtime.engine.prefixes.longest_prefix` is the one reading of
"the longest cached prefix of these tokens" for both.

Only the engine's owner thread may call into this module.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import llama_cpp as L

from llamaport.runtime.engine.prefixes import common_prefix, longest_prefix, prefixes_of

if TYPE_CHECKING:
    from llamaport.runtime.engine.kv_disk import DiskCache, StoredPrefix

__all__ = ["CachedPrefix", "PrefixCache"]


@dataclass
class CachedPrefix:
    """One saved sequence: the tokens its cells hold and llama.cpp's copy of them."""

    tokens: list[int]
    data: ctypes.Array[ctypes.c_uint8]


class PrefixCache:
    """A bounded LRU of saved sequences of one context (``capacity`` in bytes)."""

    def __init__(self, ctx: object, capacity: int, disk: DiskCache | None = None) -> None:
        self._ctx = ctx
        self.capacity = capacity
        self.size = 0
        self._entries: OrderedDict[tuple[int, ...], CachedPrefix] = OrderedDict()
        self._disk = disk

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(
        self, prompt: list[int], identity: str = ""
    ) -> tuple[CachedPrefix | StoredPrefix | None, int]:
        """The entry sharing the longest prefix with ``prompt``, and that length;
        with an ``identity``, the files stored under it compete too."""
        entries: list[CachedPrefix | StoredPrefix] = list(self._entries.values())
        if identity and self._disk is not None:
            entries += self._disk.entries(identity)
        return longest_prefix(entries, prompt)

    def save(self, seq_id: int, tokens: list[int]) -> None:
        """Copy sequence ``seq_id`` (which holds ``tokens``) into the cache.

        Nothing is copied when an entry already holds ``tokens`` or more of the
        same sequence, or when the state alone exceeds the capacity.
        """
        for key, entry in self._entries.items():
            if common_prefix(entry.tokens, tokens) == len(tokens):
                self._entries.move_to_end(key)
                return
        data = self._copy(seq_id, self.capacity)
        if data is None:
            return
        for old in prefixes_of(list(self._entries.values()), tokens):
            self._remove(tuple(old.tokens))
        self._entries[tuple(tokens)] = CachedPrefix(list(tokens), data)
        self.size += len(data)
        while self.size > self.capacity:
            self._remove(next(iter(self._entries)))

    def persist(self, seq_id: int, tokens: list[int], identity: str, owner: str) -> None:
        """Write sequence ``seq_id`` (holding ``tokens``) to disk under ``identity``,
        as ``owner``'s.

        Only the copy out of llama.cpp happens here; the file is written on the
        disk cache's own thread.
        """
        size = int(L.llama_state_seq_get_size(self._ctx, seq_id))
        if self._disk is None or not tokens or not 0 < size <= self._disk.capacity:
            return
        self._disk.write(identity, owner, tokens, size, lambda data: self._get(data, seq_id))

    def forget(self, owner: str) -> None:
        """Remove ``owner``'s files from disk (see :meth:`DiskCache.forget`)."""
        if self._disk is not None and owner:
            self._disk.forget(owner)

    def _copy(self, seq_id: int, limit: int) -> ctypes.Array[ctypes.c_uint8] | None:
        """llama.cpp's copy of sequence ``seq_id``, unless it is empty or over ``limit`` bytes."""
        size = int(L.llama_state_seq_get_size(self._ctx, seq_id))
        if size <= 0 or size > limit:
            return None
        data = (ctypes.c_uint8 * size)()
        return data if self._get(data, seq_id) else None

    def _get(self, data: ctypes.Array[ctypes.c_uint8], seq_id: int) -> bool:
        size = len(data)
        return int(L.llama_state_seq_get_data(self._ctx, data, size, seq_id)) == size

    def restore(self, entry: CachedPrefix | StoredPrefix, seq_id: int) -> bool:
        """Load ``entry`` into the (empty) sequence ``seq_id``; False when llama.cpp
        refuses it or its file cannot be read (the file is then removed).

        ``entry`` may have been dropped since its lookup (the batcher saves the
        slot it is about to reuse in between, which can evict it); its data is
        still whole, so it is restored all the same.
        """
        if isinstance(entry, CachedPrefix):
            key = tuple(entry.tokens)
            if key in self._entries:
                self._entries.move_to_end(key)
            return self._set(entry.data, seq_id)
        disk = self._disk
        data = disk.read(entry) if disk is not None else None
        if data is None or disk is None:
            return False
        if self._set(data, seq_id):
            return True
        disk.drop(entry)
        return False

    def _set(self, data: ctypes.Array[ctypes.c_uint8], seq_id: int) -> bool:
        size = len(data)
        return int(L.llama_state_seq_set_data(self._ctx, data, size, seq_id)) == size

    def close(self) -> None:
        """Finish the disk writes already queued."""
        if self._disk is not None:
            self._disk.close()

    def _remove(self, key: tuple[int, ...]) -> None:
        entry = self._entries.pop(key)
        self.size -= len(entry.data)
