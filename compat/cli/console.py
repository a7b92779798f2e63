"""What the argument parser and every command share, and nothing heavy.

``main`` imports only this of the CLI before it knows the command, so
``serve`` never loads the client side (httpx, tenacity, the formatting) and
the other commands never load the server.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

__all__ = ["NO_SERVER", "SHOW_FIELDS", "CLIError", "Console"]

NO_SERVER = "could not connect to llamaport server, run 'llamaport serve' to start it"

SHOW_FIELDS = {
    "license": "Show license of a model",
    "modelfile": "Show Modelfile of a model",
    "parameters": "Show parameters of a model",
    "template": "Show template of a model",
    "system": "Show system message of a model",
}
"""``show``'s one-field flags, in the order Ollama checks them."""


class CLIError(Exception):
    """A failure to report as ``Error: <message>`` with exit status 1."""


@dataclass
class Console:
    """The three standard streams, injectable so commands can be tested."""

    stdin: TextIO
    stdout: TextIO
    stderr: TextIO

    @classmethod
    def system(cls) -> Console:
        return cls(sys.stdin, sys.stdout, sys.stderr)

    def stdin_is_tty(self) -> bool:
        return _isatty(self.stdin)

    def stdout_is_tty(self) -> bool:
        return _isatty(self.stdout)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
