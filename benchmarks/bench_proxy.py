"""The cost of the proxy hop: the same upstream called directly and through a proxy.

Starts a ``llamaport serve`` upstream and a second one that routes ``remote``
to it (kind ``ollama``), then streams ``/api/generate`` at 1 and 16
concurrent streams against each: time to first token (p50 over every request)
and streamed tokens/s (first token to last, per stream, median). Goal: the
proxy adds at most 2 ms p50 to time to first token and costs at most 3% of
streamed tokens/s. The table goes to its own section of benchmarks/RESULTS.md.

In a deployment the client, the proxy and its upstream are different
machines. Here they share one, so the upstream (engine threads included) gets
the first half of the CPUs and the proxy the rest, where the machine has two
or more (``taskset``). The client runs on the upstream's CPUs
(``sched_setaffinity``): there its work weighs on direct and proxied requests
alike, where beside the proxy it delayed only proxied ones. With the client
on the proxy's CPU, a 16-stream burst's 16 client threads and the proxy took
turns on one core, and the hop read +6.5 to +11.4 ms in three runs where it
read -0.7 to +0.6 ms with the client on the upstream's.

Time to first token comes from short requests (``--first-token-tokens``),
many bursts of them; tokens/s from long ones. What a reply does after its
first token cannot move that token, but 64-token bursts left the upstream's
slots and host cache different from one burst to the next: over eight bursts
the direct median moved between 152 and 192 ms from run to run, and the hop
with it (-6.2 and +4.5 ms), where 32 bursts of 4-token requests moved it by
less than 1.5 ms.
Usage: ``python benchmarks/bench_proxy.py [--tokens N] [--rounds N]
[--first-token-tokens N] [--first-token-rounds N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
from _sections import write_section

from llamaport.storage.embedded import EMBEDDED_MODEL


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(home: Path, cpus: set[int], **extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "LLAMAPORT_HOME": str(home), "LLAMAPORT_HOST": f"127.0.0.1:{port}"}
    env.update(LLAMAPORT_NUM_PARALLEL="16", LLAMAPORT_CONTEXT_LENGTH="2048", **extra)
    log = (home / "server.log").open("wb")
    pin = ["taskset", "-c", ",".join(map(str, sorted(cpus)))]
    command = [*pin, sys.executable, "-m", "llamaport.compat.cli.main", "serve"]
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.head(url, timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"llamaport serve did not start: see {home / 'server.log'}")


_clients = threading.local()


def _client() -> httpx.Client:
    """This thread's client: one per thread and kept, since a new ``httpx.Client``
    per request (SSL context included) cost more than the hop being measured.

    Its connections outlive a round of the other server (a 16-stream round lasts
    some 7 s, past httpx's 5 s pool expiry), so every request goes out on an open
    connection, as an app's pooled client sends them. With fresh connections
    each 16-stream round, direct rounds paid 16 connection set-ups on the
    upstream's CPU and proxied ones on the proxy's, whose own pool to the
    upstream stays open since ``serve`` keeps idle connections: one run read
    -13.9 ms at 16 streams."""
    client: httpx.Client | None = getattr(_clients, "client", None)
    if client is None:
        limits = httpx.Limits(keepalive_expiry=120)
        client = _clients.client = httpx.Client(timeout=300, limits=limits)
    return client


def _stream(url: str, model: str, tokens: int, seed: int) -> tuple[float, float]:
    """Time to first token (s) and streamed tokens/s of one request."""
    body = {
        "model": model,
        "prompt": "Write a long story about a dragon who learns to bake.",
        "options": {"num_predict": tokens, "temperature": 0.8, "seed": seed},
    }
    start = time.perf_counter()
    first = last = 0.0
    count = 0
    with _client().stream("POST", url + "/api/generate", json=body) as resp:
        for line in resp.iter_lines():
            if not line:
                continue
            part = json.loads(line)
            now = time.perf_counter()
            if part.get("response"):
                first = first or now
                last, count = now, count + 1
    rate = (count - 1) / (last - first) if count > 1 and last > first else 0.0
    return first - start, rate


def _measure(
    urls: tuple[tuple[str, str], tuple[str, str]], streams: int, tokens: int, rounds: int
) -> list[tuple[float, float]]:
    """Median time to first token and tokens/s for each (url, model), the two
    taking turns round by round so that drift in the machine falls on both,
    and going first in every other round. With the direct request always
    first, the upstream's own access log put its first token 15.9 ms after the
    request for proxied requests (each sent just after a direct one ended) and
    14.0 ms for direct ones, against 15.7 ms for either kind from two direct
    clients: which request went before moved the hop by more than its goal.

    Every request has a seed of its own. With one seed for a direct request and
    the proxied one after it, the upstream saved each direct reply's KV into its
    host cache when the proxied request took the slot, and skipped the save the
    other way round (the proxied reply was the same text): its own access log put
    proxied first tokens 1.5 ms later, and that read as hop."""
    ttfts: list[list[float]] = [[], []]
    rates: list[list[float]] = [[], []]
    with ThreadPoolExecutor(streams) as pool:
        for r in range(rounds):
            for i, (url, model) in list(enumerate(urls))[:: -1 if r % 2 else 1]:
                seeds = range((2 * r + i) * streams, (2 * r + i + 1) * streams)
                runs = pool.map(
                    _stream, [url] * streams, [model] * streams, [tokens] * streams, seeds
                )
                for ttft, rate in runs:
                    ttfts[i].append(ttft)
                    rates[i].append(rate)
    return [(statistics.median(t), statistics.median(r)) for t, r in zip(ttfts, rates, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64, help="tokens per request for tokens/s")
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="bursts at 16 streams for tokens/s, even so each side goes first as often; "
        "1 stream sends as many requests",
    )
    parser.add_argument(
        "--first-token-tokens", type=int, default=4, help="tokens per request for first tokens"
    )
    parser.add_argument(
        "--first-token-rounds",
        type=int,
        default=32,
        help="bursts at 16 streams for time to first token (a burst's median moves by "
        "milliseconds from one to the next); 1 stream sends as many requests",
    )
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    half = max(1, len(cpus) // 2)
    upstream_cpus, proxy_cpus = set(cpus[:half]), set(cpus[half:] or cpus)
    os.sched_setaffinity(0, upstream_cpus)
    threads = str(len(upstream_cpus))
    with tempfile.TemporaryDirectory() as tmp:
        up_home, proxy_home = Path(tmp, "upstream"), Path(tmp, "proxy")
        up_home.mkdir()
        proxy_home.mkdir()
        upstream, up_url = _serve(up_home, upstream_cpus, LLAMAPORT_NUM_THREAD=threads)
        (proxy_home / "config.toml").write_text(
            f'[[upstream]]\nname = "node"\nkind = "ollama"\nurl = "{up_url}"\n'
            f'[[route]]\nmodel = "remote"\nupstreams = ["node"]\n'
            f'upstream_model = "{EMBEDDED_MODEL}"\n'
        )
        proxy, proxy_url = _serve(proxy_home, proxy_cpus)
        try:
            _stream(up_url, EMBEDDED_MODEL, 8, 0)  # load the model
            rows = []
            pair = ((up_url, EMBEDDED_MODEL), (proxy_url, "remote"))
            for streams in (1, 16):
                # as many requests at 1 stream as at 16
                ttft_rounds = args.first_token_rounds * 16 // streams
                rate_rounds = args.rounds * 16 // streams
                first = _measure(pair, streams, args.first_token_tokens, ttft_rounds)
                rate = _measure(pair, streams, args.tokens, rate_rounds)
                rows.append((streams, ttft_rounds * streams, rate_rounds * streams, first, rate))
        finally:
            for proc in (proxy, upstream):
                proc.terminate()
                proc.wait(timeout=30)
    lines = [
        "## The proxy hop (`benchmarks/bench_proxy.py`)",
        "",
        f"Written on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs: "
        f"`{EMBEDDED_MODEL}` on a llamaport upstream (kind ollama) pinned to CPUs "
        f"{sorted(upstream_cpus)} with {threads} engine thread(s), the proxy on CPUs "
        f"{sorted(proxy_cpus)}, the client beside the upstream; time to first token from "
        f"requests of {args.first_token_tokens} tokens, tokens/s from requests of "
        f"{args.tokens}; direct and proxied rounds alternate, each going first in every "
        "other round; medians over every request. Goal: at most +2 ms time to first "
        "token and -3% streamed tokens/s.",
        "",
        "| streams | requests each (first token, tok/s) | TTFT direct | TTFT proxied | added "
        "| tok/s direct | tok/s proxied | ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for streams, n_first, n_rate, first, rate in rows:
        (d_ttft, _), (p_ttft, _) = first
        (_, d_rate), (_, p_rate) = rate
        ratio = p_rate / d_rate if d_rate else 0.0
        lines.append(
            f"| {streams} | {n_first}, {n_rate} | {d_ttft * 1000:.1f} ms "
            f"| {p_ttft * 1000:.1f} ms | {(p_ttft - d_ttft) * 1000:+.1f} ms | {d_rate:.1f} "
            f"| {p_rate:.1f} | {ratio:.2f}x |"
        )
    print(write_section("bench_proxy", "\n".join(lines)))


if __name__ == "__main__":
    main()
