"""Decode throughput: llamaport beside llama-cpp-python, in one run.

1. Single stream: tokens/s of one streamed ``/api/generate`` (measured by the
   client, first token to last) against llama-cpp-python's own ``Llama.generate``
   loop on the same model, threads and greedy sampling. Goal: >= 0.95x.
2. Concurrency: aggregate tokens/s of 8 concurrent streamed requests against
   one request on the same server. Goal: >= 1.6x on 2 cores.

The results table goes to benchmarks/RESULTS.md. Usage:
``python benchmarks/bench_decode.py [--threads N] [--tokens N] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from llamaport.storage.embedded import EMBEDDED_MODEL, embedded_gguf_path

RESULTS = Path(__file__).with_name("RESULTS.md")
PROMPT = (
    "<|im_start|>user\nWrite a long story about a dragon who learns to bake.<|im_end|>\n"
    "<|im_start|>assistant\n"
)


@dataclass
class Run:
    tokens: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def raw_loop(threads: int, max_tokens: int) -> Run:
    """llama-cpp-python's own generation loop: greedy, stop at end of generation."""
    from llama_cpp import Llama

    path = embedded_gguf_path()
    assert path is not None
    llm = Llama(
        model_path=str(path), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    tokens = llm.tokenize(PROMPT.encode(), add_bos=False, special=True)
    count, first = 0, 0.0
    for token in llm.generate(tokens, temp=0.0, top_k=1, repeat_penalty=1.0):
        if count == 0:
            first = time.perf_counter()
        if llm.token_eos() == token or count >= max_tokens:
            break
        count += 1
    end = time.perf_counter()
    llm.close()
    return Run(count - 1, end - first)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A ``llamaport serve`` process on a free loopback port."""

    def __init__(self, threads: int, parallel: int) -> None:
        self.home = tempfile.TemporaryDirectory(prefix="llamaport-bench-")
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "LLAMAPORT_HOME": self.home.name,
            "LLAMAPORT_HOST": f"127.0.0.1:{port}",
            "LLAMAPORT_NUM_THREAD": str(threads),
            "LLAMAPORT_NUM_PARALLEL": str(parallel),
            "LLAMAPORT_CONTEXT_LENGTH": "2048",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llamaport.compat.cli.main", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.head(self.url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("llamaport serve did not start")

    def stream(self, max_tokens: int, seed: int = 0, greedy: bool = True) -> tuple[Run, float]:
        """One streamed generation: (client-side decode run, wall seconds)."""
        options = {"num_predict": max_tokens, "seed": seed, "repeat_penalty": 1.0}
        options |= {"temperature": 0.0} if greedy else {"temperature": 0.8}
        body = {"model": EMBEDDED_MODEL, "prompt": PROMPT, "raw": True, "options": options}
        start = time.perf_counter()
        first = 0.0
        last: dict[str, object] = {}
        with httpx.stream("POST", f"{self.url}/api/generate", json=body, timeout=600) as r:
            for line in r.iter_lines():
                last = json.loads(line)
                if not first:
                    first = time.perf_counter()
        end = time.perf_counter()
        count = int(last["eval_count"])  # type: ignore[call-overload]
        return Run(count - 1, end - first), end - start

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.home.cleanup()


def concurrent(server: Server, n: int, max_tokens: int) -> Run:
    """n streamed requests at once: total tokens over the wall time of all of them."""
    runs: list[tuple[Run, float]] = []

    def one(seed: int) -> None:
        runs.append(server.stream(max_tokens, seed=seed, greedy=False))

    start = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return Run(sum(r.tokens + 1 for r, _ in runs), wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    raw = [raw_loop(args.threads, args.tokens) for _ in range(args.rounds)]
    single_server = Server(args.threads, parallel=1)
    try:
        single_server.stream(8)
        ours = [single_server.stream(args.tokens)[0] for _ in range(args.rounds)]
    finally:
        single_server.close()
    batch_server = Server(args.threads, parallel=8)
    try:
        batch_server.stream(8)
        one = [concurrent(batch_server, 1, args.tokens) for _ in range(args.rounds)]
        eight = [concurrent(batch_server, 8, args.tokens) for _ in range(args.rounds)]
    finally:
        batch_server.close()

    raw_rate = statistics.median(r.rate for r in raw)
    our_rate = statistics.median(r.rate for r in ours)
    one_rate = statistics.median(r.rate for r in one)
    eight_rate = statistics.median(r.rate for r in eight)
    rows = [
        ("single stream, llama-cpp-python `Llama.generate`", f"{raw_rate:.1f}", "1.00x", ""),
        (
            "single stream, llamaport streamed `/api/generate`",
            f"{our_rate:.1f}",
            f"{our_rate / raw_rate:.2f}x",
            ">= 0.95x",
        ),
        ("llamaport, 1 streamed request (aggregate)", f"{one_rate:.1f}", "1.00x", ""),
        (
            "llamaport, 8 concurrent streamed requests (aggregate)",
            f"{eight_rate:.1f}",
            f"{eight_rate / one_rate:.2f}x",
            ">= 1.6x",
        ),
    ]
    report(rows, args)


def report(rows: list[tuple[str, str, str, str]], args: argparse.Namespace) -> None:
    cpu = platform.processor() or platform.machine()
    lines = [
        "# Benchmark results",
        "",
        f"Written by `benchmarks/bench_decode.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        f"Machine: {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
        f"model `{EMBEDDED_MODEL}` (SmolLM2-135M-Instruct Q4_1), {args.threads} threads, "
        f"up to {args.tokens} tokens per request, median of {args.rounds} rounds. "
        "Single-stream rates count decode tokens from the first streamed token to the last, "
        "greedy; the concurrency rows are total generated tokens over wall time "
        "(temperature 0.8, one seed per request, `LLAMAPORT_NUM_PARALLEL=8`).",
        "",
        "| measurement | tokens/s | ratio | goal |",
        "|---|---:|---:|---|",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
