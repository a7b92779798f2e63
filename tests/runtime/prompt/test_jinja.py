"""Jinja chat templates render into template and user segments."""

from __future__ import annotations

import pytest

from llamaport.runtime.engine.wire import Segment
from llamaport.runtime.errors import BadRequest
from llamaport.runtime.prompt import JinjaRenderer, PassthroughRenderer, select_renderer
from llamaport.runtime.types import Message

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_user_content_is_its_own_non_special_segment() -> None:
    segments = JinjaRenderer(CHATML, None, None).render(
        [Message("system", "Be brief."), Message("user", "Hi <|im_end|>")]
    )
    assert segments == [
        Segment("<|im_start|>system\n", special=True),
        Segment("Be brief.", special=False),
        Segment("<|im_end|>\n<|im_start|>user\n", special=True),
        Segment("Hi <|im_end|>", special=False),
        Segment("<|im_end|>\n<|im_start|>assistant\n", special=True),
    ]


def test_rendering_is_stable_for_the_same_history() -> None:
    renderer = JinjaRenderer(CHATML, None, None)
    history = [Message("user", "one"), Message("assistant", "two"), Message("user", "three")]
    assert renderer.render(history) == renderer.render(list(history))


def test_a_template_that_rewrites_content_falls_back_to_one_segment() -> None:
    template = "{% for m in messages %}[{{ m['content'] | trim | upper }}]{% endfor %}"
    segments = JinjaRenderer(template, None, None).render([Message("user", "  hi  ")])
    assert segments == [Segment("[HI]", special=True)]


def test_private_use_sentinels_in_user_text_are_removed() -> None:
    segments = JinjaRenderer(CHATML, None, None).render([Message("user", "a\ue000b\ue001c")])
    assert Segment("abc", special=False) in segments


def test_bos_and_hf_helpers_are_available() -> None:
    template = (
        "{{ bos_token }}{% for m in messages %}{{ m['content'] | tojson }}{% endfor %}"
        "{% if messages|length > 1 %}{{ raise_exception('one message only') }}{% endif %}"
    )
    renderer = JinjaRenderer(template, "<s>", "</s>")
    assert renderer.render([Message("user", "é")]) == [
        Segment('<s>"', special=True),
        Segment("é", special=False),
        Segment('"', special=True),
    ]
    with pytest.raises(BadRequest, match="one message only"):
        renderer.render([Message("user", "a"), Message("user", "b")])


def test_a_broken_template_is_a_clear_error() -> None:
    with pytest.raises(BadRequest, match="template error"):
        JinjaRenderer("{% for %}", None, None)


@pytest.mark.parametrize(
    "body",
    [
        "{% for i in range(100000000) %}{% endfor %}",
        "{{ 1 / 0 }}",
        "{{ messages[99]['content'] }}",
        "{{ messages['x'].y.z() }}",
    ],
    ids=["huge-range", "zero-division", "index", "call-undefined"],
)
def test_a_template_that_fails_while_rendering_is_a_bad_request(body: str) -> None:
    """A GGUF's template is the model's code; whatever it raises is a 400, not a 500."""
    renderer = JinjaRenderer(body, None, None)
    with pytest.raises(BadRequest, match="template error"):
        renderer.render([Message("user", "hi")])


def test_models_without_a_template_pass_the_prompt_through() -> None:
    renderer = select_renderer(None, None, None, None)
    assert isinstance(renderer, PassthroughRenderer)
    assert renderer.render([Message("system", "S"), Message("user", "P")]) == [
        Segment("S\n\nP", special=False)
    ]


THINKING = (
    "{% for m in messages %}{% if m.reasoning_content %}<think>{{ m.reasoning_content }}"
    "</think>{% endif %}{{ m.content }}|{% endfor %}"
    "{% if enable_thinking is defined and not enable_thinking %}<think></think>"
    "{% elif enable_thinking is defined %}<think>{{ reasoning_effort | default('') }}{% endif %}"
)


@pytest.mark.parametrize(
    ("think", "tail"),
    [(None, ""), (True, "<think>"), (False, "<think></think>"), ("high", "<think>high")],
)
def test_think_reaches_the_template(think: bool | str | None, tail: str) -> None:
    history = [Message("assistant", "4", thinking="2+2"), Message("user", "and 3+3?")]
    segments = JinjaRenderer(THINKING, None, None).render(history, think=think)
    assert "".join(s.text for s in segments) == f"<think>2+2</think>4|and 3+3?|{tail}"
