"""The real ``llamaport`` command against a real server, end to end.

Every command runs as its own process (``python -m llamaport.compat.cli.main``)
with ``LLAMAPORT_HOST`` pointing at a server and a private ``LLAMAPORT_HOME``.
The CLI cannot pass ``num_predict`` to a one-shot ``run``, so these tests use
their own server with a 64-token context: the tiny model's answers then end
after a few dozen tokens at most, whatever it decides to say. The interactive
REPL is driven through a pseudo-terminal with the standard library's ``pty``
(``pexpect`` is not installed here).
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

from tests.conftest import MODEL, Server, _launch, free_port

CLI = [sys.executable, "-m", "llamaport.compat.cli.main"]
CONTEXT = 64
NO_SERVER = "Error: could not connect to llamaport server, run 'llamaport serve' to start it\n"
TIMING_LABELS = (
    "total duration:",
    "load duration:",
    "prompt eval count:",
    "prompt eval duration:",
    "prompt eval rate:",
    "eval count:",
    "eval duration:",
    "eval rate:",
)


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = _launch(
        tmp_path_factory.mktemp("cli-server"),
        {"LLAMAPORT_CONTEXT_LENGTH": str(CONTEXT), "LLAMAPORT_NUM_PARALLEL": "1"},
    )
    yield srv
    srv.stop()


def cli_env(host: str, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "LLAMAPORT_"))}
    env.update(LLAMAPORT_HOST=host, LLAMAPORT_HOME=str(home), COLUMNS="200", **extra)
    return env


@pytest.fixture
def env(cli_server: Server, tmp_path: Path) -> dict[str, str]:
    return cli_env(cli_server.host, tmp_path / "cli-home")


def llamaport(
    *args: str, env: dict[str, str], stdin: str = "", timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=timeout
    )


def table(stdout: str) -> list[list[str]]:
    """Rows of a tablewriter table (columns split on runs of 2+ spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in stdout.splitlines() if line.strip()]


# -- simple commands --------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--version", "-v"])
def test_version(env: dict[str, str], flag: str) -> None:
    done = llamaport(flag, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"llamaport version is {version('llamaport')}\n"
    assert done.stdout == "llamaport version is 0.1.0\n"
    assert "Warning" not in done.stderr


@pytest.mark.parametrize("command", ["list", "ls"])
def test_list(env: dict[str, str], cli_server: Server, command: str) -> None:
    done = llamaport(command, env=env)
    assert done.returncode == 0, done.stderr
    header, *rows = table(done.stdout)
    assert header == ["NAME", "ID", "SIZE", "MODIFIED"]
    (row,) = [r for r in rows if r[0] == MODEL]
    _, ident, size, modified = row
    digest = httpx.get(f"{cli_server.url}/api/tags").json()["models"][0]["digest"]
    assert re.fullmatch(r"[0-9a-f]{12}", ident)
    assert ident == digest[:12]
    assert re.fullmatch(r"\d+(\.\d)? (B|KB|MB|GB|TB)", size), size
    assert modified.endswith(" ago") or modified == "Less than a second ago", modified


@pytest.mark.parametrize(
    ("prefix", "listed"),
    [("smol", True), ("SMOL", True), ("zzz", False)],
    ids=["prefix", "prefix-case-insensitive", "no-match"],
)
def test_list_prefix(env: dict[str, str], prefix: str, listed: bool) -> None:
    done = llamaport("list", prefix, env=env)
    assert done.returncode == 0, done.stderr
    names = [row[0] for row in table(done.stdout)[1:]]
    assert names == ([MODEL] if listed else [])


def test_show(env: dict[str, str]) -> None:
    done = llamaport("show", MODEL, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "  Model" in lines
    assert "  Capabilities" in lines
    rows = {tuple(r) for r in table(done.stdout)}
    assert ("architecture", "llama") in rows
    assert ("context length", "8192") in rows
    assert ("completion",) in rows


# -- run ------------------------------------------------------------------------------


def test_run_one_shot(env: dict[str, str]) -> None:
    done = llamaport("run", MODEL, "Say hi", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert done.stdout.endswith("\n\n")
    assert "Error" not in done.stderr


def test_run_reads_piped_stdin(env: dict[str, str]) -> None:
    done = llamaport("run", MODEL, env=env, stdin="Say hi\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert "Error" not in done.stderr


def test_run_verbose_prints_timings_on_stderr(env: dict[str, str]) -> None:
    done = llamaport("run", "--verbose", MODEL, "Say hi", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    for label in TIMING_LABELS:
        assert label in done.stderr, (label, done.stderr)
        assert label not in done.stdout
    count = re.search(r"^eval count:\s+(\d+) token\(s\)$", done.stderr, flags=re.MULTILINE)
    assert count is not None and int(count.group(1)) > 0
    assert re.search(r"^eval rate:\s+\d+\.\d\d tokens/s$", done.stderr, flags=re.MULTILINE)


def test_run_unknown_model_tries_to_pull_it(env: dict[str, str]) -> None:
    """As Ollama's: a missing model is pulled first; offline, or absent there, it fails."""
    done = llamaport("run", "nope", "hi", env=env)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("pulling manifest\n")
    last = done.stderr.splitlines()[-1]
    assert last.startswith("Error: ")
    assert "registry.ollama.ai" in last or "file does not exist" in last


# -- ps and stop ------------------------------------------------------------------------


def test_ps_after_run_then_stop(env: dict[str, str]) -> None:
    assert llamaport("run", MODEL, "Say hi", env=env).returncode == 0
    done = llamaport("ps", env=env)
    assert done.returncode == 0, done.stderr
    header, *rows = table(done.stdout)
    assert header == ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]
    (row,) = rows
    assert row[0] == MODEL
    assert re.fullmatch(r"[0-9a-f]{12}", row[1])
    assert row[3] == "100% CPU"
    assert row[4] == str(CONTEXT)
    assert re.fullmatch(r"\d+ minutes from now|About a minute from now", row[5]), row[5]

    stopped = llamaport("stop", MODEL, env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == ""
    after = llamaport("ps", env=env)
    assert after.returncode == 0
    assert table(after.stdout) == [["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]]


def test_stop_unknown_model(env: dict[str, str]) -> None:
    done = llamaport("stop", "nope", env=env)
    assert done.returncode == 1
    assert done.stderr == 'Error: couldn\'t find model "nope" to stop\n'


@pytest.mark.parametrize(
    "args",
    [["list"], ["ps"], ["show", MODEL], ["stop", MODEL]],
    ids=["list", "ps", "show", "stop"],
)
def test_no_server(tmp_path: Path, args: list[str]) -> None:
    done = llamaport(*args, env=cli_env(f"127.0.0.1:{free_port()}", tmp_path))
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == NO_SERVER


def test_version_without_server(tmp_path: Path) -> None:
    done = llamaport("--version", env=cli_env(f"127.0.0.1:{free_port()}", tmp_path))
    assert done.returncode == 0
    assert done.stdout == "llamaport version is 0.1.0\n"
    assert done.stderr == "Warning: could not connect to a running llamaport instance\n"


# -- run starts a server when none answers ------------------------------------------------


def _processes_with_env(entry: str) -> list[int]:
    """Pids of this user's processes whose environment contains ``entry`` (``KEY=value``)."""
    needle = entry.encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle in environ:
            pids.append(int(proc.name))
    return pids


def _cmdline(pid: int) -> str:
    try:
        return (Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")).decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _end(pids: list[int], timeout: float = 15.0) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_run_starts_a_background_server(tmp_path: Path) -> None:
    host = f"127.0.0.1:{free_port()}"
    home = tmp_path / "own-home"
    env = cli_env(host, home, LLAMAPORT_CONTEXT_LENGTH=str(CONTEXT), LLAMAPORT_NUM_PARALLEL="1")
    try:
        done = llamaport("run", MODEL, "Say hi", env=env)
        servers = [
            p for p in _processes_with_env(f"LLAMAPORT_HOME={home}") if " serve" in _cmdline(p)
        ]
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip()
        assert "Started a llamaport server in the background" in done.stderr
        assert len(servers) == 1, servers
        assert httpx.head(f"http://{host}/", timeout=5).status_code == 200
        assert (home / "server.log").is_file()
        listed = llamaport("list", env=env)
        assert listed.returncode == 0
        assert MODEL in listed.stdout
    finally:
        # llamaport has no command to stop a server: end the one ``run`` started
        # (and its engine, which shares the environment) by pid.
        ours = [p for p in _processes_with_env(f"LLAMAPORT_HOME={home}") if p != os.getpid()]
        serve = [p for p in ours if " serve" in _cmdline(p)]
        _end(serve)
        _end([p for p in ours if _alive(p)])
    with pytest.raises(httpx.TransportError):
        httpx.head(f"http://{host}/", timeout=2)


# -- the interactive REPL over a pseudo-terminal -----------------------------------------------


class Terminal:
    """A child process on a pseudo-terminal, read with bounded waits (a tiny pexpect)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self.fd = master
        self.pending = ""
        self.transcript = ""

    def expect(self, text: str, timeout: float = 120) -> str:
        """Read until ``text`` appears; return what came before it."""
        deadline = time.monotonic() + timeout
        while text not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {text!r}; got {self.pending!r}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                continue
            try:
                data = os.read(self.fd, 4096).decode(errors="replace")
            except OSError:  # EIO: the child closed the terminal
                data = ""
            if not data:
                raise AssertionError(f"EOF waiting for {text!r}; got {self.pending!r}")
            self.pending += data
            self.transcript += data
        before, _, self.pending = self.pending.partition(text)
        return before

    def sendline(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\r")

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self.fd)


def test_interactive_repl(env: dict[str, str]) -> None:
    term = Terminal([*CLI, "run", MODEL], env={**env, "TERM": "dumb"})
    try:
        term.expect(">>> ")
        term.sendline("/set parameter num_predict 8")
        assert "Set parameter 'num_predict' to '8'" in term.expect(">>> ")

        term.sendline("Say hi")
        reply = term.expect(">>> ")
        answer = reply.split("Say hi", 1)[-1]
        assert answer.strip(), reply
        assert "Error" not in reply

        term.sendline("/show parameters")
        shown = term.expect(">>> ")
        assert "User defined parameters:" in shown
        assert re.search(r"num_predict\s+8", shown), shown

        term.sendline("/bye")
        assert term.wait() == 0
    finally:
        term.close()
