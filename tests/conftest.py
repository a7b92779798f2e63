"""Real servers for the tests: ``llamaport serve`` processes on free loopback ports.

``server`` is one shared server (session scope) with the embedded model.
``start_server`` starts a dedicated one with extra environment, for tests
that need their own limits (queue size, parallelism, keep-alive) or that kill
its engine. Every server gets its own temporary LLAMAPORT_HOME, and every wait
here is bounded.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from tests.compat._registry import DockerRegistry

MODEL = "smollm2:135m"
UNENDING = {
    "type": "object",
    "properties": {"story": {"type": "string", "minLength": 5000}},
    "required": ["story"],
}
"""A ``format`` that holds a reply open: at least 1,254 tokens, which constrained
decoding cannot end early (a sampled reply could reach its end-of-text and
free the slot before a test is done with it)."""
START_TIMEOUT = 90.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite the expected outputs under tests/testdata instead of comparing",
    )


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
"""``/metrics`` samples by name and sorted labels."""


def metric_samples(c: httpx.Client) -> Samples:
    """Every sample of the server's ``/metrics``, parsed by prometheus-client."""
    r = c.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    url: str
    home: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")

    def client(self, timeout: float = 120.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def gauge(self, name: str) -> float:
        """The first ``/metrics`` sample whose line starts with ``name`` (0 if none)."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        line = next((x for x in text.splitlines() if x.startswith(name)), None)
        return float(line.rsplit(" ", 1)[1]) if line else 0.0

    def wait_gauge(self, name: str, least: float, what: str, timeout: float = 60) -> None:
        """Poll ``/metrics`` (bounded) until ``name`` is at least ``least``."""
        deadline = time.monotonic() + timeout
        while self.gauge(name) < least:
            assert time.monotonic() < deadline, what
            time.sleep(0.05)

    def access(self, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        """The server's access lines so far (one JSON object per request), those
        for ``method`` and ``path`` (query string included) where given."""
        text = self.log.read_text()
        lines = text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]
        found = [json.loads(x.split(" access ", 1)[1]) for x in lines if " access {" in x]
        return [a for a in found if method in (None, a["method"]) and path in (None, a["path"])]

    def engine_pids(self) -> list[int]:
        """The engine processes this server started (its direct children)."""
        pids: list[int] = []
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            children = (task / "children").read_text().split()
            pids.extend(int(p) for p in children)
        return pids

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


SERVE = (sys.executable, "-m", "llamaport.compat.cli.main", "serve")


def _launch(
    home: Path,
    extra: dict[str, str],
    prefix: Sequence[str] = (),
    command: Sequence[str] = SERVE,
    probe: str = "/",
) -> Server:
    """``extra`` may fix the address (``LLAMAPORT_HOST``), e.g. to restart a server;
    ``prefix`` runs the server under a wrapper command (one that ends by exec-ing it).
    ``command`` serves llamaport's app some other way (it reads the address from
    the environment); it is ready once ``HEAD probe`` answers 200."""
    port = (
        int(extra["LLAMAPORT_HOST"].rsplit(":", 1)[1]) if "LLAMAPORT_HOST" in extra else free_port()
    )
    env = {
        **os.environ,
        "LLAMAPORT_HOME": str(home),
        "LLAMAPORT_HOST": f"127.0.0.1:{port}",
        "LLAMAPORT_CONTEXT_LENGTH": "2048",
        "LLAMAPORT_NUM_PARALLEL": "4",
        **extra,
    }
    for key in ("OLLAMA_HOST", "OLLAMA_MODELS"):
        env.pop(key, None)
    home.mkdir(parents=True, exist_ok=True)
    log = home / "test-server.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*prefix, *command],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Server(url=f"http://127.0.0.1:{port}", home=home, env=env, proc=proc, log=log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.head(server.url + probe, timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"llamaport serve did not start:\n{log.read_text()[-4000:]}")


def serving(home: Path, **extra: str) -> Iterator[Server]:
    """A server for a fixture's lifetime: ``yield from serving(...)`` in the fixture."""
    srv = _launch(home, extra)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serving(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="session")
def docker_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerRegistry]:
    """Debian's docker-registry on a free loopback port, for pull/push (compat tests, examples)."""
    from tests.compat._registry import start_docker_registry  # it imports this module

    registry = start_docker_registry(tmp_path_factory.mktemp("registry"))
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def thinking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose ``smollm2-think:135m`` thinks (see :mod:`tests.compat._thinking`)."""
    from tests.compat._thinking import THINKING_MODEL, register_gguf, write_thinking_gguf

    home = tmp_path_factory.mktemp("thinking-home")
    gguf_path = tmp_path_factory.mktemp("thinking-gguf") / "smollm2-think.gguf"
    write_thinking_gguf(gguf_path)
    register_gguf(home / "models", THINKING_MODEL, gguf_path)
    yield from serving(home)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(home: Path | None = None, prefix: Sequence[str] = (), **extra: str) -> Server:
        srv = _launch(home or tmp_path / f"home{len(started)}", extra, prefix)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c
