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

import importlib.util
import io
import re
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from llamaport.compat.cli.format import show_info
from llamaport.compat.cli.repl import HTTPBackend, RunOptions, Session, run_repl
from llamaport.compat.client import Client, JSONObject
from tests.conftest import MODEL, Server

FAST: dict[str, Any] = {"num_predict": 6, "temperature": 0}
"""Options every session starts with: short, deterministic replies."""

MISSING_MODEL = "no-such-model:latest"

TIMING_LABELS = (
    "total duration",
    "load duration",
    "prompt eval count",
    "prompt eval duration",
    "prompt eval rate",
    "eval count",
    "eval duration",
    "eval rate",
)
DURATION = r"(\d+h)?(\d+m)?\d+(\.\d+)?(ns|µs|ms|s)"
TIMING_VALUE = {
    "total duration": DURATION,
    "load duration": DURATION,
    "prompt eval count": r"\d+ token\(s\)",
    "prompt eval duration": DURATION,
    "prompt eval rate": r"\d+\.\d\d tokens/s",
    "eval count": r"\d+ token\(s\)",
    "eval duration": DURATION,
    "eval rate": r"\d+\.\d\d tokens/s",
}


class Harness:
    """A :class:`Session` wired to the real server, writing to string buffers.

    Word wrap is off unless asked for, so ``out`` holds each reply's exact text.
    """

    def __init__(self, url: str, out: io.StringIO | None = None, **opts: Any) -> None:
        opts.setdefault("model", MODEL)
        opts.setdefault("word_wrap", False)
        opts.setdefault("options", dict(FAST))
        self.client = Client(url)
        self.out = out if out is not None else io.StringIO()
        self.err = io.StringIO()
        self.backend = HTTPBackend(self.client, self.out, color=False, width=80)
        self.session = Session(RunOptions(**opts), self.backend, self.out, self.err)

    def feed(self, *lines: str) -> list[bool]:
        return [self.session.feed(line) for line in lines]

    def roles(self) -> list[str]:
        return [str(m["role"]) for m in self.session.messages]

    def user_messages(self) -> list[str]:
        return [str(m["content"]) for m in self.session.messages if m["role"] == "user"]

    def replies(self) -> list[str]:
        return [str(m["content"]) for m in self.session.messages if m["role"] == "assistant"]

    def printed_turns(self) -> str:
        """What ``out`` must hold after the kept turns: each reply and a blank line."""
        return "".join(reply + "\n\n" for reply in self.replies())

    def show(self) -> JSONObject:
        """The server's own ``/api/show`` answer for this session's settings."""
        opts = self.session.opts
        return self.client.show(opts.model, system=opts.system, options=opts.options)

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def repl(server: Server) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(**opts: Any) -> Harness:
        harness = Harness(server.url, **opts)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()


def timing_block(text: str) -> dict[str, str]:
    """Parse a ``--verbose`` block, checking its layout line by line."""
    values: dict[str, str] = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        label, sep, value = line.partition(":")
        assert sep, line
        assert label in TIMING_LABELS, line
        assert label not in values, line
        assert line[: len(label) + 1].ljust(22) == line[:22], line  # values start in column 22
        assert line[22:] == value.lstrip(), line
        assert re.fullmatch(TIMING_VALUE[label], value.lstrip()), line
        values[label] = value.lstrip()
    order = [label for label in TIMING_LABELS if label in values]
    assert list(values) == order
    return values


def eval_count(block: dict[str, str]) -> int:
    return int(block["eval count"].split()[0])


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


# -- /clear, /bye, unknown commands, help -------------------------------------------


def test_clear_keeps_system_message(repl: Callable[..., Harness]) -> None:
    h = repl(system="Be nice.")
    h.feed("hello")
    turn = h.printed_turns()
    h.feed("/clear")
    assert h.out.getvalue() == turn + "Cleared session context\n"
    assert h.session.messages == [{"role": "system", "content": "Be nice."}]
    h.feed("again")
    assert h.roles() == ["system", "user", "assistant"]
    assert h.user_messages() == ["again"]


def test_clear_without_system_empties_history(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("hello", "/clear")
    assert h.session.messages == []


@pytest.mark.parametrize("line", ["/bye", "/exit", "/bye now"])
def test_exit_commands(repl: Callable[..., Harness], line: str) -> None:
    h = repl()
    assert h.feed(line) == [False]
    assert h.out.getvalue() == ""
    assert h.err.getvalue() == ""


def test_exit_keeps_history_of_earlier_turns(repl: Callable[..., Harness]) -> None:
    h = repl()
    assert h.feed("hello", "/bye") == [True, False]
    assert h.roles() == ["user", "assistant"]


@pytest.mark.parametrize(
    ("line", "output"),
    [
        ("/foo", "Unknown command '/foo'. Type /? for help\n"),
        ("/ bar", "Unknown command '/'. Type /? for help\n"),
        ("/show bogus", "Unknown command '/show bogus'. Type /? for help\n"),
    ],
    ids=["unknown", "bare-slash", "unknown-show"],
)
def test_unknown_commands(repl: Callable[..., Harness], line: str, output: str) -> None:
    h = repl()
    assert h.feed(line) == [True]
    assert h.out.getvalue() == output
    assert h.err.getvalue() == ""
    assert h.session.messages == []


@pytest.mark.parametrize(
    ("line", "first_line"),
    [
        ("/?", "Available Commands:\n  /set            Set session variables\n"),
        ("/help", "Available Commands:\n  /set            Set session variables\n"),
        ("/? set", "Available Commands:\n  /set parameter ...     Set a parameter\n"),
        ("/help /set", "Available Commands:\n  /set parameter ...     Set a parameter\n"),
        ("/help show", "Available Commands:\n  /show info         Show details for this model\n"),
        ("/? shortcuts", "Available keyboard shortcuts:\n"),
        ("/? shortcut", "Available keyboard shortcuts:\n"),
    ],
    ids=lambda v: v.split("\n")[0],
)
def test_help(repl: Callable[..., Harness], line: str, first_line: str) -> None:
    h = repl()
    assert h.feed(line) == [True]
    assert h.err.getvalue().startswith(first_line)
    assert h.out.getvalue() == ""
    assert h.session.messages == []


def test_help_lists_every_command(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("/?")
    for command in ("/set", "/show", "/clear", "/bye", "/?, /help", "/? shortcuts"):
        assert f"  {command} " in h.err.getvalue()
    assert 'Use """ to begin a multi-line message.' in h.err.getvalue()


def test_help_set_lists_every_set_command(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("/? set")
    for command in ("parameter", "system", "history", "nohistory", "wordwrap", "nowordwrap"):
        assert f"  /set {command} " in h.err.getvalue()
    for command in ("format json", "noformat", "verbose", "quiet", "think", "nothink"):
        assert f"  /set {command} " in h.err.getvalue()


def test_help_for_unknown_topic_prints_nothing(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("/? nothing")
    assert h.out.getvalue() == ""
    assert h.err.getvalue() == ""


# -- /show -------------------------------------------------------------------------


def model_parameters(resp: JSONObject) -> str:
    """The ``Model defined parameters`` section for a real ``/api/show`` answer."""
    parameters = str(resp.get("parameters") or "")
    if not parameters:
        return (
            "Model defined parameters:\n"
            "  No additional parameters were specified for this model.\n\n"
        )
    lines = "".join(f"  {line}\n" for line in parameters.split("\n"))
    return f"Model defined parameters:\n{lines}\n"


def test_show_without_topic_prints_usage(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("/show")
    assert h.out.getvalue() == ""
    assert h.err.getvalue().startswith("Available Commands:\n  /show info")


def test_show_parameters_lists_model_and_user_values(repl: Callable[..., Harness]) -> None:
    h = repl(options={})
    h.feed("/show parameters")
    resp = h.show()
    assert h.out.getvalue() == model_parameters(resp)
    assert "User defined parameters" not in h.out.getvalue()

    h = repl(options={})
    h.feed("/set parameter temperature 0.7", "/set parameter stop <a> <b>", "/show parameters")
    assert h.out.getvalue() == (
        "Set parameter 'temperature' to '0.7'\n"
        "Set parameter 'stop' to '<a>, <b>'\n"
        + model_parameters(h.show())
        + "User defined parameters:\n"
        "  temperature                    0.7\n"
        "  stop                           [<a> <b>]\n"
        "\n"
    )


def test_show_system(repl: Callable[..., Harness]) -> None:
    h = repl()
    assert "system" not in h.show()  # the model itself sets no system message
    h.feed("/show system")
    assert h.out.getvalue() == "No system message was specified for this model.\n"

    h = repl()
    h.feed("/set system Be terse.", "/show system")
    assert h.out.getvalue() == "Set system message.\nBe terse.\n\n"


def test_show_template(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("/show template")
    template = h.show().get("template")
    assert isinstance(template, str) and template
    assert h.out.getvalue() == template + "\n"


def test_show_license(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("/show license")
    license_text = h.show().get("license")
    expected = license_text or "No license was specified for this model."
    assert h.out.getvalue() == expected + "\n"


def test_show_modelfile(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("/show modelfile")
    modelfile = str(h.show()["modelfile"])
    assert "\nFROM " in modelfile
    assert h.out.getvalue() == modelfile + "\n"


def test_show_info_goes_to_stderr(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("/show info")
    info = h.err.getvalue()
    assert info == show_info(h.show())
    assert info.startswith("  Model\n    architecture    ")
    assert "    parameters      " in info
    assert "    quantization    " in info
    assert h.out.getvalue() == ""


def test_show_info_includes_the_session_system_message(repl: Callable[..., Harness]) -> None:
    """``/show`` tells the server the session's system message, as Ollama does."""
    h = repl()
    h.feed("/set system Be terse.", "/show info")
    info = h.err.getvalue()
    assert info == show_info(h.show())
    assert "\n  System\n    Be terse.    \n" in info


def test_show_for_missing_model_reports_the_error(repl: Callable[..., Harness]) -> None:
    h = repl(model=MISSING_MODEL)
    assert h.feed("/show info") == [True]
    assert h.out.getvalue() == (f"error: couldn't get model: model '{MISSING_MODEL}' not found\n")
    assert h.err.getvalue() == ""


def test_show_does_not_touch_the_history(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("hello")
    kept = list(h.session.messages)
    h.feed("/show info", "/show parameters", "/show system")
    assert h.session.messages == kept


# -- history toggle and Ctrl+C ------------------------------------------------------


def test_history_toggle_reaches_terminal_loop(repl: Callable[..., Harness]) -> None:
    calls: list[bool] = []
    h = repl()
    h.session.set_history = calls.append
    h.feed("/set nohistory", "/set history")
    assert calls == [False, True]
    assert h.out.getvalue() == ""


def test_interrupt_discards_open_block(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed('"""half a thought')
    h.session.interrupt()
    assert h.out.getvalue() == "\nUse Ctrl + d or /bye to exit.\n"
    assert h.session.prompt == ">>> "
    h.feed("fresh start")
    assert h.user_messages() == ["fresh start"]
    assert h.roles() == ["user", "assistant"]


class CtrlCOnFirstWrite(io.StringIO):
    """Output that delivers a real SIGINT (Ctrl+C) once the reply starts printing."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        written = super().write(text)
        if self.armed:
            self.armed = False
            signal.raise_signal(signal.SIGINT)
        return written


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """Python's own SIGINT handler: Ctrl+C raises KeyboardInterrupt."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("sigint_raises")
def test_ctrl_c_cancels_the_reply(repl: Callable[..., Harness]) -> None:
    out = CtrlCOnFirstWrite()
    h = repl(out=out, options={"num_predict": 64, "temperature": 0})
    out.armed = True
    assert h.feed("Tell me a long story") == [True]
    # printing stopped at the first chunk; the session ended the line
    assert len(out.writes) == 2
    assert out.writes[1] == "\n"
    assert out.getvalue() == "".join(out.writes)
    # the cancelled reply is not kept, the question is
    assert h.session.messages == [{"role": "user", "content": "Tell me a long story"}]
    assert h.err.getvalue() == ""
    # and the session goes on with the next turn
    h.session.opts.options["num_predict"] = 4
    h.feed("hi")
    assert h.roles() == ["user", "user", "assistant"]
    assert h.user_messages() == ["Tell me a long story", "hi"]


# -- the terminal loop --------------------------------------------------------------


def test_run_repl_loop_handles_ctrl_c_and_ctrl_d(
    repl: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Ctrl+C at the prompt drops a half-typed block and goes on; Ctrl+D ends it."""
    events: list[str | BaseException] = [
        "/set verbose",
        KeyboardInterrupt(),
        '"""half a',
        KeyboardInterrupt(),
        "hi",
        EOFError(),
    ]
    prompts: list[str] = []

    def keyboard(prompt: str) -> str:
        prompts.append(prompt)
        event = events.pop(0)
        if isinstance(event, BaseException):
            raise event
        return event

    monkeypatch.setattr("builtins.input", keyboard)
    h = repl()
    history = tmp_path / "history"
    assert run_repl(h.session, history, h.out) == 0
    assert events == []
    assert prompts == [">>> ", ">>> ", ">>> ", "... ", ">>> ", ">>> "]
    hint = "\nUse Ctrl + d or /bye to exit.\n"
    assert h.out.getvalue() == "Set 'verbose' mode.\n" + hint + hint + h.printed_turns() + "\n"
    assert h.user_messages() == ["hi"]
    timing_block(h.err.getvalue())
    assert history.exists() == (importlib.util.find_spec("readline") is not None)


def test_run_repl_reads_piped_lines_until_bye(
    repl: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin = io.StringIO('"""two\nlines"""\n/bye\nnever read\n')
    monkeypatch.setattr(sys, "stdin", stdin)
    h = repl()
    assert run_repl(h.session, None, h.out) == 0
    assert h.user_messages() == ["two\nlines"]
    assert h.roles() == ["user", "assistant"]
    assert h.out.getvalue() == h.printed_turns()
    assert stdin.read() == "never read\n"


def test_run_repl_ends_at_end_of_input(
    repl: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n"))
    h = repl()
    assert run_repl(h.session, None, h.out) == 0
    assert h.user_messages() == ["hello"]
    assert h.out.getvalue() == h.printed_turns() + "\n"
