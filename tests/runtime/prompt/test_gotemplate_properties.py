"""Property tests for the Go-template renderer (hypothesis).

Templates come from clients (``template`` on ``/api/generate``, TEMPLATE in a
Modelfile), so any text must either render to segments or raise the
template error (``BadRequest("template error: ...")``), never another
exception, and in bounded time and memory: the bounds are those of
:mod:`llamaport.runtime.prompt._goexec`.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llamaport.runtime.errors import BadRequest
from llamaport.runtime.prompt import GoTemplateRenderer
from llamaport.runtime.prompt._goexec import MAX_OUTPUT, MAX_STEPS, MAX_WIDTH
from llamaport.runtime.types import Message

MESSAGES = [
    Message(role="system", content="be brief"),
    Message(role="user", content="hi {{ .System }}"),
    Message(role="assistant", content="hello"),
    Message(role="user", content="again"),
]
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]

_WORDS = """
{{ }} {{- -}} . $ $x := = | ( ) , "s" `r` 1 -3 2.5 true nil 100000000 'a'
end else if range with define template block break continue and or not
eq lt len index slice print printf json "%d" "%5000d" "%v" currentDate
.Messages .System .Prompt .Response .Tools .Role .Content .ToolCalls
.Function .Think $.Messages /* */
"""
_FRAGMENTS = st.sampled_from([*_WORDS.split(), " ", "\n", "{{/* c */}}"])
_TEMPLATES = st.lists(st.one_of(_FRAGMENTS, st.text(max_size=3)), max_size=40).map("".join)


def _render(source: str) -> None:
    try:
        renderer = GoTemplateRenderer(source)
        segments = renderer.render(MESSAGES, TOOLS, think=True)
        renderer.render_infill("pre", "suf")
    except BadRequest as exc:
        assert str(exc).startswith("template error: ")
        return
    assert sum(len(s.text or "") for s in segments) <= 4 * MAX_OUTPUT


@settings(max_examples=1500, deadline=None)
@given(_TEMPLATES)
def test_any_template_renders_or_is_a_template_error(source: str) -> None:
    start = time.monotonic()
    _render(source)
    assert time.monotonic() - start < 20, source


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("{{range 100000000}}{{end}}", f"more than {MAX_STEPS} steps"),
        ("{{range 100000}}{{range 100000}}x{{end}}{{end}}", f"more than {MAX_STEPS} steps"),
        ('{{range 100000}}{{printf "%4000d" 1}}{{end}}', f"output above {MAX_OUTPUT}"),
        ('{{printf "%999999999d" 1}}', f"above {MAX_WIDTH}"),
        ('{{printf "%.999999999f" 1.5}}', f"above {MAX_WIDTH}"),
    ],
    ids=["range-huge", "range-nested", "output-huge", "printf-width", "printf-precision"],
)
def test_runaway_templates_are_template_errors(source: str, error: str) -> None:
    """Found by the property above: ``range`` over a huge int built the whole list
    (gigabytes), and a ``printf`` width allocated its string, before any check."""
    with pytest.raises(BadRequest, match="template error: ") as caught:
        GoTemplateRenderer(source).render(MESSAGES)
    assert error in str(caught.value)
