"""The interactive chat's commands (/clear, /bye, help, /show), Ctrl+C and the
terminal loop, against a real server."""

from __future__ import annotations

import importlib.util
import io
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llamaport.compat.cli.format import show_info
from llamaport.compat.cli.repl import run_repl
from llamaport.compat.client import ShowResponse
from llamaport.storage.store import Store
from tests.compat.cli._repl import (
    MISSING_MODEL,
    Harness,
    timing_block,
)
from tests.conftest import MODEL, Server

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
    for command in ("/set", "/show", "/load <model>", "/save <model>", "/list", "/clear"):
        assert f"  {command} " in h.err.getvalue()
    for command in ("/history", "/bye", "/?, /help", "/? shortcuts"):
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


def model_parameters(resp: ShowResponse) -> str:
    """The ``Model defined parameters`` section for a real ``/api/show`` answer."""
    parameters = resp.parameters
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
    assert not h.show().system  # the model itself sets no system message
    h.feed("/show system")
    assert h.out.getvalue() == "No system message was specified for this model.\n"

    h = repl()
    h.feed("/set system Be terse.", "/show system")
    assert h.out.getvalue() == "Set system message.\nBe terse.\n\n"


def test_show_template(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("/show template")
    template = h.show().template
    assert isinstance(template, str) and template
    assert h.out.getvalue() == template + "\n"


def test_show_license(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("/show license")
    license_text = h.show().license
    expected = license_text or "No license was specified for this model."
    assert h.out.getvalue() == expected + "\n"


def test_show_modelfile(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("/show modelfile")
    modelfile = h.show().modelfile
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


# -- /load, /save, /list ------------------------------------------------------------


def test_load_switches_model_and_starts_over(repl: Callable[..., Harness], server: Server) -> None:
    Store(server.home / "models").copy(MODEL, "repl-load:latest")
    h = repl(system="Be brief.")
    h.feed("hello")
    before = h.out.getvalue()
    h.feed("/load repl-load")
    assert h.out.getvalue() == before + "Loading model 'repl-load'\n"
    assert h.session.opts.model == "repl-load"
    assert h.session.messages == [{"role": "system", "content": "Be brief."}]
    h.feed("again")
    assert h.roles() == ["system", "user", "assistant"]


def test_load_of_a_missing_model_keeps_the_session(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("hello")
    kept = list(h.session.messages)
    h.feed(f"/load {MISSING_MODEL}")
    assert h.out.getvalue().endswith(
        f"Loading model '{MISSING_MODEL}'\nCouldn't find model '{MISSING_MODEL}'\n"
    )
    assert (h.session.opts.model, h.session.messages) == (MODEL, kept)


def test_save_creates_a_model_with_the_session(repl: Callable[..., Harness]) -> None:
    h = repl(system="You are Mario.")
    h.feed("/set parameter temperature 0.25", "hello")
    h.feed("/save repl-saved")
    assert h.out.getvalue().endswith("Created new model 'repl-saved'\n")
    shown = h.client.show("repl-saved")
    assert shown.system == "You are Mario."
    assert "temperature                    0.25" in shown.parameters
    assert [m["role"] for m in shown.messages or []] == ["user", "assistant"]
    assert (shown.messages or [])[0]["content"] == "hello"


def test_save_and_load_need_one_name(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("/save", "/load a b", "/save not//valid")
    assert h.out.getvalue() == (
        "Usage:\n  /save <modelname>\n"
        "Usage:\n  /load <modelname>\n"
        "error: The model name 'not//valid' is invalid\n"
    )


def test_list_prints_the_models_table(repl: Callable[..., Harness]) -> None:
    h = repl()
    h.feed("/list")
    lines = h.out.getvalue().splitlines()
    assert lines[0].split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    assert any(line.startswith(MODEL) for line in lines[1:])
