"""A harness for driving the interactive chat's ``Session`` against the real server."""

from __future__ import annotations

import io
import re
from typing import Any

from llamaport.compat.cli.repl import HTTPBackend, RunOptions, Session
from llamaport.compat.client import Client, ShowResponse
from tests.conftest import MODEL

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

    def show(self) -> ShowResponse:
        """The server's own ``/api/show`` answer for this session's settings."""
        opts = self.session.opts
        return self.client.show(opts.model, system=opts.system, options=opts.options)

    def close(self) -> None:
        self.client.close()


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
