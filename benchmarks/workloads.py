"""The workloads of ``make bench``, run the same way against every server.

Everything speaks OpenAI's ``/v1/chat/completions`` (the one face all three
servers share), streamed, measured by the client: time to first content
delta, content deltas as tokens (the same count for every server), wall time
for aggregates. Concurrency uses one thread and one connection per stream.

Clients are made before the clock starts. One ``httpx.Client`` costs some
27 ms of CPU (its SSL context): made inside each stream, the 8 clients of 8
streams reached the server over 65 ms, holding the GIL and taking CPU from the
server being measured, and that counted as its time to first token.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

STORY = "Write a long story about a dragon who learns to bake."


def client() -> httpx.Client:
    """A client for streams: made once, a connection per request. With
    keep-alive, a trial run failed on a kept connection that its server had
    closed as the next request went out ("Server disconnected")."""
    return httpx.Client(timeout=600, limits=httpx.Limits(max_keepalive_connections=0))


@dataclass
class Stream:
    """One streamed completion as the client saw it."""

    ttft: float
    seconds: float
    tokens: int
    cached: int | None = None
    prompt: int | None = None


@dataclass
class Concurrency:
    streams: int
    wall: float
    runs: list[Stream]

    @property
    def tokens_per_second(self) -> float:
        return sum(r.tokens for r in self.runs) / self.wall if self.wall > 0 else 0.0

    @property
    def mean_ttft(self) -> float:
        return statistics.fmean(r.ttft for r in self.runs)


@dataclass
class Conversations:
    """Conversations taking turns: cold first turns against warm later ones."""

    conversations: int
    slots: int
    cold: list[Stream] = field(default_factory=list)
    warm: list[Stream] = field(default_factory=list)
    restarted: bool = False
    """Stored conversations whose next turns came after ``serve`` restarted."""

    @property
    def cold_ttft(self) -> float:
        return statistics.median(r.ttft for r in self.cold)

    @property
    def warm_ttft(self) -> float:
        return statistics.median(r.ttft for r in self.warm)

    @property
    def cached_share(self) -> float | None:
        """Cached prompt tokens over prompt tokens in the warm turns, if reported."""
        pairs = [(r.cached, r.prompt) for r in self.warm if r.cached is not None and r.prompt]
        if not pairs:
            return None
        return sum(c for c, _ in pairs) / sum(p for _, p in pairs if p)


def _cached(usage: dict[str, Any] | None, timings: dict[str, Any] | None) -> int | None:
    """Reused prompt tokens: OpenAI's usage detail, else llama-server's ``cache_n``."""
    details = (usage or {}).get("prompt_tokens_details") or {}
    if details.get("cached_tokens") is not None:
        return int(details["cached_tokens"])
    if timings and timings.get("cache_n") is not None:
        return int(timings["cache_n"])
    return None


def stream_chat(
    client: httpx.Client,
    url: str,
    model: str,
    messages: list[dict[str, str]],
    max_tokens: int,
    **sampling: Any,
) -> tuple[Stream, str]:
    """One streamed chat completion: what the client measured, and the reply."""
    body = {
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
        **sampling,
    }
    start = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    usage: dict[str, Any] | None = None
    timings: dict[str, Any] | None = None
    with client.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            usage = event.get("usage") or usage
            timings = event.get("timings") or timings
            for choice in event.get("choices") or []:
                text = (choice.get("delta") or {}).get("content")
                if text:
                    first = first or time.perf_counter()
                    parts.append(text)
    end = time.perf_counter()
    prompt = (usage or {}).get("prompt_tokens")
    run = Stream(
        ttft=(first or end) - start,
        seconds=end - start,
        tokens=len(parts),
        cached=_cached(usage, timings),
        prompt=int(prompt) if prompt is not None else None,
    )
    return run, "".join(parts)


def concurrent(url: str, model: str, streams: int, max_tokens: int) -> Concurrency:
    """``streams`` story completions at once (temperature 0.7, a seed each), every
    thread's client made first and the threads let go together."""
    runs: list[Stream] = []
    lock = threading.Lock()
    starts: list[float] = []
    go = threading.Barrier(streams, action=lambda: starts.append(time.perf_counter()))
    clients = [client() for _ in range(streams)]

    def one(i: int) -> None:
        messages = [{"role": "user", "content": STORY}]
        go.wait(timeout=60)
        run, _ = stream_chat(
            clients[i], url, model, messages, max_tokens, temperature=0.7, seed=1000 + i
        )
        with lock:
            runs.append(run)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for each in clients:
            each.close()
    return Concurrency(streams, time.perf_counter() - starts[0], runs)


def opening(k: int) -> str:
    """Some 900 tokens of history that no other conversation shares."""
    facts = " ".join(f"Fact {k}.{i}: the crate numbered {i * 7 + k} is blue." for i in range(70))
    return f"Conversation {k}. Remember these facts. {facts}"


def take_turns(url: str, model: str, conversations: int, slots: int, rounds: int) -> Conversations:
    """Round-robin turns; round 1 is cold, later rounds should find their history."""
    out = Conversations(conversations, slots)
    histories: list[list[dict[str, str]]] = [[] for _ in range(conversations)]
    with client() as http:
        for r in range(rounds):
            for k, history in enumerate(histories):
                history.append({"role": "user", "content": opening(k) if r == 0 else "And then?"})
                run, reply = stream_chat(http, url, model, history, 16, temperature=0, seed=1)
                history.append({"role": "assistant", "content": reply})
                (out.cold if r == 0 else out.warm).append(run)
    return out


def load(url: str, model: str) -> None:
    """Load ``model`` with a load-only request (native), so no turn counts the load."""
    httpx.post(f"{url}/api/generate", json={"model": model}, timeout=600).raise_for_status()


def new_conversation(url: str) -> str:
    """A stored conversation (llamaport's ``/v1/conversations``); its id."""
    r = httpx.post(f"{url}/v1/conversations", json={}, timeout=60)
    r.raise_for_status()
    return str(r.json()["id"])


def stored_turn(client: httpx.Client, url: str, model: str, conversation: str, text: str) -> Stream:
    """One streamed native ``/api/chat`` turn of a stored conversation (16 tokens,
    greedy): the server adds the stored history and keeps the reply."""
    body = {
        "model": model,
        "conversation": conversation,
        "messages": [{"role": "user", "content": text}],
        "options": {"num_predict": 16, "temperature": 0, "seed": 1},
    }
    start = time.perf_counter()
    first: float | None = None
    tokens = 0
    last: dict[str, Any] = {}
    with client.stream("POST", f"{url}/api/chat", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line:
                continue
            last = json.loads(line)
            if (last.get("message") or {}).get("content"):
                first = first or time.perf_counter()
                tokens += 1
    end = time.perf_counter()
    return Stream(
        ttft=(first or end) - start,
        seconds=end - start,
        tokens=tokens,
        cached=last.get("prompt_cached_count"),
        prompt=last.get("prompt_eval_count"),
    )


def embed_rate(url: str, model: str, n: int) -> tuple[float, float]:
    """Inputs per second of ``/v1/embeddings`` (the face every server shares): one
    request of ``n`` inputs, then ``n`` requests of one."""
    texts = [f"Sentence number {i} about baking bread." for i in range(n)]
    with httpx.Client(base_url=url, timeout=600) as c:

        def embed(inputs: list[str]) -> None:
            c.post("/v1/embeddings", json={"model": model, "input": inputs}).raise_for_status()

        embed(texts[:1])
        start = time.perf_counter()
        embed(texts)
        batched = n / (time.perf_counter() - start)
        start = time.perf_counter()
        for text in texts:
            embed([text])
        single = n / (time.perf_counter() - start)
    return batched, single


def wait_ready(
    client: httpx.Client, url: str, probe: str, deadline_s: float, alive: Callable[[], bool]
) -> float:
    """Seconds until ``probe`` answers 200 (bounded; fails if the process exits).

    ``client`` is made before the server starts: ``httpx.get`` builds a client,
    SSL context included, per call, 27 ms of CPU that every 20 ms took half a
    core from the starting server on a 2-core machine."""
    start = time.perf_counter()
    while time.perf_counter() - start < deadline_s:
        if not alive():
            raise RuntimeError(f"server at {url} exited before it was ready")
        try:
            if client.get(f"{url}{probe}").status_code == 200:
                return time.perf_counter() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"server at {url} not ready after {deadline_s} s")
