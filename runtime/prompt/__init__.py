"""Prompt rendering behind one interface.

A :class:`Renderer` turns chat messages into prompt :class:`Segment`s. There
are three: a Go TEMPLATE (the request's ``template`` or the Modelfile's), the
GGUF's Jinja chat template, and a pass-through for models with neither
(Ollama's default ``{{ .Prompt }}``), tried in that order.
"""

from __future__ import annotations

from typing import Any, Protocol

from llamaport.runtime.engine.wire import Segment
from llamaport.runtime.prompt.gotemplate import GoTemplateRenderer
from llamaport.runtime.prompt.jinja import JinjaRenderer
from llamaport.runtime.types import Message

__all__ = [
    "GoTemplateRenderer",
    "JinjaRenderer",
    "PassthroughRenderer",
    "Renderer",
    "select_renderer",
]


class Renderer(Protocol):
    def render(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]] | None = None,
        think: bool | str | None = None,
    ) -> list[Segment]: ...


class PassthroughRenderer:
    """No template: the system text and the latest user text, as plain text."""

    def render(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]] | None = None,
        think: bool | str | None = None,
    ) -> list[Segment]:
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        prompt = next((m.content for m in reversed(messages) if m.role == "user"), "")
        text = f"{system}\n\n{prompt}" if system and prompt else system or prompt
        return [Segment(text, special=False)]


def select_renderer(
    go_template: str | None,
    chat_template: str | None,
    bos_token: str | None,
    eos_token: str | None,
) -> Renderer:
    """Pick the renderer: a Go template if one is in effect, else the GGUF's Jinja."""
    if go_template:
        return GoTemplateRenderer(go_template)
    if chat_template:
        return JinjaRenderer(chat_template, bos_token, eos_token)
    return PassthroughRenderer()
