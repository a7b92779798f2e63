"""Soak: mixed traffic from 16 concurrent clients against one real ``llamaport serve``.

For ``--seconds`` (default ``SOAK_SECONDS`` or 600) every client loops over a
weighted mix: streamed native and OpenAI chat, embeddings, ``/api/tags``,
conversation writes (a conversation, items, a stored ``/api/chat`` turn),
streams it walks away from after the first lines, and a few bad inputs.
Everything is on loopback and bounded: each request has a timeout, the
whole run a deadline and a request cap.

It prints requests served, errors by class, p50/p99 latency per kind, and
the RSS of the server and its engine processes after warm-up and at the end.
Goals: no 5xx, no request past its timeout, RSS growth under 10%; the exit
status is 1 when one is missed. ``make soak`` runs it; it is not part of
``make test``. Usage: ``python benchmarks/soak.py [--seconds N] [--clients N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from bench import llamaport_kind, running

from llamaport.storage.embedded import EMBEDDED_MODEL

REQUEST_TIMEOUT = 120.0
MAX_REQUESTS = 200_000
RSS_GROWTH_GOAL = 0.10
CACHE_MIB = 32
"""The host prefix cache's bound here: it fills during warm-up, so RSS growth
after it measures leaks, not a cache that is meant to grow to its bound."""
USER = [{"role": "user", "content": "Say something short about the sea."}]
OPTIONS = {"num_predict": 24}


class Outcome(Exception):
    """A request's failure, with the class it is counted under."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


def _check(response: httpx.Response, expect_4xx: bool = False) -> None:
    status = response.status_code
    if status >= 500:
        raise Outcome("5xx", f"{status} {response.text[:200]}")
    if (400 <= status < 500) != expect_4xx:
        raise Outcome("unexpected status", f"{status} {response.text[:200]}")


async def _stream_lines(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], keep: int | None = None
) -> None:
    """Read a streamed answer; ``keep``: stop after that many lines (a client walking away)."""
    async with client.stream("POST", path, json=body) as response:
        if response.status_code != 200:
            await response.aread()
            _check(response)
        count = 0
        async for line in response.aiter_lines():
            if '"error"' in line:
                raise Outcome("in-band error", line[:200])
            count += 1
            if keep is not None and count >= keep:
                return


async def native_chat(client: httpx.AsyncClient, rng: random.Random) -> None:
    options = {**OPTIONS, "seed": rng.randrange(1 << 30)}
    body = {"model": EMBEDDED_MODEL, "messages": USER, "options": options}
    await _stream_lines(client, "/api/chat", body)


async def openai_chat(client: httpx.AsyncClient, rng: random.Random) -> None:
    body = {"model": EMBEDDED_MODEL, "messages": USER, "stream": True, "max_tokens": 24}
    body["seed"] = rng.randrange(1 << 30)
    await _stream_lines(client, "/v1/chat/completions", body)


async def walk_away(client: httpx.AsyncClient, rng: random.Random) -> None:
    body = {"model": EMBEDDED_MODEL, "messages": USER, "options": {"num_predict": 200}}
    await _stream_lines(client, "/api/chat", body, keep=rng.randint(1, 3))


async def embed(client: httpx.AsyncClient, rng: random.Random) -> None:
    words = " ".join(rng.choice(["sea", "salt", "wave", "ship", "gull"]) for _ in range(8))
    _check(await client.post("/api/embed", json={"model": EMBEDDED_MODEL, "input": [words, "x"]}))


async def tags(client: httpx.AsyncClient, rng: random.Random) -> None:
    del rng
    _check(await client.get("/api/tags"))


async def conversation(client: httpx.AsyncClient, rng: random.Random) -> None:
    """Create a conversation with an item, add one, run one stored turn, read it back."""
    item = {"type": "message", "role": "user", "content": f"note {rng.randrange(1000)}"}
    created = await client.post("/v1/conversations", json={"items": [item]})
    _check(created)
    cid = created.json()["id"]
    _check(await client.post(f"/v1/conversations/{cid}/items", json={"items": [item]}))
    turn = {"model": EMBEDDED_MODEL, "messages": USER, "conversation": cid, "options": OPTIONS}
    await _stream_lines(client, "/api/chat", turn)
    _check(await client.get(f"/v1/conversations/{cid}/items"))


BAD_INPUTS: list[tuple[str, bytes]] = [
    ("/api/chat", b'{"model": '),
    ("/api/generate", b'{"model": "no-such-model", "prompt": "hi"}'),
    ("/api/embed", b'{"model": 5}'),
    ("/v1/chat/completions", b'{"model": "smollm2:135m", "messages": "hi"}'),
    ("/v1/conversations/conv_missing/items", b'{"items": []}'),
]


async def bad_input(client: httpx.AsyncClient, rng: random.Random) -> None:
    path, raw = rng.choice(BAD_INPUTS)
    headers = {"Content-Type": "application/json"}
    _check(await client.post(path, content=raw, headers=headers), expect_4xx=True)


Action = Callable[[httpx.AsyncClient, random.Random], Awaitable[None]]
MIX: list[tuple[Action, int]] = [
    (native_chat, 25),
    (openai_chat, 10),
    (walk_away, 10),
    (embed, 15),
    (tags, 15),
    (conversation, 10),
    (bad_input, 15),
]


class Tally:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.examples: dict[str, str] = {}
        self.count = 0

    async def run(self, client: httpx.AsyncClient, action: Action, rng: random.Random) -> None:
        start = time.perf_counter()
        try:
            await asyncio.wait_for(action(client, rng), REQUEST_TIMEOUT)
        except Outcome as exc:
            self._error(exc.kind, str(exc))
        except TimeoutError:
            self._error("timeout", action.__name__)
        except httpx.HTTPError as exc:
            self._error(f"transport {type(exc).__name__}", repr(exc))
        self.latency[action.__name__].append(time.perf_counter() - start)
        self.count += 1

    def _error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        self.examples.setdefault(kind, detail[:300])


async def client_loop(url: str, seed: int, deadline: float, tally: Tally) -> None:
    rng = random.Random(seed)
    actions, weights = zip(*MIX, strict=True)
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT) as client:
        while time.monotonic() < deadline and tally.count < MAX_REQUESTS:
            await tally.run(client, rng.choices(actions, weights)[0], rng)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def rss(server_pid: int) -> tuple[int, int]:
    """(server KiB, engines KiB): the server and its direct children."""
    children: list[int] = []
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        children += [int(p) for p in (task / "children").read_text().split()]
    return _rss_kib(server_pid), sum(_rss_kib(pid) for pid in children)


async def soak(
    url: str, pid: int, clients: int, seconds: float
) -> tuple[Tally, tuple[int, int], float]:
    """Warm up (one of each kind: the model loads, the database opens), then
    measure RSS and run; returns the tally, the RSS after warm-up and the run's seconds."""
    warm = Tally()
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT) as client:
        for action, _ in MIX:
            await warm.run(client, action, random.Random(0))
    start_rss = rss(pid)
    tally = Tally()
    start = time.monotonic()
    deadline = start + seconds
    await asyncio.gather(*(client_loop(url, seed, deadline, tally) for seed in range(clients)))
    return tally, start_rss, time.monotonic() - start


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def report(tally: Tally, start: tuple[int, int], end: tuple[int, int], seconds: float) -> bool:
    print(f"requests served: {tally.count} in {seconds:.0f} s ({tally.count / seconds:.1f}/s)")
    print("errors by class:", dict(tally.errors) or "none")
    for kind, example in tally.examples.items():
        print(f"  e.g. {kind}: {example}")
    print(f"{'kind':<14}{'count':>8}{'p50 s':>9}{'p99 s':>9}")
    for name, values in tally.latency.items():
        p50, p99 = _percentile(values, 50), _percentile(values, 99)
        print(f"{name:<14}{len(values):>8}{p50:>9.3f}{p99:>9.3f}")
    growth = (sum(end) - sum(start)) / max(1, sum(start))
    print(f"RSS server: {start[0] / 1024:.1f} -> {end[0] / 1024:.1f} MiB")
    print(f"RSS engines: {start[1] / 1024:.1f} -> {end[1] / 1024:.1f} MiB")
    print(f"RSS growth (server + engines): {growth:+.1%}")
    failed = tally.errors["5xx"] + tally.errors["timeout"]
    return failed == 0 and growth < RSS_GROWTH_GOAL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    print(f"soak: {args.clients} clients for {args.seconds:.0f} s on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="llamaport-soak-") as home:
        kind = llamaport_kind(args.threads, Path(home), {"LLAMAPORT_CACHE_RAM": str(CACHE_MIB)})
        with running(kind, args.parallel, Path(home) / "server.log") as (url, proc, _):
            tally, start, elapsed = asyncio.run(soak(url, proc.pid, args.clients, args.seconds))
            ok = report(tally, start, rss(proc.pid), elapsed)
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
