"""The Go text/template subset: syntax, functions, errors, and Ollama's execution modes."""

from __future__ import annotations

from typing import Any

import pytest

from llamaport.runtime.engine.wire import Segment
from llamaport.runtime.errors import BadRequest
from llamaport.runtime.prompt import GoTemplateRenderer, select_renderer
from llamaport.runtime.prompt._goexec import FUNCTIONS, LAZY, JSONMap, execute
from llamaport.runtime.prompt._goparse import parse
from llamaport.runtime.types import Message, ToolCall

DATA: dict[str, Any] = {
    "S": "sys",
    "N": 3,
    "F": 0.5,
    "E": "",
    "L": ["a", "b", "c"],
    "M": {"b": 2, "a": 1},
    "J": JSONMap({"b": "<x>", "a": 1}),
    "Msgs": [{"Role": "user", "Content": "hi"}, {"Role": "assistant", "Content": "yo"}],
}

RENDERS = [
    ("{{ .S }} {{ .N }} {{ .F }} {{ .Missing }}", "sys 3 0.5 <no value>"),
    ("a  {{- .S -}}  b", "asysb"),
    ("a\n\t{{- /* note */ -}}\n b", "ab"),
    ("{{/* c */}}x", "x"),
    ("{{ -3 }}", "-3"),
    ("{{ if .E }}1{{ else if .N }}2{{ else }}3{{ end }}", "2"),
    ("{{ if not .E }}empty{{ end }}", "empty"),
    ("{{ with .S }}<{{ . }}>{{ else }}none{{ end }}", "<sys>"),
    ("{{ with .E }}<{{ . }}>{{ else with .N }}[{{ . }}]{{ end }}", "[3]"),
    ("{{ range .L }}{{ . }}{{ end }}", "abc"),
    ("{{ range $i, $v := .L }}{{ $i }}={{ $v }};{{ end }}", "0=a;1=b;2=c;"),
    ("{{ range $k, $v := .M }}{{ $k }}{{ $v }}{{ end }}", "a1b2"),
    ("{{ range .E }}x{{ else }}none{{ end }}", "none"),
    ('{{ range .L }}{{ if eq . "b" }}{{ continue }}{{ end }}{{ . }}{{ end }}', "ac"),
    ('{{ range .L }}{{ if eq . "b" }}{{ break }}{{ end }}{{ . }}{{ end }}', "a"),
    ("{{ range 3 }}{{ . }}{{ end }}", "012"),
    ("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ $y := 9 }}{{ end }}{{ $x }}", "2"),
    ("{{ range .Msgs }}{{ $.S }}:{{ .Role }} {{ end }}", "sys:user sys:assistant "),
    ("{{ (index .Msgs 1).Content }}", "yo"),
    ('{{ index .M "a" }} {{ index .L 2 }}', "1 c"),
    ('{{ len .L }} {{ len .S }} {{ len "é" }}', "3 3 2"),
    ("{{ slice .L 1 }} {{ slice .S 0 2 }}", "[b c] sy"),
    ('{{ and .S .N }} {{ and .E .N }} {{ or .E .N }} {{ or .E "" }}', "3  3 "),
    ('{{ eq .N 1 2 3 }} {{ ne .S "x" }} {{ lt 1 2 }} {{ ge .F 1.0 }}', "true true true false"),
    ('{{ printf "%s-%d-%q-%v-%5.2f%%" .S .N .S .L .F }}', 'sys-3-"sys"-[a b c]- 0.50%'),
    ('{{ printf "%s" }} {{ printf "%d" .S }}', "%!s(MISSING) %!d(sys)"),
    ('{{ print 1 2 "a" 3 }}{{ println .S .N }}', "1 2a3sys 3\n"),
    ('{{ .N | printf "%d!" }} {{ .S | len }}', "3! 3"),
    (
        "{{ json .M }} {{ json .S }} {{ .J }} {{ .M }}",
        '{"a":1,"b":2} "sys" {"a":1,"b":"\\u003cx\\u003e"} map[a:1 b:2]',
    ),
    ('{{ `raw \\n` }}{{ "esc\\n" }}', "raw \\nesc\n"),
    ("{{ .M.Missing }}|{{ .Nil.Deeper }}", "<no value>|<no value>"),
]


@pytest.mark.parametrize(("source", "expected"), RENDERS, ids=[s for s, _ in RENDERS])
def test_render(source: str, expected: str) -> None:
    assert execute(parse(source, frozenset(FUNCTIONS) | LAZY), DATA) == expected


PARSE_ERRORS = [
    ("{{ if .A }}x", "line 1: unexpected EOF"),
    ("{{ end }}", "line 1: unexpected {{end}}"),
    ("a\n\n{{ .A }", "line 3: unclosed action"),
    ("{{ nope .A }}", 'line 1: function "nope" not defined'),
    ("{{ }}", "line 1: missing value for command"),
    ("{{ break }}", "line 1: {{break}} outside {{range}}"),
    ('{{ template "x" }}', "line 1: {{template}} is not supported"),
    ("{{ .A ) }}", "line 1: unexpected ')' in operand"),
    ("{{/* open }}", "line 1: unclosed comment"),
    ("{{ if .A }}{{ else }}{{ else }}{{ end }}", "line 1: expected end; found else"),
]


@pytest.mark.parametrize(("source", "message"), PARSE_ERRORS, ids=[m for _, m in PARSE_ERRORS])
def test_parse_errors_are_400_template_errors(source: str, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        GoTemplateRenderer(source)
    assert str(info.value) == f"template error: {message}"


@pytest.mark.parametrize(
    "source",
    [
        "{{ index .Messages 5 }}",
        "{{ len 3 }}",
        "{{ .Messages 1 }}",
        "{{ lt .System 1 }}",
        "{{ .Messages.Role }}",
    ],
)
def test_execution_errors_are_400_template_errors(source: str) -> None:
    with pytest.raises(BadRequest, match=r"^template error: "):
        GoTemplateRenderer(source).render([Message("user", "hi")])


def _text(
    renderer: GoTemplateRenderer, messages: list[Message], think: bool | str | None = None
) -> str:
    return "".join(s.text for s in renderer.render(messages, think=think))


def test_response_is_appended_when_the_template_names_neither_messages_nor_response() -> None:
    renderer = GoTemplateRenderer("<{{ .Prompt }}>")
    chat = [Message("user", "a"), Message("assistant", "b"), Message("user", "c")]
    assert _text(renderer, chat) == "<a>b<c>"


def test_last_turn_is_cut_after_response() -> None:
    renderer = GoTemplateRenderer("{{ if .Prompt }}U:{{ .Prompt }} {{ end }}A:{{ .Response }} END ")
    chat = [Message("user", "a"), Message("assistant", "b"), Message("user", "c")]
    assert _text(renderer, chat) == "U:a A:b END U:c A:"
    prefill = [Message("user", "a"), Message("assistant", "pre")]
    assert _text(renderer, prefill) == "U:a A:pre"


def test_legacy_mode_ignores_tool_messages_and_restarts_turns_at_system() -> None:
    renderer = GoTemplateRenderer("[{{ .System }}|{{ .Prompt }}|{{ .Response }}]")
    chat = [
        Message("user", "a"),
        Message("tool", "result"),
        Message("system", "s"),
        Message("user", "b"),
    ]
    assert _text(renderer, chat) == "[|a|][s|b|"


def test_messages_mode_collates_and_joins_system() -> None:
    renderer = GoTemplateRenderer(
        "{{ .System }}|{{ range .Messages }}{{ .Role }}={{ .Content }};{{ end }}"
    )
    chat = [
        Message("system", "s1"),
        Message("user", "a"),
        Message("user", "b"),
        Message("tool", "t1"),
        Message("tool", "t2"),
        Message("system", "s2"),
    ]
    assert _text(renderer, chat) == "s1\n\ns2|system=s1;user=a\n\nb;tool=t1;tool=t2;system=s2;"


def test_tool_call_arguments_are_objects_in_the_template() -> None:
    renderer = GoTemplateRenderer(
        "{{ range .Messages }}{{ range .ToolCalls }}{{ .Function.Name }}"
        '{{ .Function.Arguments }}{{ index .Function.Arguments "x" }}{{ end }}{{ end }}'
    )
    call = ToolCall("", "f", {"x": 1})
    assert _text(renderer, [Message("assistant", "", tool_calls=[call])]) == 'f{"x":1}1'


THINK = [
    (None, "false||false"),
    (False, "false||true"),
    (True, "true|medium|true"),
    ("high", "true|high|true"),
]


@pytest.mark.parametrize(("think", "expected"), THINK, ids=[str(t) for t, _ in THINK])
def test_thinking_variables_follow_the_request(think: bool | str | None, expected: str) -> None:
    source = "{{ .Think }}|{{ .ThinkLevel }}|{{ .IsThinkSet }}|{{ .Messages }}"
    assert _text(GoTemplateRenderer(source), [], think) == f"{expected}|[]"


def test_a_template_that_rewrites_user_text_falls_back_to_one_segment() -> None:
    renderer = GoTemplateRenderer("{{ range .Messages }}{{ slice .Content 1 }}{{ end }}")
    assert renderer.render([Message("user", "hello")]) == [Segment("ello", special=True)]


def test_select_renderer_prefers_the_go_template() -> None:
    assert isinstance(
        select_renderer("{{ .Prompt }}", "{{ messages }}", None, None), GoTemplateRenderer
    )
