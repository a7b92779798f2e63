"""Parse the subset of Go's ``text/template`` that model TEMPLATEs use into a tree.

Covered: text and ``{{ }}`` actions with ``{{-``/``-}}`` trimming and
``/* */`` comments; ``if``/``else if``/``else``, ``range`` (with ``$i, $e :=``,
``else``, ``break``, ``continue``), ``with``/``else with``, ``end``;
pipelines with ``|``, ``$x :=`` and ``$x =``, parenthesised pipelines;
fields (``.A.B``, ``$x.A``, ``(pipe).A``), variables, functions, and
string (interpreted and raw), number, ``true``/``false``/``nil`` literals.
``define``/``template``/``block`` are refused. Errors are
:class:`TemplateSyntaxError` with the line.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Action",
    "Branch",
    "Chain",
    "Cmd",
    "Field",
    "Function",
    "Literal",
    "Loop",
    "Node",
    "Pipe",
    "TemplateSyntaxError",
    "Text",
    "Variable",
    "parse",
]


class TemplateSyntaxError(ValueError):
    """The template does not parse; the message names the line."""


# -- tree ------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Field:
    """``.A.B`` on dot; ``names == ()`` is dot itself."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class Variable:
    """``$x.A.B``; ``$`` alone is the data the template was executed with."""

    name: str
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Function:
    name: str


@dataclass(frozen=True)
class Chain:
    """``(pipeline).A.B``."""

    pipe: Pipe
    names: tuple[str, ...]


Operand = Literal | Field | Variable | Function | Chain


@dataclass(frozen=True)
class Cmd:
    args: tuple[Operand | Pipe, ...]


@dataclass(frozen=True)
class Pipe:
    cmds: tuple[Cmd, ...]
    decl: tuple[str, ...] = ()
    assign: bool = False
    """``$x = value`` (assign to an existing variable) rather than ``$x :=``."""


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Action:
    pipe: Pipe
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Branch:
    """``if``, ``range`` or ``with``; an ``else if`` chain nests in ``otherwise``."""

    kind: str
    pipe: Pipe
    body: tuple[Node, ...]
    otherwise: tuple[Node, ...] = ()
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Loop:
    """``break`` or ``continue`` inside a ``range``."""

    kind: str


Node = Text | Action | Branch | Loop

# -- lexing ----------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<dot>\.)
  | (?P<var>\$[A-Za-z0-9_]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>:=|=|\||\(|\)|,)
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset({"if", "else", "end", "range", "with", "break", "continue"})
_UNSUPPORTED = frozenset({"define", "template", "block"})
_SPACE = " \t\r\n"


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    glued: bool
    """No space before it: ``(x).Field`` chains only when glued."""


def _tokens(source: str, line: int) -> list[_Tok]:
    out: list[_Tok] = []
    pos, glued = 0, True
    while pos < len(source):
        found = _TOKEN.match(source, pos)
        if found is None:
            raise TemplateSyntaxError(f"line {line}: unexpected {source[pos]!r} in command")
        kind = found.lastgroup or ""
        if kind == "space":
            glued = False
        else:
            out.append(_Tok(kind, found.group(), glued))
            glued = True
        pos = found.end()
    return out


def _items(source: str) -> list[tuple[str, str, int]]:
    """Split into ("text", s, line) and ("action", s, line), applying trim markers."""
    items: list[tuple[str, str, int]] = []
    pos, line, trim_next = 0, 1, False
    while True:
        start = source.find("{{", pos)
        text = source[pos:] if start < 0 else source[pos:start]
        text_line, line = line, line + text.count("\n")
        if trim_next:
            text = text.lstrip(_SPACE)
        if start < 0:
            if text:
                items.append(("text", text, text_line))
            return items
        inner_start = start + 2
        if source.startswith("-", inner_start) and _is_space(source, inner_start + 1):
            text = text.rstrip(_SPACE)
            inner_start += 2
        if text:
            items.append(("text", text, text_line))
        end = _action_end(source, inner_start, line)
        inner = source[inner_start:end]
        trim_next = inner.endswith("-") and _is_space(inner, len(inner) - 2)
        items.append(("action", inner[:-2] if trim_next else inner, line))
        line += source[start:end].count("\n")
        pos = end + 2


def _is_space(text: str, index: int) -> bool:
    return 0 <= index < len(text) and text[index] in _SPACE


def _action_end(source: str, start: int, line: int) -> int:
    """Where the ``}}`` closing an action is, skipping strings and comments."""
    pos = start
    while pos < len(source):
        if source.startswith("/*", pos):
            close = source.find("*/", pos + 2)
            if close < 0:
                raise TemplateSyntaxError(f"line {line}: unclosed comment")
            pos = close + 2
        elif source[pos] in "\"`'":
            quote = source[pos]
            pos += 1
            while pos < len(source) and source[pos] != quote:
                pos += 2 if source[pos] == "\\" and quote != "`" else 1
            pos += 1
        elif source.startswith("}}", pos):
            return pos
        else:
            pos += 1
    raise TemplateSyntaxError(f"line {line}: unclosed action")


# -- parsing ---------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[_Tok], line: int, functions: frozenset[str]) -> None:
        self.functions = functions
        self.tokens = tokens
        self.pos = 0
        self.line = line

    def error(self, message: str) -> TemplateSyntaxError:
        return TemplateSyntaxError(f"line {self.line}: {message}")

    def peek(self) -> _Tok | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise self.error("missing value for command")
        self.pos += 1
        return tok

    def done(self) -> bool:
        return self.pos >= len(self.tokens)

    def whole(self, allow_two: bool = False) -> Pipe:
        """A pipeline that fills the rest of the action."""
        pipe = self.pipeline(allow_two)
        if not self.done():
            raise self.error(f"unexpected {self.take().text!r} in operand")
        return pipe

    def pipeline(self, allow_two: bool = False) -> Pipe:
        decl, assign = self._declaration(allow_two)
        cmds = [self._command()]
        while (tok := self.peek()) is not None and tok.text == "|":
            self.take()
            cmds.append(self._command())
        if (tok := self.peek()) is not None and tok.text != ")":
            raise self.error(f"unexpected {tok.text!r} in operand")
        return Pipe(tuple(cmds), decl, assign)

    def _declaration(self, allow_two: bool) -> tuple[tuple[str, ...], bool]:
        ahead = self.tokens[self.pos : self.pos + 4]
        kinds = [(t.kind, t.text) for t in ahead]
        if len(kinds) >= 2 and kinds[0][0] == "var" and kinds[1][1] in (":=", "="):
            self.pos += 2
            return (ahead[0].text,), kinds[1][1] == "="
        if (
            allow_two
            and len(kinds) == 4
            and kinds[0][0] == "var"
            and kinds[1][1] == ","
            and kinds[2][0] == "var"
            and kinds[3][1] in (":=", "=")
        ):
            self.pos += 4
            return (ahead[0].text, ahead[2].text), kinds[3][1] == "="
        return (), False

    def _command(self) -> Cmd:
        args: list[Operand | Pipe] = []
        while (tok := self.peek()) is not None and tok.text not in ("|", ")"):
            args.append(self._operand())
        if not args:
            raise self.error("missing value for command")
        return Cmd(tuple(args))

    def _operand(self) -> Operand | Pipe:
        tok = self.take()
        kind, text = tok.kind, tok.text
        if text == "(":
            pipe = self.pipeline()
            if self.take().text != ")":
                raise self.error("unclosed left paren")
            nxt = self.peek()
            if nxt is not None and nxt.kind == "field" and nxt.glued:
                return Chain(pipe, tuple(self.take().text.split(".")[1:]))
            return pipe
        if kind == "field":
            return Field(tuple(text.split(".")[1:]))
        if kind == "dot":
            return Field(())
        if kind == "var":
            nxt = self.peek()
            names: tuple[str, ...] = ()
            if nxt is not None and nxt.kind == "field" and nxt.glued:
                names = tuple(self.take().text.split(".")[1:])
            return Variable(text, names)
        if kind in ("string", "char"):
            value = ast.literal_eval(text)
            return Literal(ord(value) if kind == "char" else value)
        if kind == "raw":
            return Literal(text[1:-1])
        if kind == "number":
            return Literal(_number(text, self))
        if kind == "ident":
            if text in ("true", "false"):
                return Literal(text == "true")
            if text == "nil":
                return Literal(None)
            if text in _KEYWORDS or text in _UNSUPPORTED:
                raise self.error(f"unexpected <{text}> in command")
            if text not in self.functions:
                raise self.error(f'function "{text}" not defined')
            return Function(text)
        raise self.error(f"unexpected {text!r} in operand")


def _number(text: str, parser: _Parser) -> int | float:
    try:
        clean = text.replace("_", "")
        if re.fullmatch(r"[+-]?(0[xX][0-9a-fA-F]+|\d+)", clean):
            return int(clean, 0) if clean.lstrip("+-")[:2].lower() == "0x" else int(clean)
        return float(clean)
    except ValueError:
        raise parser.error(f"bad number syntax: {text!r}") from None


class _Tree:
    """Builds the node tree from the item stream."""

    def __init__(self, source: str, functions: frozenset[str]) -> None:
        self.functions = functions
        self.items = _items(source)
        self.pos = 0
        self.loops = 0

    def parse(self) -> tuple[Node, ...]:
        nodes, end = self._list()
        if end is not None:
            raise TemplateSyntaxError(f"line {end[1]}: unexpected {{{{{end[0]}}}}}")
        return nodes

    def _list(self) -> tuple[tuple[Node, ...], tuple[str, int, _Parser] | None]:
        """Nodes up to an ``else``/``end`` (returned, with its parser) or the end."""
        nodes: list[Node] = []
        while self.pos < len(self.items):
            kind, text, line = self.items[self.pos]
            self.pos += 1
            if kind == "text":
                nodes.append(Text(text))
                continue
            if text.strip(_SPACE).startswith("/*"):
                continue
            parser = _Parser(_tokens(text, line), line, self.functions)
            first = parser.peek()
            word = first.text if first is not None and first.kind == "ident" else ""
            if word in ("else", "end"):
                parser.take()
                return tuple(nodes), (word, line, parser)
            nodes.append(self._action(word, parser, line))
        return tuple(nodes), None

    def _action(self, word: str, parser: _Parser, line: int) -> Node:
        if word in ("if", "range", "with"):
            parser.take()
            return self._branch(word, parser, line)
        if word in ("break", "continue"):
            parser.take()
            if not self.loops:
                raise parser.error(f"{{{{{word}}}}} outside {{{{range}}}}")
            if not parser.done():
                raise parser.error(f"unexpected {parser.take().text!r} in {word}")
            return Loop(word)
        if word in _UNSUPPORTED:
            raise parser.error(f"{{{{{word}}}}} is not supported")
        if parser.done():
            raise parser.error("missing value for command")
        return Action(parser.whole(), line)

    def _branch(self, kind: str, parser: _Parser, line: int) -> Branch:
        pipe = parser.whole(allow_two=kind == "range")
        if kind == "range":
            self.loops += 1
        body, end = self._list()
        if kind == "range":
            self.loops -= 1
        if end is None:
            raise TemplateSyntaxError(f"line {line}: unexpected EOF")
        word, else_line, else_parser = end
        otherwise: tuple[Node, ...] = ()
        if word == "else":
            nxt = else_parser.peek()
            if nxt is not None and nxt.text in ("if", "with") and kind != "range":
                else_parser.take()
                return Branch(
                    kind, pipe, body, (self._branch(nxt.text, else_parser, else_line),), line
                )
            if not else_parser.done():
                raise else_parser.error("unexpected tokens after else")
            otherwise, end = self._list()
            if end is None or end[0] != "end":
                raise TemplateSyntaxError(f"line {line}: expected end; found {end and end[0]}")
        elif not end[2].done():
            raise end[2].error("unexpected tokens after end")
        return Branch(kind, pipe, body, otherwise, line)


def parse(source: str, functions: frozenset[str]) -> tuple[Node, ...]:
    """The template's top-level nodes; raises :class:`TemplateSyntaxError`.

    ``functions`` names the functions the template may call.
    """
    return _Tree(source, functions).parse()
