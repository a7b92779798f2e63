"""Word wrapping and thinking markers of streamed replies."""

from __future__ import annotations

import io

import pytest

from llamaport.compat.cli.display import ResponsePrinter, WordWrapper
from llamaport.compat.client import ToolCall

SENTENCE = "The quick brown fox jumps over the lazy dog"


def _wrap(chunks: list[str], width: int | None) -> str:
    out = io.StringIO()
    wrapper = WordWrapper(out, width)
    for chunk in chunks:
        wrapper.write(chunk)
    wrapper.flush()
    return out.getvalue()


@pytest.mark.parametrize(
    ("chunks", "width", "expected"),
    [
        ([SENTENCE], None, SENTENCE),
        ([SENTENCE], 9, SENTENCE),  # too narrow to wrap at all, as in Ollama
        ([SENTENCE], 20, "The quick brown\nfox jumps over \nthe lazy dog"),
        (
            ["The qu", "ick bro", "wn fox jumps o", "ver the lazy dog"],
            20,
            "The quick brown\nfox jumps over \nthe lazy dog",
        ),
        (["line one\nline two"], 20, "line one\nline two"),
        (["abcdefghijklmnopqrstuvwxyz"], 15, "abcdefghij\nklmnopqrst\nuvwxyz"),
        (["日本語のテキスト"], 14, "日本語の\nテキスト"),
    ],
    ids=[
        "no-wrap",
        "narrow-terminal",
        "wrap",
        "wrap-across-chunks",
        "newlines",
        "long-word",
        "wide-glyphs",
    ],
)
def test_word_wrapper(chunks: list[str], width: int | None, expected: str) -> None:
    assert _wrap(chunks, width) == expected


def test_wrapper_holds_partial_word_until_flush() -> None:
    out = io.StringIO()
    wrapper = WordWrapper(out, 40)
    wrapper.write("Hello wor")
    assert out.getvalue() == "Hello "
    wrapper.flush()
    assert out.getvalue() == "Hello wor"


def test_printer_marks_thinking() -> None:
    out = io.StringIO()
    printer = ResponsePrinter(out, width=None)
    printer.feed(thinking="Let me think.")
    printer.feed(thinking=" Done")
    printer.feed(content="Answer")
    printer.feed(content=" here.")
    printer.finish()
    assert out.getvalue() == "Thinking...\nLet me think. Done\n...done thinking.\n\nAnswer here."
    assert printer.thinking == "Let me think. Done"
    assert printer.content == "Answer here."


def test_printer_no_extra_newline_when_thinking_ends_with_one() -> None:
    out = io.StringIO()
    printer = ResponsePrinter(out, width=None)
    printer.feed(thinking="hmm\n")
    printer.feed(content="ok")
    assert out.getvalue() == "Thinking...\nhmm\n...done thinking.\n\nok"


def test_printer_hides_thinking() -> None:
    out = io.StringIO()
    printer = ResponsePrinter(out, width=None, hide_thinking=True)
    printer.feed(thinking="secret")
    printer.feed(content="Answer")
    assert out.getvalue() == "Answer"
    assert printer.thinking == ""


def test_printer_colors_thinking_on_a_terminal() -> None:
    out = io.StringIO()
    printer = ResponsePrinter(out, width=None, color=True)
    printer.feed(thinking="x")
    printer.feed(content="y")
    grey, bold, reset = "\x1b[38;5;245m", "\x1b[1m", "\x1b[0m"
    assert out.getvalue() == (
        f"{grey}{bold}Thinking...\n{reset}{grey}x\n{grey}{bold}...done thinking.\n\n{reset}y"
    )


def test_printer_reports_tool_calls() -> None:
    out = io.StringIO()
    printer = ResponsePrinter(out, width=None)
    call = {"function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}}
    printer.feed(tool_calls=[ToolCall.model_validate(call)])
    assert out.getvalue() == (
        '  Model called a non-existent function \'get_weather()\' with arguments: {"city":"Tokyo"}'
    )
