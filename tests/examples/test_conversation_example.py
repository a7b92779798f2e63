"""examples/conversation.py, run as its own process against the test server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import Server

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "conversation.py"


def _run(server: Server, *args: str, host: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LLAMAPORT_HOST": host or ""}
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _check(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    out = result.stdout
    conversation = re.match(r"conversation (conv_\w+)\n", out)
    assert conversation, out
    roles = re.findall(r"^\[(user|assistant)\] ", out, re.M)
    assert roles == ["user", "assistant", "user", "assistant"], out
    assert "> (chained on resp_" in out and out.endswith("deleted\n")


def test_example_with_the_url_as_argument(server: Server) -> None:
    _check(_run(server, server.url))


def test_example_with_llamaport_host(server: Server) -> None:
    result = _run(server, host=server.host)
    _check(result)
    conversation = re.match(r"conversation (conv_\w+)", result.stdout)
    assert conversation is not None
    with server.client() as http:
        gone = http.get(f"/v1/conversations/{conversation.group(1)}")
    assert gone.status_code == 404, "the example deletes what it created"
