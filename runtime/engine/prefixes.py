"""Token-prefix arithmetic shared by slot choice, the host-memory prefix cache
and its files on disk. Pure Python: the server reads KV files' headers
(:func:`~llamaport.runtime.engine.kv_disk.forget_files`) without llama.cpp."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

__all__ = ["common_prefix", "longest_prefix", "prefixes_of"]


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


class _Tokens(Protocol):
    tokens: list[int]


_E = TypeVar("_E", bound=_Tokens)


def longest_prefix(entries: Iterable[_E], prompt: list[int]) -> tuple[_E | None, int]:
    """The entry sharing the longest prefix with ``prompt``, and that length."""
    best: _E | None = None
    length = 0
    for entry in entries:
        n = common_prefix(entry.tokens, prompt)
        if n > length:
            best, length = entry, n
    return best, length


def prefixes_of(entries: Iterable[_E], tokens: list[int]) -> list[_E]:
    """The entries shorter than ``tokens`` whose tokens are a prefix of it: redundant
    once ``tokens`` is saved."""
    return [
        e
        for e in entries
        if len(e.tokens) < len(tokens) and common_prefix(e.tokens, tokens) == len(e.tokens)
    ]
