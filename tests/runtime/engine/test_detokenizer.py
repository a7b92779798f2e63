"""The incremental detokenizer and stop-string hold-back, on byte pieces."""

from __future__ import annotations

import pytest

from llamaport.runtime.engine.detokenizer import Detokenizer, StopMatcher


def _detok(pieces: list[bytes]) -> tuple[list[str], str]:
    table = dict(enumerate(pieces))
    d = Detokenizer(table.__getitem__)
    out = [d.feed(i) for i in range(len(pieces))]
    return out, d.flush()


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        ([b"\xe4\xbd", b"\xa0", b"\xe5\xa5\xbd"], ["", "你", "好"]),
        ([b"\xf0\x9f", b"\x99\x82", b"!"], ["", "🙂", "!"]),
        ([b"\xf0", b"\x9f", b"\x99", b"\x82"], ["", "", "", "🙂"]),
        ([b"a", b" b", b"c"], ["a", " b", "c"]),
    ],
    ids=["cjk-split", "emoji-split", "emoji-byte-per-token", "ascii"],
)
def test_multibyte_characters_split_across_tokens_come_out_whole(
    pieces: list[bytes], expected: list[str]
) -> None:
    out, tail = _detok(pieces)
    assert out == expected
    assert tail == ""


def test_long_pieces_are_kept_whole() -> None:
    long = b" " * 81 + b"x" * 40
    out, _ = _detok([b"def f():\n", long, b"return 1"])
    assert out[1] == long.decode()
    assert len(out[1]) == 121


def test_an_unfinished_character_is_dropped_at_the_end() -> None:
    out, tail = _detok([b"ok", b"\xe4\xbd"])
    assert out == ["ok", ""]
    assert tail == ""


def test_invalid_bytes_mid_stream_become_replacements() -> None:
    out, _ = _detok([b"a\xff", b"b"])
    assert out == ["a\ufffd", "b"]


def _stream(stops: list[str], texts: list[str]) -> tuple[list[str], bool, str]:
    m = StopMatcher(stops)
    emitted: list[str] = []
    for text in texts:
        out, hit = m.push(text)
        emitted.append(out)
        if hit:
            return emitted, True, ""
    return emitted, False, m.flush()


@pytest.mark.parametrize(
    ("stops", "texts", "emitted", "hit", "tail"),
    [
        ([" 9,"], [" 7", ",", " 8", ",", " 9", ","], [" 7", ",", " 8", ",", "", ""], True, ""),
        (["END"], ["abc", "E", "N", "X"], ["abc", "", "", "ENX"], False, ""),
        (["END"], ["abcE", "ND tail"], ["abc", ""], True, ""),
        (["\n\n", "User:"], ["Hi", "\n", "\n"], ["Hi", "", ""], True, ""),
        (["User:"], ["Hi Us"], ["Hi "], False, "Us"),
        ([], ["a", "b"], ["a", "b"], False, ""),
        (["ab", "b"], ["xa", "b"], ["x", ""], True, ""),
    ],
    ids=[
        "hold-then-stop",
        "hold-then-release",
        "split-stop",
        "two-stops",
        "tail-released",
        "no-stops",
        "earliest-match-wins",
    ],
)
def test_stop_strings_are_held_back_until_they_cannot_match(
    stops: list[str], texts: list[str], emitted: list[str], hit: bool, tail: str
) -> None:
    assert _stream(stops, texts) == (emitted, hit, tail)


def test_text_after_a_stop_string_is_discarded() -> None:
    m = StopMatcher(["STOP"])
    assert m.push("one two STOP three") == ("one two ", True)


def test_peek_tells_what_feed_would_return_without_feeding() -> None:
    """And the bytes of a character cut between tokens, before and after."""
    table = {0: b"\xe4\xbd", 1: b"\xa0", 2: b"!", 3: b"\xf0\x9f", 4: b"\x99"}
    d = Detokenizer(table.__getitem__)
    assert d.peek(0) == ("", b"\xe4\xbd") and d.held == b""
    assert d.feed(0) == "" and d.held == b"\xe4\xbd"
    assert d.peek(1) == ("你", b"") and d.peek(2) == ("\ufffd!", b"")  # half a character
    assert d.held == b"\xe4\xbd"
    assert d.feed(1) == "你" and d.held == b""
    assert d.peek(2) == ("!", b"") and d.feed(2) == "!"
    assert d.feed(3) == "" and d.peek(4) == ("", b"\xf0\x9f\x99")
