"""Property tests for the Modelfile parser (hypothesis).

* Writing commands and parsing the text back gives the same commands, for any
  value the grammar can express (the one it cannot, a line ending in
  ``\"\"\"`` before the value's last line, is left out, as ``_quote`` says).
* Any text or bytes either parse or raise :class:`ModelfileError` whose line
  lies within the text; never another exception.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llamaport.storage.modelfile import (
    MESSAGE_ROLES,
    Command,
    Modelfile,
    ModelfileError,
    parse_modelfile,
)

_TEXT = st.text(st.characters(exclude_characters="\r\ufeff", exclude_categories=["Cs"]))

_MARK = '"""'


def _writable(value: str) -> bool:
    """No line of ``value`` but its last closes a triple-quoted value early."""
    lines = value.split("\n")[:-1]
    prefix = ""
    for line in lines:
        prefix += line
        if (_MARK + prefix).strip().endswith(_MARK) and len((_MARK + prefix).strip()) >= 6:
            return False
        prefix += "\n"
    return True


_VALUE = _TEXT.filter(_writable)
_NONEMPTY = _VALUE.filter(lambda v: v.strip() != "")

_PARAMETERS = st.one_of(
    st.tuples(st.just("temperature"), st.floats(0, 2).map(repr)),
    st.tuples(st.just("num_ctx"), st.integers(1, 1 << 20).map(str)),
    st.tuples(st.just("use_mmap"), st.sampled_from(["true", "false"])),
    st.tuples(st.just("stop"), _NONEMPTY),
)

_COMMANDS = st.one_of(
    st.builds(Command, st.sampled_from(["from", "adapter"]), _NONEMPTY),
    st.builds(Command, st.sampled_from(["template", "system", "license"]), _VALUE),
    st.builds(lambda role, v: Command("message", v, role), st.sampled_from(MESSAGE_ROLES), _VALUE),
    st.builds(
        Command,
        st.just("requires"),
        st.from_regex(r"v?(0|[1-9][0-9]{0,3})\.[0-9]\.[0-9]", fullmatch=True),
    ),
    _PARAMETERS.map(lambda kv: Command("parameter", kv[1], kv[0])),
)


@settings(max_examples=300)
@given(first=_NONEMPTY, rest=st.lists(_COMMANDS, max_size=8))
def test_written_commands_parse_back_the_same(first: str, rest: list[Command]) -> None:
    commands = (Command("from", first), *rest)
    text = str(Modelfile(commands))
    assert parse_modelfile(text).commands == commands


_WORDS = st.sampled_from(
    [
        *("FROM ", "PARAMETER ", "TEMPLATE ", "MESSAGE user ", "REQUIRES ", "SYSTEM "),
        *('"""', '"', "\n", "#", " ", "\t", "\r", "num_ctx ", "stop ", "x", "1.5", "\ufeff"),
    ]
)
_NEAR_MODELFILES = st.lists(st.one_of(_WORDS, st.text(max_size=4)), max_size=30).map("".join)


def _check(source: str | bytes, line_count: int) -> None:
    try:
        parse_modelfile(source)
    except ModelfileError as exc:
        assert 0 <= exc.line <= line_count + 1, (exc.line, line_count)


@settings(max_examples=500)
@given(_NEAR_MODELFILES)
def test_any_text_parses_or_names_a_line(text: str) -> None:
    _check(text, text.count("\n") + text.count("\r"))


@settings(max_examples=300)
@given(
    st.one_of(
        st.binary(max_size=64),
        st.tuples(st.sampled_from([b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf"]), st.binary()).map(
            b"".join
        ),
    )
)
def test_any_bytes_parse_or_raise_modelfile_error(data: bytes) -> None:
    _check(data, data.count(b"\n") + data.count(b"\r") + data.count(b"\x00"))


def test_truncated_utf16_is_a_modelfile_error() -> None:
    """Found by the property above: an odd byte after a UTF-16 BOM raised UnicodeDecodeError."""
    for data in (b"\xff\xfeF\x00R", b"\xfe\xff\x00"):
        with pytest.raises(ModelfileError, match=r"^not UTF-16-"):
            parse_modelfile(data)
