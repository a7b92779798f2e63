"""Finding the user's text in a rendered prompt, so it never becomes control tokens.

A renderer renders twice: plainly, and with every piece of user text wrapped
in private-use sentinel characters. When removing the sentinels gives back
the plain render, the wrapped spans are exactly the user's text, and they are
tokenized with special-token parsing off while the template's own text keeps
it on. A template that rewrites user text (upper-cases it, cuts it) breaks the
equality, and the prompt falls back to one template segment.
"""

from __future__ import annotations

from collections.abc import Callable

from llamaport.runtime.engine.wire import Segment

__all__ = ["Wrap", "clean", "user_segments"]

_OPEN = "\ue000"
_CLOSE = "\ue001"

Wrap = Callable[[str], str]
"""What a renderer applies to every piece of user text before rendering."""


def clean(text: str) -> str:
    """``text`` without sentinel characters (a user cannot forge a span)."""
    return text.replace(_OPEN, "").replace(_CLOSE, "")


def _mark(text: str) -> str:
    """Empty text stays empty, so ``{{ if .Content }}`` takes the same branch."""
    text = clean(text)
    return f"{_OPEN}{text}{_CLOSE}" if text else ""


def _split(rendered: str) -> list[Segment] | None:
    """Split a sentinel render into template and user segments; None if unbalanced."""
    segments: list[Segment] = []
    rest = rendered
    while rest:
        start = rest.find(_OPEN)
        if start < 0:
            if _CLOSE in rest:
                return None
            segments.append(Segment(rest, special=True))
            break
        end = rest.find(_CLOSE, start)
        if end < 0 or _CLOSE in rest[:start] or _OPEN in rest[start + 1 : end]:
            return None
        if start:
            segments.append(Segment(rest[:start], special=True))
        if end > start + 1:
            segments.append(Segment(rest[start + 1 : end], special=False))
        rest = rest[end + 1 :]
    return segments


def user_segments(render: Callable[[Wrap], str]) -> list[Segment]:
    """Render through ``render(wrap)`` twice and split user text from template text."""
    plain = render(clean)
    marked = render(_mark)
    if clean(marked) == plain:
        segments = _split(marked)
        if segments is not None:
            return segments
    return [Segment(plain, special=True)]
