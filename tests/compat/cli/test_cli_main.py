"""Argument parsing, flag validation, and behaviour with no server listening.

The no-server cases are real: the client connects to a port nothing listens
on. Behaviour against a running server is covered by end-to-end tests.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llamaport.compat.cli.commands import Console
from llamaport.compat.cli.main import normalize_argv, parse_args, run_cli
from llamaport.compat.cli.run import parse_format, parse_keep_alive, parse_think
from llamaport.compat.client import Client, ConnectError
from llamaport.compat.version import __version__
from llamaport.storage.settings import Settings, parse_host

NO_SERVER = "Error: could not connect to llamaport server, run 'llamaport serve' to start it\n"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["list"], {"command": "list", "prefix": ""}),
        (["ls", "llama"], {"command": "ls", "prefix": "llama"}),
        (["ps", "qwen"], {"command": "ps", "prefix": "qwen"}),
        (["stop", "m"], {"command": "stop", "model": "m"}),
        (["create", "m"], {"command": "create", "model": "m", "file": None, "quantize": None}),
        (["create", "m", "-f", "F", "-q", "q8_0"], {"file": "F", "quantize": "q8_0"}),
        (["create", "m", "--file=F", "--quantize", "Q4_K_M"], {"quantize": "Q4_K_M"}),
        (["cp", "a", "b"], {"command": "cp", "source": "a", "destination": "b"}),
        (["rm", "a", "b"], {"command": "rm", "models": ["a", "b"]}),
        (["show", "m"], {"command": "show", "model": "m"}),
        (["serve"], {"command": "serve"}),
        (["start"], {"command": "start"}),
        (["-v"], {"command": None, "version": True}),
        (["--version"], {"command": None, "version": True}),
        (["run", "m"], {"model": "m", "prompt": [], "think": None, "verbose": False}),
        (
            ["run", "m", "why", "is", "the", "sky", "blue"],
            {"prompt": ["why", "is", "the", "sky", "blue"]},
        ),
        (["run", "m", "hi", "--verbose", "there"], {"prompt": ["hi", "there"], "verbose": True}),
        (["run", "--verbose", "m", "hi", "there"], {"model": "m", "prompt": ["hi", "there"]}),
        (["run", "m", "--think"], {"think": "true", "prompt": []}),
        (["run", "m", "--think", "why?"], {"think": "true", "prompt": ["why?"]}),
        (["run", "m", "--think=high"], {"think": "high"}),
        (["run", "m", "--think=false"], {"think": "false"}),
        (
            ["run", "m", "--keepalive", "10m", "--format", "json"],
            {"keepalive": "10m", "format": "json"},
        ),
        (
            ["run", "m", "--nowordwrap", "--hidethinking"],
            {"nowordwrap": True, "hidethinking": True},
        ),
        (["run", "m", "--", "--think", "-x"], {"prompt": ["--think", "-x"], "think": None}),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_parse_args(argv: list[str], expected: dict[str, Any]) -> None:
    ns = parse_args(argv)
    assert {key: getattr(ns, key) for key in expected} == expected


def test_normalize_argv_leaves_words_after_double_dash() -> None:
    assert normalize_argv(["run", "m", "--think", "--", "--think"]) == [
        "run",
        "m",
        "--think=true",
        "--",
        "--think",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("true", True), ("", True), ("false", False), ("low", "low"), ("max", "max")],
    ids=lambda v: repr(v),
)
def test_parse_think(value: str | None, expected: bool | str | None) -> None:
    assert parse_think(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("5m", "5m0s"),
        ("90s", "1m30s"),
        ("1h30m", "1h30m0s"),
        ("0", "0s"),
        ("-1m", -1),
    ],
    ids=lambda v: repr(v),
)
def test_parse_keep_alive(value: str | None, expected: str | int | None) -> None:
    assert parse_keep_alive(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", None), ("json", "json"), ('{"type":"object"}', {"type": "object"}), ("xml", "xml")],
    ids=["none", "json", "schema", "passed-through"],
)
def test_parse_format(value: str, expected: Any) -> None:
    assert parse_format(value) == expected


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A loopback URL on which nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield f"127.0.0.1:{port}"


@pytest.fixture
def settings(dead_url: str, tmp_path: Path) -> Settings:
    return Settings(host=parse_host(dead_url), home=tmp_path)


def _run(argv: list[str], settings: Settings) -> tuple[int, str, str]:
    console = Console(io.StringIO(), io.StringIO(), io.StringIO())
    code = run_cli(argv, console, settings)
    assert isinstance(console.stdout, io.StringIO) and isinstance(console.stderr, io.StringIO)
    return code, console.stdout.getvalue(), console.stderr.getvalue()


@pytest.mark.parametrize(
    "argv", [["list"], ["ls"], ["ps"], ["show", "m"], ["stop", "m"]], ids=lambda v: " ".join(v)
)
def test_commands_without_server(argv: list[str], settings: Settings) -> None:
    assert _run(argv, settings) == (1, "", NO_SERVER)


def test_version_without_server(settings: Settings) -> None:
    assert _run(["-v"], settings) == (
        0,
        f"llamaport version is {__version__}\n",
        "Warning: could not connect to a running llamaport instance\n",
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["run", "m", "--think=maybe"],
            'Error: invalid value for --think: "maybe" '
            "(must be true, false, high, medium, low, or max)\n",
        ),
        (["run", "m", "--keepalive", "5x"], 'Error: time: invalid duration "5x"\n'),
        (["run", "m", "--keepalive", "-1"], 'Error: time: missing unit in duration "-1"\n'),
        (["list", "a", "b"], "Error: unrecognized arguments: b\n"),
        (["run", "m", "hi", "--bogus"], "Error: unrecognized arguments: --bogus\n"),
    ],
    ids=["bad-think", "bad-keepalive", "keepalive-without-unit", "extra-arg", "unknown-flag"],
)
def test_usage_errors_fail_before_contacting_server(
    argv: list[str], message: str, settings: Settings
) -> None:
    assert _run(argv, settings) == (1, "", message)
    assert not settings.server_log.exists()  # no background server was started


def test_client_reports_connect_errors(dead_url: str) -> None:
    with Client(f"http://{dead_url}") as client:
        assert client.heartbeat() is False
        with pytest.raises(ConnectError):
            client.tags()
        stream = client.chat({"model": "m", "messages": []})
        with pytest.raises(ConnectError):
            next(stream)
