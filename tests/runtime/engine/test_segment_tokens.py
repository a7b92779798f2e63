"""The engine's kept segment tokens: what it keeps, for how long, and that a kept
segment tokenizes exactly as a fresh one (on the real model, in test_engine)."""

from __future__ import annotations

from llamaport.runtime.engine.segment_tokens import SegmentTokens


class _Counting:
    """One id per character, and a count of the calls that reached it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def __call__(self, text: str, special: bool) -> list[int]:
        self.calls.append((text, special))
        return [ord(c) + (1000 if special else 0) for c in text]


def test_a_segment_is_tokenized_once_per_kind() -> None:
    count = _Counting()
    kept = SegmentTokens(count, budget=1 << 20)
    first = list(kept.get("hello", False))
    assert list(kept.get("hello", False)) == first
    assert list(kept.get("hello", True)) != first, "special parsing is part of the key"
    assert count.calls == [("hello", False), ("hello", True)]


def test_the_least_recently_used_go_first_within_the_budget() -> None:
    count = _Counting()
    kept = SegmentTokens(count, budget=3 * 5)  # three 1-character segments: 1 + 4 bytes each
    for text in "abc":
        kept.get(text, False)
    kept.get("a", False)  # now b is the oldest
    kept.get("d", False)
    assert kept.held <= 15
    count.calls.clear()
    for text in "acd":
        kept.get(text, False)
    assert count.calls == []
    kept.get("b", False)
    assert count.calls == [("b", False)]


def test_a_segment_over_the_whole_budget_is_not_kept() -> None:
    count = _Counting()
    kept = SegmentTokens(count, budget=30)
    kept.get("small", False)
    assert list(kept.get("x" * 100, False)) == [ord("x")] * 100
    assert kept.held == 5 + 4 * 5
    kept.get("x" * 100, False)
    assert count.calls.count(("x" * 100, False)) == 2
