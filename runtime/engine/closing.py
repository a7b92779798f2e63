"""Closing a constrained document early: the shortest text that completes it.

A request with ``format`` (or a forced tool call) decodes under a GBNF
grammar, which keeps every prefix valid but cannot make the model finish: a
token limit can cut the document in the middle of a string. This module reads
the same GBNF text llama.cpp is given and follows the output with the same
machine llama.cpp runs, a set of pushdown stacks advanced one code point at a
time, so it always knows what is open. For any state it gives the cheapest
completion (fewest UTF-8 bytes) the grammar accepts: the open string closed,
each missing required key given its smallest value (enums, constants, integer
ranges, ``minItems``, ``anyOf`` alternatives and ``$ref`` s are all already
rules of the grammar), the brackets closed; a thinking span is closed with
``</think>`` first. A grammar string is a valid document of the schema, so the
completion is too.

It is pure Python and holds no llama.cpp object. Each stack is a chain of
frames that carries the cost of finishing it, so :meth:`Closer.cost` is a
minimum over the live stacks, and text is built only when asked for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Closer", "ClosingError", "State", "closer_for"]


class ClosingError(ValueError):
    """The grammar uses syntax this reader does not follow."""


@dataclass(frozen=True)
class _Class:
    """A terminal: one code point in ``ranges`` (or outside them when ``negated``)."""

    ranges: tuple[tuple[int, int], ...]
    negated: bool

    def matches(self, cp: int) -> bool:
        inside = any(lo <= cp <= hi for lo, hi in self.ranges)
        return inside != self.negated

    def cheapest(self) -> str:
        """The character the completion writes for this terminal: a readable ASCII one."""
        for ch in "a0 ":
            if self.matches(ord(ch)):
                return ch
        if not self.negated:
            return chr(self.ranges[0][0])
        return next(chr(c) for c in range(0x20, 0x110000) if self.matches(c))

    def first_in(self, lo: int, hi: int) -> int | None:
        """The smallest code point from ``lo`` to ``hi`` this terminal matches."""
        if not self.negated:
            starts = (max(a, lo) for a, b in self.ranges if max(a, lo) <= min(b, hi))
            return min(starts, default=None)
        cp = lo
        for a, b in sorted(self.ranges):
            if a <= cp <= b:
                cp = b + 1
        return cp if cp <= hi else None


_UTF8_SPAN = {2: (0x80, 0x7FF), 3: (0x800, 0xFFFF), 4: (0x10000, 0x10FFFF)}
"""The code points each UTF-8 length encodes (shorter forms are invalid)."""


def _utf8_size(lead: int) -> int:
    """The bytes in a character that begins with ``lead`` (0: not a lead byte)."""
    for size, top in ((2, 0xDF), (3, 0xEF), (4, 0xF4)):
        if 0xC2 <= lead <= top:
            return size
    return 0


_Element = _Class | str
"""A terminal, or the name of a rule."""


class _Frame:
    """Where one stack stands: element ``pos`` of alternative ``alt`` comes next, then
    ``parent``. ``cost`` is the fewest bytes that finish this frame and all below it.

    Equal stacks are merged, so equality is structural; the hash is computed once
    and equality walks the chains in a loop (a deeply nested document must not
    recurse).
    """

    __slots__ = ("_hash", "alt", "cost", "parent", "pos")

    def __init__(self, alt: int, pos: int, parent: _Frame | None, cost: int) -> None:
        self.alt, self.pos, self.parent, self.cost = alt, pos, parent, cost
        self._hash: int = hash((alt, pos, parent._hash if parent is not None else 0))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        a: _Frame | None = self
        b = other if isinstance(other, _Frame) else None
        while a is not b:
            if a is None or b is None or a._hash != b._hash:
                return False
            if a.alt != b.alt or a.pos != b.pos:
                return False
            a, b = a.parent, b.parent
        return True


State = frozenset[_Frame | None]
"""The live stacks; ``None`` is a stack that has accepted (the document is complete)."""


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "[": "[", "]": "]", "-": "-"}
_HEX = {"x": 2, "u": 4, "U": 8}
_NAME = re.compile(r"[a-zA-Z0-9-]+")
_REPEAT = re.compile(r"\{\s*(\d+)\s*(,\s*(\d*)\s*)?\}")


class _Parser:
    """GBNF text to rules, as llama.cpp's grammar parser reads it: groups and
    repetitions become generated rules, literals become one terminal per character."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.rules: dict[str, list[tuple[_Element, ...]]] = {}
        self._generated = 0

    def parse(self) -> dict[str, list[tuple[_Element, ...]]]:
        self._space(newlines=True)
        while self.i < len(self.text):
            name = self._name()
            self._space(newlines=False)
            if not self.text.startswith("::=", self.i):
                raise ClosingError(f"expected ::= after {name!r}")
            self.i += 3
            self._space(newlines=True)
            self.rules[name] = self._alternates(nested=False)
            self._space(newlines=True)
        return self.rules

    def _fresh(self, alts: list[tuple[_Element, ...]]) -> str:
        self._generated += 1
        name = f" gen{self._generated}"  # a space: never a user rule's name
        self.rules[name] = alts
        return name

    def _space(self, newlines: bool) -> None:
        text = self.text
        while self.i < len(text):
            ch = text[self.i]
            if ch == "#":
                while self.i < len(text) and text[self.i] not in "\r\n":
                    self.i += 1
            elif ch in " \t" or (newlines and ch in "\r\n"):
                self.i += 1
            else:
                return

    def _name(self) -> str:
        match = _NAME.match(self.text, self.i)
        if not match:
            raise ClosingError(f"expected a rule name at offset {self.i}")
        self.i = match.end()
        return match.group()

    def _alternates(self, nested: bool) -> list[tuple[_Element, ...]]:
        alts = [self._sequence(nested)]
        while self.text.startswith("|", self.i):
            self.i += 1
            self._space(newlines=True)
            alts.append(self._sequence(nested))
        return alts

    def _char(self) -> int:
        text = self.text
        if text[self.i] != "\\":
            self.i += 1
            return ord(text[self.i - 1])
        kind = text[self.i + 1]
        if kind in _HEX:
            n = _HEX[kind]
            value = int(text[self.i + 2 : self.i + 2 + n], 16)
            self.i += 2 + n
            return value
        if kind not in _ESCAPES:
            raise ClosingError(f"unknown escape \\{kind}")
        self.i += 2
        return ord(_ESCAPES[kind])

    def _sequence(self, nested: bool) -> tuple[_Element, ...]:
        out: list[_Element] = []
        text = self.text
        while self.i < len(text):
            ch = text[self.i]
            if ch == '"':
                self.i += 1
                while text[self.i] != '"':
                    cp = self._char()
                    out.append(_Class(((cp, cp),), False))
                self.i += 1
            elif ch == "[":
                self.i += 1
                negated = text[self.i] == "^"
                self.i += negated
                ranges = []
                while text[self.i] != "]":
                    lo = self._char()
                    hi = lo
                    if text[self.i] == "-" and text[self.i + 1] != "]":
                        self.i += 1
                        hi = self._char()
                    ranges.append((lo, hi))
                self.i += 1
                out.append(_Class(tuple(ranges), negated))
            elif ch == ".":
                self.i += 1
                out.append(_Class((), True))  # llama.cpp's "any character"
            elif ch == "(":
                self.i += 1
                self._space(newlines=True)
                alts = self._alternates(nested=True)
                if not text.startswith(")", self.i):
                    raise ClosingError(f"expected ) at offset {self.i}")
                self.i += 1
                out.append(self._fresh(alts))
            elif _NAME.match(ch):
                save = self.i
                name = self._name()
                self._space(newlines=False)
                if text.startswith("::=", self.i):  # the next rule begins
                    self.i = save
                    return tuple(out)
                self.i = save + len(name)
                out.append(name)
            elif ch in "*+?{":
                if not out:
                    raise ClosingError(f"repetition without an item at offset {self.i}")
                self._repeat(out)
            else:
                return tuple(out)
            self._space(newlines=nested)
        return tuple(out)

    def _repeat(self, out: list[_Element]) -> None:
        item = out.pop()
        ch = self.text[self.i]
        if ch == "{":
            match = _REPEAT.match(self.text, self.i)
            if not match:
                raise ClosingError(f"bad repetition at offset {self.i}")
            self.i = match.end()
            low = int(match.group(1))
            high: int | None = low if match.group(2) is None else None
            if match.group(3):
                high = int(match.group(3))
        else:
            self.i += 1
            low, high = {"*": (0, None), "+": (1, None), "?": (0, 1)}[ch]
        out.extend([item] * low)
        if high is None:
            star = self._fresh([])
            self.rules[star] = [(item, star), ()]
            out.append(star)
            return
        tail: str | None = None
        for _ in range(high - low):
            tail = self._fresh([(item, tail) if tail else (item,), ()])
        if tail:
            out.append(tail)


class Closer:
    """Follows output under one grammar and completes it cheaply; immutable, shared."""

    def __init__(self, gbnf: str, start: str) -> None:
        try:
            rules = _Parser(gbnf).parse()
        except (IndexError, ValueError) as exc:
            raise ClosingError(f"unreadable grammar: {exc}") from None
        for alts in rules.values():
            for seq in alts:
                for elem in seq:
                    if isinstance(elem, str) and elem not in rules:
                        raise ClosingError(f"undefined rule {elem!r}")
        if start not in rules:
            raise ClosingError(f"no rule {start!r}")
        self._alts: list[tuple[_Element, ...]] = []
        self._rule_alts: dict[str, list[int]] = {}
        for name, alts in rules.items():
            self._rule_alts[name] = []
            for seq in alts:
                self._rule_alts[name].append(len(self._alts))
                self._alts.append(seq)
        self._min_rule, self._best = self._shortest()
        self._suffix = [self._suffix_costs(seq) for seq in self._alts]
        self._texts: dict[tuple[int, int], str] = {}
        self._start = start
        self._initial: State = frozenset(self._enter(start, None))

    # -- shortest derivations ------------------------------------------------

    def _elem_cost(self, elem: _Element, rule_cost: Mapping[str, float]) -> float:
        if isinstance(elem, _Class):
            return len(elem.cheapest().encode())
        return rule_cost[elem]

    def _shortest(self) -> tuple[dict[str, int], dict[str, int]]:
        """Each rule's fewest bytes and the alternative that gives them (Knuth's
        fixpoint; a choice is recorded only on a strict improvement, so the chosen
        derivations never loop)."""
        cost: dict[str, float] = dict.fromkeys(self._rule_alts, float("inf"))
        best: dict[str, int] = {}
        changed = True
        while changed:
            changed = False
            for name, alts in self._rule_alts.items():
                for alt in alts:
                    c = sum(self._elem_cost(e, cost) for e in self._alts[alt])
                    if c < cost[name]:
                        cost[name], best[name] = c, alt
                        changed = True
        empty = [n for n, c in cost.items() if c == float("inf")]
        if empty:
            raise ClosingError(f"rule {empty[0]!r} derives no finite string")
        return {n: int(c) for n, c in cost.items()}, best

    def _suffix_costs(self, seq: tuple[_Element, ...]) -> list[int]:
        out = [0] * (len(seq) + 1)
        for pos in range(len(seq) - 1, -1, -1):
            out[pos] = out[pos + 1] + int(self._elem_cost(seq[pos], self._min_rule))
        return out

    def _text(self, alt: int, pos: int) -> str:
        """The cheapest text for ``alt`` from ``pos`` on (remembered: a few per rule)."""
        key = (alt, pos)
        text = self._texts.get(key)
        if text is None:
            parts = []
            for elem in self._alts[alt][pos:]:
                if isinstance(elem, _Class):
                    parts.append(elem.cheapest())
                else:
                    parts.append(self._text(self._best[elem], 0))
            text = self._texts[key] = "".join(parts)
        return text

    # -- the pushdown stacks ---------------------------------------------------

    def _frame(self, alt: int, pos: int, parent: _Frame | None) -> _Frame | None:
        """The frame at ``pos`` of ``alt``, or ``parent`` itself at the end (a tail call)."""
        if pos == len(self._alts[alt]):
            return parent
        below = parent.cost if parent is not None else 0
        return _Frame(alt, pos, parent, self._suffix[alt][pos] + below)

    def _enter(self, rule: str, parent: _Frame | None) -> set[_Frame | None]:
        out: set[_Frame | None] = set()
        for alt in self._rule_alts[rule]:
            out |= self._settle(self._frame(alt, 0, parent))
        return out

    def _settle(self, frame: _Frame | None) -> set[_Frame | None]:
        """Expand rule references until every stack's top is a terminal (or it accepted)."""
        if frame is None:
            return {None}
        elem = self._alts[frame.alt][frame.pos]
        if isinstance(elem, _Class):
            return {frame}
        return self._enter(elem, self._frame(frame.alt, frame.pos + 1, frame.parent))

    def initial(self) -> State:
        """Nothing generated yet."""
        return self._initial

    def advance(self, state: State, text: str) -> State | None:
        """The state after ``text``, or ``None`` if the grammar rejects it."""
        for ch in text:
            cp = ord(ch)
            nxt: set[_Frame | None] = set()
            for frame in state:
                if frame is None:
                    continue
                elem = self._alts[frame.alt][frame.pos]
                assert isinstance(elem, _Class)
                if elem.matches(cp):
                    nxt |= self._settle(self._frame(frame.alt, frame.pos + 1, frame.parent))
            if not nxt:
                return None
            state = frozenset(nxt)
        return state

    def finish(self, state: State, held: bytes) -> tuple[bytes, State] | None:
        """A character cut between tokens, finished: the missing bytes of the
        cheapest character the grammar allows next whose UTF-8 begins with
        ``held``, and the state after it; None when no such character is allowed."""
        size = _utf8_size(held[0]) if held else 0
        if not 0 < len(held) < size:
            return None
        bits = held[0] & (0x7F >> size)
        for byte in held[1:]:
            bits = bits << 6 | (byte & 0x3F)
        free = 6 * (size - len(held))
        lo = max(bits << free, _UTF8_SPAN[size][0])
        hi = min(bits << free | ((1 << free) - 1), _UTF8_SPAN[size][1])
        best: tuple[bytes, State] | None = None
        for frame in state:
            if frame is None:
                continue
            elem = self._alts[frame.alt][frame.pos]
            assert isinstance(elem, _Class)
            cp = elem.first_in(lo, hi)
            if cp is None or 0xD800 <= cp <= 0xDFFF:
                continue
            after = self.advance(state, chr(cp))
            if after is not None and (best is None or self.cost(after) < self.cost(best[1])):
                best = chr(cp).encode()[len(held) :], after
        return best

    @staticmethod
    def cost(state: State) -> int:
        """Bytes of the cheapest completion: an upper bound on its tokens."""
        return min(0 if f is None else f.cost for f in state)

    def completion(self, state: State) -> str:
        """The cheapest text that completes ``state`` ("" once a stack accepted)."""
        if None in state:
            return ""
        frame: _Frame | None = min(state, key=lambda f: (f.cost, f.alt, f.pos))  # type: ignore[union-attr]
        parts = []
        while frame is not None:  # a loop: the chain is as deep as the document
            parts.append(self._text(frame.alt, frame.pos))
            frame = frame.parent
        return "".join(parts)


@lru_cache(maxsize=64)
def closer_for(gbnf: str, start: str) -> Closer:
    """The (shared, immutable) closer of one grammar text."""
    return Closer(gbnf, start)
