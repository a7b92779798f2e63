"""Render a GGUF's Jinja chat template (``tokenizer.chat_template``).

Templates run in jinja2's immutable sandbox with the conventions Hugging Face
templates expect (``trim_blocks``, ``lstrip_blocks``, loop controls,
``tojson``, ``raise_exception``, ``strftime_now``).

User text never turns into control tokens: every message's content goes
through :func:`llamaport.runtime.prompt._spans.user_segments`.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from llamaport.runtime.engine.wire import Segment
from llamaport.runtime.errors import BadRequest
from llamaport.runtime.prompt._spans import Wrap, user_segments
from llamaport.runtime.types import Message

__all__ = ["JinjaRenderer"]


def _raise(message: str) -> None:
    raise jinja2.TemplateError(message)


def _tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@lru_cache(maxsize=32)
def _compile(source: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = _strftime_now
    try:
        return env.from_string(source)
    except jinja2.TemplateError as exc:
        raise BadRequest(f"template error: {exc}") from exc


class JinjaRenderer:
    """Renders messages with a GGUF Jinja template into prompt segments."""

    def __init__(self, source: str, bos_token: str | None, eos_token: str | None) -> None:
        self.source = source
        self._template = _compile(source)
        self._bos = bos_token or ""
        self._eos = eos_token or ""

    def _render(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        think: bool | str | None,
    ) -> str:
        extra: dict[str, Any] = {}
        if think is not None:
            extra["enable_thinking"] = think is not False
        if isinstance(think, str):
            extra["reasoning_effort"] = think
        try:
            return self._template.render(
                messages=messages,
                tools=tools or None,
                bos_token=self._bos,
                eos_token=self._eos,
                add_generation_prompt=True,
                **extra,
            )
        except Exception as exc:  # the template is the model's code: its failure is the request's
            raise BadRequest(f"template error: {exc}") from exc

    def render(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]] | None = None,
        think: bool | str | None = None,
    ) -> list[Segment]:
        """``think`` reaches the template as ``enable_thinking`` (and a level as
        ``reasoning_effort``); ``None`` leaves the template's own default."""
        views = [m.template_view() for m in messages]

        def render(wrap: Wrap) -> str:
            wrapped = [{**v, "content": wrap(v["content"])} for v in views]
            return self._render(wrapped, tools, think)

        return user_segments(render)
