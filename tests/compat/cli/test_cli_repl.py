"""The interactive chat (``llamaport run MODEL``) against a real server.

Every session here talks to the shared ``llamaport serve`` process through the
real :class:`HTTPBackend` and :class:`Client`, so each chat turn is a real
streamed ``/api/chat`` reply from the real model. The model is tiny and often
wrong, so the tests assert on structure only: which messages the session keeps
(roles, the user's exact text, where system messages sit), the options it
holds, what it prints around a reply, and what the server's own answers imply
(an error for a request it refuses, a token count within ``num_predict``).
Replies are kept to a few tokens with ``temperature`` 0 so turns stay fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.compat.cli._repl import (
    FAST,
    MISSING_MODEL,
    Harness,
    eval_count,
    timing_block,
)

# -- multi-line input and the history it builds --------------------------------


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["hello"], "hello"),
        (['"""one line"""'], "one line"),
        (['"""first', "second", 'third"""'], "first\nsecond\nthird"),
        (['"""', "body", '"""'], "\nbody\n"),
        (['"""start', "/bye inside a block", 'end"""'], "start\n/bye inside a block\nend"),
        (["", "   "], "   "),
    ],
    ids=["plain", "inline-block", "block", "bare-quotes", "commands-are-text-in-blocks", "blank"],
)
def test_multiline_assembly(repl: Callable[..., Harness], lines: list[str], expected: str) -> None:
    h = repl()
    assert h.feed(*lines) == [True] * len(lines)
    assert h.roles() == ["user", "assistant"]
    assert h.user_messages() == [expected]
    assert h.out.getvalue() == h.printed_turns()
    assert h.err.getvalue() == ""


def test_prompt_switches_to_continuation_inside_block(repl: Callable[..., Harness]) -> None:
    h = repl()
    assert h.session.prompt == ">>> "
    h.feed('"""open')
    assert h.session.prompt == "... "
    assert h.session.messages == []  # nothing is sent while the block is open
    h.feed("middle")
    assert h.session.prompt == "... "
    h.feed('close"""')
    assert h.session.prompt == ">>> "
    assert h.user_messages() == ["open\nmiddle\nclose"]


def test_history_accumulates_replies(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("hello")
    first = list(h.session.messages)
    h.feed("how are you?")
    assert h.roles() == ["user", "assistant", "user", "assistant"]
    assert h.session.messages[:2] == first  # the first turn is kept as it was
    assert h.user_messages() == ["hello", "how are you?"]
    assert all(set(m) <= {"role", "content", "thinking"} for m in h.session.messages)
    assert h.out.getvalue() == h.printed_turns()
    assert h.err.getvalue() == ""
    # the next request carries the whole conversation
    assert h.session.request()["messages"] == h.session.messages


def test_failed_request_drops_the_unanswered_message(repl: Callable[..., Harness]) -> None:
    h = repl(model=MISSING_MODEL)
    assert h.feed("hello") == [True]
    assert h.session.messages == []
    assert h.out.getvalue() == "\n"
    assert h.err.getvalue() == f"Error: model '{MISSING_MODEL}' not found\n"


def test_failed_request_keeps_earlier_turns(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("hello")
    kept = list(h.session.messages)
    h.session.opts.model = MISSING_MODEL
    h.feed("still there?")
    assert h.session.messages == kept
    assert h.err.getvalue().startswith("Error: ")


# -- /set -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "output", "options"),
    [
        (
            "/set parameter temperature 0.5",
            "Set parameter 'temperature' to '0.5'\n",
            {"temperature": 0.5},
        ),
        ("/set parameter num_ctx 8192", "Set parameter 'num_ctx' to '8192'\n", {"num_ctx": 8192}),
        (
            "/set parameter stop <a> <b>",
            "Set parameter 'stop' to '<a>, <b>'\n",
            {"stop": ["<a>", "<b>"]},
        ),
        (
            "/set parameter use_mmap false",
            "Set parameter 'use_mmap' to 'false'\n",
            {"use_mmap": False},
        ),
        ("/set parameter x 1", "Couldn't set parameter: \"unknown parameter 'x'\"\n", {}),
        ("/set parameter num_ctx big", 'Couldn\'t set parameter: "invalid int value [big]"\n', {}),
        (
            "/set parameter top_p high",
            'Couldn\'t set parameter: "invalid float value [high]"\n',
            {},
        ),
    ],
    ids=["float", "int", "stop-list", "bool", "unknown", "bad-int", "bad-float"],
)
def test_set_parameter(
    repl: Callable[..., Harness], line: str, output: str, options: dict[str, Any]
) -> None:
    h = repl()
    assert h.feed(line) == [True]
    assert h.out.getvalue() == output
    assert h.session.opts.options == {**FAST, **options}
    for name, value in options.items():
        assert type(h.session.opts.options[name]) is type(value)
    assert h.session.messages == []


def test_set_parameter_without_value_prints_usage(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("/set parameter seed")
    assert h.out.getvalue() == ""
    assert h.err.getvalue().startswith("Available Parameters:\n  /set parameter seed <int>")
    assert h.session.opts.options == FAST


def test_parameters_reach_the_server(repl: Callable[..., Harness]) -> None:
    """A ``num_predict`` set mid-session caps the next reply the server streams."""
    h = repl(verbose=True)
    h.feed("/set parameter num_predict 2", "/set parameter seed 42", "Tell me a story")
    assert h.session.opts.options == {**FAST, "num_predict": 2, "seed": 42}
    assert h.roles() == ["user", "assistant"]
    block = timing_block(h.err.getvalue())
    assert 1 <= eval_count(block) <= 2
    assert h.session.request()["options"] == h.session.opts.options


def test_format_is_sent_until_noformat(repl: Callable[..., Harness]) -> None:
    """``/set format json`` goes out with the turn; ``/set noformat`` takes it back.

    The server decodes under a JSON grammar, so the reply to the formatted turn
    is the start of a JSON object whatever the model would have said.
    """
    h = repl()
    h.feed("/set format json", "hi")
    assert h.session.opts.format == "json"
    assert h.session.request()["format"] == "json"
    assert h.roles() == ["user", "assistant"]
    assert h.session.messages[-1]["content"].lstrip().startswith("{")
    h.feed("/set noformat", "again")
    assert h.session.opts.format is None
    assert "format" not in h.session.request()
    assert h.roles() == ["user", "assistant", "user", "assistant"]
    assert h.user_messages() == ["hi", "again"]
    assert h.err.getvalue() == ""


@pytest.mark.parametrize(
    ("line", "output"),
    [
        ("/set verbose", "Set 'verbose' mode.\n"),
        ("/set quiet", "Set 'quiet' mode.\n"),
        ("/set wordwrap", "Set 'wordwrap' mode.\n"),
        ("/set nowordwrap", "Set 'nowordwrap' mode.\n"),
        ("/set format json", "Set format to 'json' mode.\n"),
        ("/set format xml", "Invalid or missing format. For 'json' mode use '/set format json'\n"),
        ("/set format", "Invalid or missing format. For 'json' mode use '/set format json'\n"),
        ("/set noformat", "Disabled format.\n"),
        ("/set think", "Set 'think' mode.\n"),
        ("/set think high", "Set 'think' mode to 'high'.\n"),
        ("/set nothink", "Set 'nothink' mode.\n"),
        ("/set history", ""),
        ("/set nohistory", ""),
        ("/set bogus", "Unknown command '/set bogus'. Type /? for help\n"),
    ],
    ids=lambda v: v,
)
def test_set_messages(repl: Callable[..., Harness], line: str, output: str) -> None:
    h = repl()
    assert h.feed(line) == [True]
    assert h.out.getvalue() == output
    assert h.session.messages == []


@pytest.mark.parametrize(
    ("lines", "field", "value"),
    [
        (["/set verbose"], "verbose", True),
        (["/set verbose", "/set quiet"], "verbose", False),
        (["/set nowordwrap"], "word_wrap", False),
        (["/set nowordwrap", "/set wordwrap"], "word_wrap", True),
        (["/set format json"], "format", "json"),
        (["/set format json", "/set format xml"], "format", "json"),
        (["/set format json", "/set noformat"], "format", None),
        (["/set think"], "think", True),
        (["/set think high"], "think", "high"),
        (["/set nothink"], "think", False),
    ],
    ids=lambda v: " + ".join(v) if isinstance(v, list) else None,
)
def test_set_changes_session_options(
    repl: Callable[..., Harness], lines: list[str], field: str, value: Any
) -> None:
    h = repl()
    h.feed(*lines)
    assert getattr(h.session.opts, field) == value


def test_set_without_arguments_prints_usage(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("/set")
    assert h.out.getvalue() == ""
    assert h.err.getvalue().startswith("Available Commands:\n  /set parameter ...")


def test_verbose_prints_timings_after_each_reply(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("/set verbose", "hi")
    assert h.out.getvalue() == "Set 'verbose' mode.\n" + h.printed_turns()
    block = timing_block(h.err.getvalue())
    assert "total duration" in block
    assert 1 <= eval_count(block) <= FAST["num_predict"]
    h.feed("again")
    assert h.err.getvalue().count("total duration:") == 2
    second = h.err.getvalue()[h.err.getvalue().rindex("total duration:") :]
    assert 1 <= eval_count(timing_block(second)) <= FAST["num_predict"]
    h.feed("/set quiet", "once more")
    assert h.err.getvalue().count("total duration:") == 2
    assert h.user_messages() == ["hi", "again", "once more"]


def test_set_system_replaces_trailing_system_message(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("/set system You are   a pirate.")
    h.feed("/set system You are a robot.")
    assert h.out.getvalue() == "Set system message.\nSet system message.\n"
    assert h.session.messages == [{"role": "system", "content": "You are a robot."}]
    assert h.session.opts.system == "You are a robot."
    h.feed("hi")
    assert h.roles() == ["system", "user", "assistant"]
    assert h.session.messages[0] == {"role": "system", "content": "You are a robot."}
    assert h.user_messages() == ["hi"]


def test_set_system_mid_conversation_goes_after_the_last_turn(
    repl: Callable[..., Harness],
) -> None:
    h = repl()
    h.feed("hello", "/set system Be brief.", "/set system Be terse.", "hi")
    assert h.roles() == ["user", "assistant", "system", "user", "assistant"]
    assert h.session.messages[2] == {"role": "system", "content": "Be terse."}
    assert h.user_messages() == ["hello", "hi"]


def test_set_system_multiline(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed('/set system """Be brief.')
    assert h.session.prompt == "... "
    h.feed('Answer in French."""')
    assert h.session.prompt == ">>> "
    assert h.session.opts.system == "Be brief.\nAnswer in French."
    assert h.out.getvalue() == "Set system message.\n"
    assert h.session.messages == [{"role": "system", "content": "Be brief.\nAnswer in French."}]
    h.feed("hi")
    assert h.roles() == ["system", "user", "assistant"]


def test_set_system_multiline_adds_rather_than_replaces(repl: Callable[..., Harness]) -> None:
    """Only a one-line ``/set system`` replaces a trailing system message."""
    h = repl()
    h.feed("/set system Be brief.", '/set system """Be', 'terse."""')
    assert h.session.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Be\nterse."},
    ]
    assert h.session.opts.system == "Be\nterse."


def test_set_system_one_line_block(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed('/set system """Be brief."""')
    assert h.session.prompt == ">>> "
    assert h.session.messages == [{"role": "system", "content": "Be brief."}]


def test_system_from_options_opens_the_history(repl: Callable[..., Harness]) -> None:
    h = repl(system="Be nice.")
    assert h.session.messages == [{"role": "system", "content": "Be nice."}]
    h.feed("hello")
    assert h.roles() == ["system", "user", "assistant"]
