"""The REPL's own logic: multi-line input, ``/`` commands and the history it keeps.

``Session`` reaches the server only through its two-method ``Backend``. These
tests pass a scripted backend that records what the session asks for and
answers with fixed replies: what is under test is the session's bookkeeping
and output, not HTTP (the CLI's end-to-end tests run against a real server).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from llamaport.compat.cli.repl import Reply, RunOptions, Session, run_repl
from llamaport.compat.client import JSONObject, ResponseError

METRICS = {
    "done": True,
    "total_duration": 2_500_000_000,
    "eval_count": 10,
    "eval_duration": 1_000_000_000,
}


class ScriptedBackend:
    """Records requests; answers ``send`` from ``replies`` (``None`` = cancelled)."""

    def __init__(self, replies: list[Reply | Exception | None] | None = None) -> None:
        self.replies = list(replies or [])
        self.sent: list[JSONObject] = []
        self.show_response: JSONObject = {}

    def show(self, opts: RunOptions) -> JSONObject:
        return self.show_response

    def send(self, body: JSONObject, opts: RunOptions) -> Reply | None:
        self.sent.append(body)
        reply = self.replies.pop(0) if self.replies else _reply("ok")
        if isinstance(reply, Exception):
            raise reply
        return reply


def _reply(text: str) -> Reply:
    return Reply(message={"role": "assistant", "content": text}, metrics=dict(METRICS))


class Harness:
    def __init__(self, backend: ScriptedBackend | None = None, **opts: Any) -> None:
        self.backend = backend or ScriptedBackend()
        self.out = io.StringIO()
        self.err = io.StringIO()
        self.session = Session(RunOptions(model="m", **opts), self.backend, self.out, self.err)

    def feed(self, *lines: str) -> bool:
        result = True
        for line in lines:
            result = self.session.feed(line)
        return result

    def user_messages(self) -> list[str]:
        return [b["messages"][-1]["content"] for b in self.backend.sent]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["hello"], ["hello"]),
        (['"""one line"""'], ["one line"]),
        (['"""first', "second", 'third"""'], ["first\nsecond\nthird"]),
        (['"""', "body", '"""'], ["\nbody\n"]),
        (['"""start', "/bye inside a block", 'end"""'], ["start\n/bye inside a block\nend"]),
        (["", "   "], ["   "]),
    ],
    ids=["plain", "inline-block", "block", "bare-quotes", "commands-are-text-in-blocks", "blank"],
)
def test_multiline_assembly(lines: list[str], expected: list[str]) -> None:
    h = Harness()
    h.feed(*lines)
    assert h.user_messages() == expected


def test_prompt_switches_to_continuation_inside_block() -> None:
    h = Harness()
    assert h.session.prompt == ">>> "
    h.feed('"""open')
    assert h.session.prompt == "... "
    h.feed('close"""')
    assert h.session.prompt == ">>> "


def test_history_accumulates_replies() -> None:
    h = Harness(ScriptedBackend([_reply("Hi!"), _reply("Fine.")]))
    h.feed("hello", "how are you?")
    assert h.backend.sent[1]["messages"] == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": "how are you?"},
    ]
    assert h.out.getvalue() == "\n\n\n\n"
    assert h.err.getvalue() == ""


def test_cancelled_reply_is_not_kept() -> None:
    h = Harness(ScriptedBackend([None]))
    h.feed("tell me a long story")
    assert h.session.messages == [{"role": "user", "content": "tell me a long story"}]
    assert h.out.getvalue() == "\n"


def test_failed_request_drops_the_unanswered_message() -> None:
    h = Harness(ScriptedBackend([ResponseError(500, "boom")]))
    h.feed("hello")
    assert h.session.messages == []
    assert h.err.getvalue() == "Error: boom\n"


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
def test_set_parameter(line: str, output: str, options: dict[str, Any]) -> None:
    h = Harness()
    assert h.feed(line)
    assert h.out.getvalue() == output
    assert h.session.opts.options == options
    assert h.backend.sent == []


def test_set_parameter_without_value_prints_usage() -> None:
    h = Harness()
    h.feed("/set parameter seed")
    assert h.out.getvalue() == ""
    assert h.err.getvalue().startswith("Available Parameters:\n  /set parameter seed <int>")


def test_parameters_are_sent_with_messages() -> None:
    h = Harness()
    h.feed("/set parameter seed 42", "/set format json", "hi")
    assert h.backend.sent[0] == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "format": "json",
        "options": {"seed": 42},
    }
    h.feed("/set noformat", "again")
    assert "format" not in h.backend.sent[1]


@pytest.mark.parametrize(
    ("line", "output"),
    [
        ("/set verbose", "Set 'verbose' mode.\n"),
        ("/set quiet", "Set 'quiet' mode.\n"),
        ("/set wordwrap", "Set 'wordwrap' mode.\n"),
        ("/set nowordwrap", "Set 'nowordwrap' mode.\n"),
        ("/set format json", "Set format to 'json' mode.\n"),
        ("/set format xml", "Invalid or missing format. For 'json' mode use '/set format json'\n"),
        ("/set noformat", "Disabled format.\n"),
        ("/set think", "Set 'think' mode.\n"),
        ("/set think high", "Set 'think' mode to 'high'.\n"),
        ("/set nothink", "Set 'nothink' mode.\n"),
        ("/set history", ""),
        ("/set bogus", "Unknown command '/set bogus'. Type /? for help\n"),
    ],
    ids=lambda v: v,
)
def test_set_messages(line: str, output: str) -> None:
    h = Harness()
    h.feed(line)
    assert h.out.getvalue() == output


def test_verbose_prints_timings_after_each_reply() -> None:
    h = Harness()
    h.feed("/set verbose", "hi")
    assert h.err.getvalue() == (
        "total duration:       2.5s\n"
        "eval count:           10 token(s)\n"
        "eval duration:        1s\n"
        "eval rate:            10.00 tokens/s\n"
    )
    h.feed("/set quiet", "again")
    assert h.err.getvalue().count("total duration") == 1


def test_set_system_replaces_trailing_system_message() -> None:
    h = Harness()
    h.feed("/set system You are   a pirate.")
    h.feed("/set system You are a robot.")
    assert h.out.getvalue() == "Set system message.\nSet system message.\n"
    assert h.session.messages == [{"role": "system", "content": "You are a robot."}]
    h.feed("hi")
    assert h.backend.sent[0]["messages"][0] == {"role": "system", "content": "You are a robot."}


def test_set_system_multiline() -> None:
    h = Harness()
    h.feed('/set system """Be brief.', 'Answer in French."""')
    assert h.session.opts.system == "Be brief.\nAnswer in French."
    assert h.out.getvalue() == "Set system message.\n"
    assert h.backend.sent == []


def test_clear_keeps_system_message() -> None:
    h = Harness(system="Be nice.")
    h.feed("hello", "/clear")
    assert h.out.getvalue().endswith("Cleared session context\n")
    assert h.session.messages == [{"role": "system", "content": "Be nice."}]


@pytest.mark.parametrize("line", ["/bye", "/exit"])
def test_exit_commands(line: str) -> None:
    h = Harness()
    assert h.feed(line) is False
    assert h.out.getvalue() == ""


@pytest.mark.parametrize(
    ("line", "output"),
    [
        ("/foo", "Unknown command '/foo'. Type /? for help\n"),
        ("/ bar", "Unknown command '/'. Type /? for help\n"),
        ("/show bogus", "Unknown command '/show bogus'. Type /? for help\n"),
    ],
    ids=["unknown", "bare-slash", "unknown-show"],
)
def test_unknown_commands(line: str, output: str) -> None:
    h = Harness()
    assert h.feed(line) is True
    assert h.out.getvalue() == output
    assert h.backend.sent == []


@pytest.mark.parametrize(
    ("line", "first_line"),
    [
        ("/?", "Available Commands:\n  /set            Set session variables\n"),
        ("/help", "Available Commands:\n  /set            Set session variables\n"),
        ("/? set", "Available Commands:\n  /set parameter ...     Set a parameter\n"),
        ("/help show", "Available Commands:\n  /show info         Show details for this model\n"),
        ("/? shortcuts", "Available keyboard shortcuts:\n"),
    ],
    ids=lambda v: v.split("\n")[0],
)
def test_help(line: str, first_line: str) -> None:
    h = Harness()
    h.feed(line)
    assert h.err.getvalue().startswith(first_line)
    assert h.out.getvalue() == ""


def test_help_lists_every_command() -> None:
    h = Harness()
    h.feed("/?")
    for command in ("/set", "/show", "/clear", "/bye", "/?, /help"):
        assert f"  {command} " in h.err.getvalue()
    assert 'Use """ to begin a multi-line message.' in h.err.getvalue()


def test_interrupt_discards_open_block() -> None:
    h = Harness()
    h.feed('"""half a thought')
    h.session.interrupt()
    assert h.out.getvalue() == "\nUse Ctrl + d or /bye to exit.\n"
    assert h.session.prompt == ">>> "
    h.feed("fresh start")
    assert h.user_messages() == ["fresh start"]


def test_show_parameters_lists_model_and_user_values() -> None:
    h = Harness()
    h.backend.show_response = {"parameters": 'stop                           "<|eot_id|>"'}
    h.feed("/set parameter temperature 0.7", "/show parameters")
    assert h.out.getvalue() == (
        "Set parameter 'temperature' to '0.7'\n"
        "Model defined parameters:\n"
        '  stop                           "<|eot_id|>"\n'
        "\n"
        "User defined parameters:\n"
        "  temperature                    0.7\n"
        "\n"
    )


@pytest.mark.parametrize(
    ("line", "response", "output"),
    [
        ("/show system", {}, "No system message was specified for this model.\n"),
        ("/show system", {"system": "Be terse."}, "Be terse.\n\n"),
        ("/show template", {"template": "{{ .Prompt }}"}, "{{ .Prompt }}\n"),
        ("/show template", {}, "No prompt template was specified for this model.\n"),
        ("/show license", {}, "No license was specified for this model.\n"),
        ("/show modelfile", {"modelfile": "FROM x\n"}, "FROM x\n\n"),
        (
            "/show parameters",
            {},
            "Model defined parameters:\n"
            "  No additional parameters were specified for this model.\n\n",
        ),
    ],
    ids=[
        "no-system",
        "system",
        "template",
        "no-template",
        "no-license",
        "modelfile",
        "no-parameters",
    ],
)
def test_show(line: str, response: JSONObject, output: str) -> None:
    h = Harness()
    h.backend.show_response = response
    h.feed(line)
    assert h.out.getvalue() == output


def test_show_info_goes_to_stderr() -> None:
    h = Harness()
    h.backend.show_response = {
        "details": {"family": "llama", "parameter_size": "1B", "quantization_level": "Q8_0"}
    }
    h.feed("/show info")
    assert h.err.getvalue() == (
        "  Model\n"
        "    architecture    llama    \n"
        "    parameters      1B       \n"
        "    quantization    Q8_0     \n"
        "\n"
    )


def test_session_system_prefers_user_set_value() -> None:
    h = Harness()
    h.backend.show_response = {"system": "model default"}
    h.feed("/set system mine", "/show system")
    assert h.out.getvalue() == "Set system message.\nmine\n\n"


def test_history_toggle_reaches_terminal_loop() -> None:
    calls: list[bool] = []
    h = Harness()
    h.session.set_history = calls.append
    h.feed("/set nohistory", "/set history")
    assert calls == [False, True]


def test_run_repl_loop_handles_ctrl_c_and_ctrl_d(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The terminal loop: Ctrl+C at the prompt keeps going, Ctrl+D ends it."""
    events: list[str | BaseException] = ["/set verbose", KeyboardInterrupt(), EOFError()]
    prompts: list[str] = []

    def fake_input(prompt: str) -> str:
        prompts.append(prompt)
        event = events.pop(0)
        if isinstance(event, BaseException):
            raise event
        return event

    monkeypatch.setattr("builtins.input", fake_input)
    h = Harness()
    assert run_repl(h.session, tmp_path / "history", h.out) == 0
    assert prompts == [">>> ", ">>> ", ">>> "]
    assert h.out.getvalue() == "Set 'verbose' mode.\n\nUse Ctrl + d or /bye to exit.\n\n"
