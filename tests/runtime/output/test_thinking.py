"""Reasoning split out of streamed model output, whatever the token boundaries."""

from __future__ import annotations

import pytest

from llamaport.runtime.output.thinking import ThinkingParser


def _split(text: str, opened: bool, step: int) -> tuple[str, str]:
    parser = ThinkingParser(opened)
    pieces = [parser.feed(text[i : i + step]) for i in range(0, len(text), step)]
    pieces.append(parser.finish())
    return "".join(t for t, _ in pieces), "".join(c for _, c in pieces)


CASES = [
    ("prefilled", True, "\nLet me see.\n</think>\n\nYes.", ("Let me see.", "Yes.")),
    ("opened-by-output", False, "  <think> hmm </think> Answer", ("hmm", "Answer")),
    ("no-thinking", False, "Just an answer <b>", ("", "Just an answer <b>")),
    ("unclosed", True, "still thinking...  ", ("still thinking...", "")),
    ("tag-like-content", False, "<thin air", ("", "<thin air")),
    ("empty-block", True, "\n\n</think>\n\n{}", ("", "{}")),
    ("close-lookalike", True, "a </thinking b</think>c", ("a </thinking b", "c")),
]


@pytest.mark.parametrize(
    ("opened", "text", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
def test_split_does_not_depend_on_chunking(
    opened: bool, text: str, want: tuple[str, str], step: int
) -> None:
    assert _split(text, opened, step) == want


def test_thinking_streams_before_the_close_tag() -> None:
    parser = ThinkingParser(opened=True)
    assert parser.feed("first words ") == ("first words", "")
    assert parser.feed("and more</th") == (" and more", "")
    assert parser.feed("ink>done") == ("", "done")
