"""Modelfiles: parse the text into commands, and write commands back as text.

The grammar is Ollama's (``parser/parser.go``): one instruction per line,
case-insensitive (``FROM``, ``PARAMETER``, ``TEMPLATE``, ``SYSTEM``,
``ADAPTER``, ``LICENSE``, ``MESSAGE``, ``REQUIRES``), ``#`` comments, and
values that are the rest of the line, ``"quoted"`` or ``\"\"\"triple
quoted\"\"\"`` (both may span lines; a quoted value ends at the first line that
ends with its closing quote). There are no escape sequences.

Unlike Ollama, every check happens here and every error names its line:
parameter names and value types (:mod:`llamaport.storage.params`), message
roles, ``REQUIRES`` versions. ``str(modelfile)`` writes Ollama's
``show --modelfile`` format, quoting only where the parser needs it, so the
text parses back to the same commands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from llamaport.storage.errors import StorageError
from llamaport.storage.params import DEPRECATED_PARAMETERS, ParameterError, parse_parameter

__all__ = ["MESSAGE_ROLES", "Command", "Modelfile", "ModelfileError", "parse_modelfile"]

MESSAGE_ROLES = ("system", "user", "assistant")
_INSTRUCTIONS = frozenset(
    {"from", "parameter", "template", "system", "adapter", "license", "message", "requires"}
)
_OLLAMA_ONLY = ("draft", "renderer", "parser")
_INVALID_COMMAND = (
    'command must be one of "from", "license", "template", "system", "adapter", '
    '"parameter", "message", or "requires"'
)
_NEEDS_VALUE = frozenset({"from", "adapter", "requires", "parameter"})
_NAME = re.compile(r"[A-Za-z]+")
_KEY = re.compile(r"[A-Za-z0-9_]+")
_BLANK = " \t"
_SEMVER = re.compile(
    r"v?(0|[1-9]\d*)(\.(0|[1-9]\d*)(\.(0|[1-9]\d*)"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?)?)?"
)


class ModelfileError(StorageError):
    """A Modelfile does not parse. ``line`` is 1-based (0: the file as a whole)."""

    def __init__(self, message: str, line: int = 0) -> None:
        self.line = line
        self.detail = message
        super().__init__(f"(line {line}): {message}" if line else message)


def _quote(value: str) -> str:
    """Quote ``value`` only where the parser would otherwise change it.

    Ollama quotes values with newlines or edge spaces; values that are empty,
    start with a quote, or have edge whitespace of any kind are quoted too,
    so they survive the trip back. A value with a line that ends in
    ``\"\"\"`` before its last line cannot be written in this grammar at all.
    """
    plain = value and value == value.strip() and "\n" not in value
    if plain and not value.startswith('"'):
        return value
    if '"' in value:
        return f'"""{value}"""'
    return f'"{value}"'


@dataclass(frozen=True)
class Command:
    """One instruction. ``key`` is a PARAMETER's name or a MESSAGE's role."""

    instruction: str
    value: str
    key: str = ""
    line: int = field(default=0, compare=False)

    def __str__(self) -> str:
        word = self.instruction.upper()
        if self.key:
            return f"{word} {self.key} {_quote(self.value)}"
        return f"{word} {_quote(self.value)}"


@dataclass(frozen=True)
class Modelfile:
    """Parsed commands, in file order, and the warnings parsing produced."""

    commands: tuple[Command, ...]
    warnings: tuple[str, ...] = ()

    def __str__(self) -> str:
        return "".join(f"{command}\n" for command in self.commands)

    def _values(self, instruction: str) -> list[str]:
        return [c.value for c in self.commands if c.instruction == instruction]

    def _last(self, instruction: str) -> str | None:
        values = self._values(instruction)
        return values[-1] if values else None

    @property
    def froms(self) -> list[str]:
        """Every FROM: a model name or a path (the client tells them apart)."""
        return self._values("from")

    @property
    def adapters(self) -> list[str]:
        return self._values("adapter")

    @property
    def template(self) -> str | None:
        """The last TEMPLATE, as Ollama takes it."""
        return self._last("template")

    @property
    def system(self) -> str | None:
        return self._last("system")

    @property
    def requires(self) -> str | None:
        """The last REQUIRES, without a leading ``v``."""
        value = self._last("requires")
        return None if value is None else value.removeprefix("v")

    @property
    def licenses(self) -> list[str]:
        return self._values("license")

    @property
    def messages(self) -> list[dict[str, str]]:
        return [
            {"role": c.key, "content": c.value} for c in self.commands if c.instruction == "message"
        ]

    @property
    def parameters(self) -> dict[str, Any]:
        """Typed PARAMETERs: ``stop`` accumulates, any other name's last value wins."""
        out: dict[str, Any] = {}
        for c in self.commands:
            if c.instruction != "parameter":
                continue
            value = parse_parameter(c.key, [c.value])
            out[c.key] = [*out.get(c.key, []), *value] if c.key == "stop" else value
        return out


class _Reader:
    """A cursor over the text that knows its line number."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def advance(self, count: int = 1) -> str:
        taken = self.text[self.pos : self.pos + count]
        self.line += taken.count("\n")
        self.pos += len(taken)
        return taken

    def skip(self, chars: str) -> None:
        while self.peek() and self.peek() in chars:
            self.advance()

    def rest_of_line(self) -> str:
        end = self.text.find("\n", self.pos)
        return self.advance((len(self.text) if end < 0 else end) - self.pos)

    def match(self, pattern: re.Pattern[str]) -> str:
        found = pattern.match(self.text, self.pos)
        return self.advance(found.end() - self.pos) if found else ""


def _quoted(reader: _Reader, mark: str) -> str:
    """A value opened by ``mark``: it ends at the first line end where it closes."""
    start, line = reader.pos, reader.line
    search = start
    while True:
        end = reader.text.find("\n", search)
        end = len(reader.text) if end < 0 else end
        candidate = reader.text[start:end].strip()
        if len(candidate) >= 2 * len(mark) and candidate.endswith(mark):
            reader.advance(end - start)
            return candidate[len(mark) : -len(mark)]
        if end == len(reader.text):
            raise ModelfileError(f"unterminated {mark} quote", line)
        search = end + 1


def _value(reader: _Reader) -> str:
    for mark in ('"""', '"'):
        if reader.text.startswith(mark, reader.pos):
            return _quoted(reader, mark)
    return reader.rest_of_line().strip()


def _word(reader: _Reader, pattern: re.Pattern[str], what: str) -> str:
    """A name, role or key; raises if there is none."""
    word = reader.match(pattern)
    if not word:
        raise ModelfileError(f"missing {what}", reader.line)
    return word


def _separator(reader: _Reader, word: str) -> None:
    """The spaces between ``word`` and what follows it on the line."""
    following = reader.peek()
    if following in ("", "\n"):
        raise ModelfileError(f"missing value after {word}", reader.line)
    if following not in _BLANK:
        raise ModelfileError(f"unexpected {following!r} after {word}", reader.line)
    reader.skip(_BLANK)


def _check(command: Command) -> None:
    """Type-check one command; raises :class:`ModelfileError` naming its line."""
    kind, line = command.instruction, command.line
    if kind in _NEEDS_VALUE and not command.value:
        raise ModelfileError(f"missing value for {kind.upper()}", line)
    if kind == "message" and command.key not in MESSAGE_ROLES:
        raise ModelfileError('message role must be one of "system", "user", or "assistant"', line)
    if kind == "requires" and not _SEMVER.fullmatch(command.value):
        raise ModelfileError("requires must be a valid semver (e.g. 0.14.0)", line)
    if kind == "parameter":
        try:
            parse_parameter(command.key, [command.value])
        except ParameterError as exc:
            raise ModelfileError(str(exc), line) from None


def _command(reader: _Reader) -> Command:
    line = reader.line
    word = reader.match(_NAME)
    name = word.lower()
    if name in _OLLAMA_ONLY:
        raise ModelfileError(f"{word} is not supported by llamaport", line)
    if name not in _INSTRUCTIONS:
        raise ModelfileError(_INVALID_COMMAND, line)
    _separator(reader, word)
    key = ""
    if name == "parameter":
        key = _word(reader, _KEY, "parameter name")
        _separator(reader, key)
    elif name == "message":
        key = _word(reader, _NAME, "message role")
        _separator(reader, key)
    return Command(name, _value(reader), key, line)


def _decode(data: bytes) -> str:
    """UTF-8 unless a byte-order mark says UTF-16 (Ollama's BOM override)."""
    codec = "utf-8-sig"
    for bom, utf16 in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            data, codec = data[len(bom) :], utf16
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        name = codec.removesuffix("-sig").upper()
        raise ModelfileError(f"not {name} text: {exc.reason}") from None


def parse_modelfile(source: str | bytes) -> Modelfile:
    """Parse a Modelfile; raises :class:`ModelfileError` naming the offending line.

    A deprecated parameter (``mirostat``...) is dropped with a warning, as
    Ollama does; a file without FROM is an error.
    """
    text = _decode(source) if isinstance(source, bytes) else source.removeprefix("\ufeff")
    reader = _Reader(text.replace("\r\n", "\n").replace("\r", "\n"))
    commands: list[Command] = []
    warnings: list[str] = []
    while True:
        reader.skip(_BLANK + "\n")
        if not reader.peek():
            break
        if reader.peek() == "#":
            reader.rest_of_line()
            continue
        command = _command(reader)
        if command.instruction == "parameter" and command.key in DEPRECATED_PARAMETERS:
            warnings.append(f"parameter {command.key} is deprecated")
            continue
        _check(command)
        commands.append(command)
    if not any(c.instruction == "from" for c in commands):
        raise ModelfileError("no FROM line")
    return Modelfile(tuple(commands), tuple(warnings))
