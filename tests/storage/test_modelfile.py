"""Modelfile parsing (Ollama's grammar, errors naming the line) and the round trip."""

from __future__ import annotations

import random
from typing import Any

import pytest

from llamaport.storage.modelfile import Command, Modelfile, ModelfileError, parse_modelfile

EXAMPLE = '''FROM llama3.2
# a comment
parameter temperature 1
PARAMETER num_ctx 4096
PARAMETER stop "<|eot_id|>"
PARAMETER stop   <|end|>
SYSTEM """You are "Mario"
from Super Mario Bros."""
MESSAGE user Is Toronto in Canada?
MESSAGE assistant yes
LICENSE """line one
line two"""
LICENSE MIT
ADAPTER ./lora.gguf
REQUIRES v0.14.0
TEMPLATE """{{ if .System }}{{ .System }}{{ end }}{{ .Prompt }}"""
'''


def test_example_parses_into_typed_fields() -> None:
    mf = parse_modelfile(EXAMPLE)
    assert mf.froms == ["llama3.2"]
    assert mf.parameters == {"temperature": 1.0, "num_ctx": 4096, "stop": ["<|eot_id|>", "<|end|>"]}
    assert mf.system == 'You are "Mario"\nfrom Super Mario Bros.'
    assert mf.messages == [
        {"role": "user", "content": "Is Toronto in Canada?"},
        {"role": "assistant", "content": "yes"},
    ]
    assert mf.licenses == ["line one\nline two", "MIT"]
    assert mf.adapters == ["./lora.gguf"]
    assert mf.requires == "0.14.0"
    assert mf.template == "{{ if .System }}{{ .System }}{{ end }}{{ .Prompt }}"
    assert [c.line for c in mf.commands] == [1, 3, 4, 5, 6, 7, 9, 10, 11, 13, 14, 15, 16]


VALUES = [
    ("FROM /what/is/the path \n", "from", "/what/is/the path"),
    ('SYSTEM "  spaced  "', "system", "  spaced  "),
    ('SYSTEM """\nmulti\n  line\n"""', "system", "\nmulti\n  line\n"),
    ('SYSTEM """has "quotes" inside"""', "system", 'has "quotes" inside'),
    ('SYSTEM "two\nlines"', "system", "two\nlines"),
    ('SYSTEM """a""" b\nstill"""', "system", 'a""" b\nstill'),
    ("SYSTEM 'single quotes are plain'", "system", "'single quotes are plain'"),
    ("system\tlower case and a tab", "system", "lower case and a tab"),
    ('TEMPLATE ""', "template", ""),
    ("LICENSE \\n is not an escape", "license", "\\n is not an escape"),
]


@pytest.mark.parametrize(("line", "instruction", "value"), VALUES, ids=[v for _, _, v in VALUES])
def test_values(line: str, instruction: str, value: str) -> None:
    mf = parse_modelfile(f"FROM m\n{line}")
    assert mf.commands[-1] == Command(instruction, value)


def test_bom_crlf_and_utf16() -> None:
    text = 'FROM m\r\nSYSTEM """a\r\nb"""\r\n'
    assert parse_modelfile(("\ufeff" + text).encode()).system == "a\nb"
    assert parse_modelfile(b"\xff\xfe" + text.encode("utf-16-le")).system == "a\nb"


def test_deprecated_parameter_is_dropped_with_a_warning() -> None:
    mf = parse_modelfile("FROM m\nPARAMETER mirostat 2\nPARAMETER top_k 5\n")
    assert mf.parameters == {"top_k": 5}
    assert mf.warnings == ("parameter mirostat is deprecated",)


ERRORS = [
    ("FROM m\nFOO x", "(line 2): command must be one of"),
    ("FROM m\nFROM: x", "(line 2): unexpected ':' after FROM"),
    ("FROM m\n\n\nDRAFT ./d.gguf", "(line 4): DRAFT is not supported by llamaport"),
    ("FROM m\nPARAMETER foo 1", "(line 2): unknown parameter 'foo'"),
    ("FROM m\nPARAMETER Temperature 1", "(line 2): unknown parameter 'Temperature'"),
    ("FROM m\nPARAMETER numa true", "(line 2): unknown parameter 'numa'"),
    ("FROM m\nPARAMETER num_ctx abc", "(line 2): invalid int value [abc]"),
    ("FROM m\nPARAMETER num_ctx 4096 8192", "(line 2): invalid int value [4096 8192]"),
    ("FROM m\nPARAMETER temperature hot", "(line 2): invalid float value [hot]"),
    ("FROM m\nPARAMETER use_mmap maybe", "(line 2): invalid bool value [maybe]"),
    ("FROM m\nPARAMETER num_ctx", "(line 2): missing value after num_ctx"),
    ("FROM m\nPARAMETER -x 1", "(line 2): missing parameter name"),
    ("FROM m\nPARAMETER top-k 1", "(line 2): unexpected '-' after top"),
    ("FROM m\nMESSAGE bot hi", '(line 2): message role must be one of "system", "user"'),
    ("FROM m\nMESSAGE User hi", '(line 2): message role must be one of "system", "user"'),
    ('FROM m\nSYSTEM """never\nclosed', '(line 2): unterminated """ quote'),
    ('FROM m\n\nSYSTEM "never closed', '(line 3): unterminated " quote'),
    ("FROM m\nREQUIRES latest", "(line 2): requires must be a valid semver (e.g. 0.14.0)"),
    ("FROM\n", "(line 1): missing value after FROM"),
    ('FROM ""\n', "(line 1): missing value for FROM"),
    ("PARAMETER top_k 1\n", "no FROM line"),
    ("", "no FROM line"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS, ids=[m for _, m in ERRORS])
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ModelfileError) as info:
        parse_modelfile(text)
    assert str(info.value).startswith(message)


def test_error_line_attribute() -> None:
    with pytest.raises(ModelfileError) as info:
        parse_modelfile('FROM m\nSYSTEM """\n\n"""\nPARAMETER nope 1\n')
    assert info.value.line == 5
    assert info.value.detail == "unknown parameter 'nope'"


def test_serializer_matches_ollamas_format() -> None:
    mf = parse_modelfile(EXAMPLE)
    assert str(mf) == (
        "FROM llama3.2\n"
        "PARAMETER temperature 1\n"
        "PARAMETER num_ctx 4096\n"
        "PARAMETER stop <|eot_id|>\n"
        "PARAMETER stop <|end|>\n"
        'SYSTEM """You are "Mario"\nfrom Super Mario Bros."""\n'
        "MESSAGE user Is Toronto in Canada?\n"
        "MESSAGE assistant yes\n"
        'LICENSE "line one\nline two"\n'
        "LICENSE MIT\n"
        "ADAPTER ./lora.gguf\n"
        "REQUIRES v0.14.0\n"
        "TEMPLATE {{ if .System }}{{ .System }}{{ end }}{{ .Prompt }}\n"
    )


_PIECES = ["a", "Z", " ", "  ", "\t", "\n", '"', '""', "#", "{{ .Prompt }}", "é", "<|im_end|>"]
_PIECES += ["PARAMETER", "FROM x", "\\n", "'", "9", "."]


def _representable(value: str) -> bool:
    """The grammar cannot hold a value with a line ending in \"\"\" before its last."""
    return not any(line.rstrip().endswith('"""') for line in value.split("\n")[:-1])


def _random_value(rng: random.Random) -> str:
    while True:
        value = "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 8)))
        value = value.replace("\r", "")
        if _representable(value):
            return value


def _random_command(rng: random.Random) -> Command:
    kind = rng.choice(["template", "system", "license", "message", "parameter", "adapter"])
    if kind == "message":
        return Command(kind, _random_value(rng), rng.choice(["system", "user", "assistant"]))
    if kind == "parameter":
        key, value = rng.choice(
            [("stop", _random_value(rng).strip() or "x"), ("num_ctx", "2048"), ("top_p", "0.5")]
        )
        return Command(kind, value, key)
    if kind == "adapter":
        return Command(kind, _random_value(rng).strip() or "a.gguf")
    return Command(kind, _random_value(rng))


@pytest.mark.parametrize("seed", range(400))
def test_round_trip(seed: int) -> None:
    rng = random.Random(seed)
    commands = [Command("from", rng.choice(["llama3.2", "/models/my model.gguf", " x "]))]
    commands += [_random_command(rng) for _ in range(rng.randint(0, 6))]
    rng.shuffle(commands)
    original = Modelfile(tuple(commands))
    text = str(original)
    parsed = parse_modelfile(text)
    assert parsed == original, text
    assert str(parsed) == text


def test_typed_parameters_accumulate_stop() -> None:
    mf = parse_modelfile("FROM m\nPARAMETER stop a\nPARAMETER top_k 1\nPARAMETER stop b c\n")
    expected: dict[str, Any] = {"stop": ["a", "b c"], "top_k": 1}
    assert mf.parameters == expected
