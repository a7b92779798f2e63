"""The proxy's routing policies past one machine, by simulation.

Drives :func:`llamaport.runtime.proxy.choose` (the same pure function the
router calls) with 64 simulated upstreams: each has ``SLOTS`` concurrent
sequences, a FIFO queue, and a prefix cache holding the KV of its
``CACHE_CONVERSATIONS`` most recently served conversations. A turn's prompt
is the conversation's whole history plus the new message; a cached prefix
costs nothing to prefill, the rest ``PREFILL_S_PER_TOKEN`` each, and every
generated token ``DECODE_S_PER_TOKEN``. 10,000 conversations take turns
(exponential think time), and every simulated minute one upstream fails (its
cache is lost) and comes back ``DOWN_S`` later, empty.

Reports, for ``least_outstanding``, ``conversation_affinity`` and ``first``:
the prefix-cache hit ratio (cached prompt tokens over all prompt tokens),
p50/p99 queueing before a slot, and the turns moved because their last
upstream was down. The table goes to its own section of benchmarks/RESULTS.md.
Usage: ``python benchmarks/route_sim.py [--conversations N] [--seed N]``.
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from _sections import write_section

from llamaport.runtime.proxy import Link, choose
from llamaport.runtime.proxy.config import Balance

UPSTREAMS = 64
SLOTS = 8
MAX_QUEUE = 512
CACHE_CONVERSATIONS = 48
PREFILL_S_PER_TOKEN = 0.0004
DECODE_S_PER_TOKEN = 0.02
FAIL_EVERY_S = 60.0
DOWN_S = 120.0
THINK_S = 30.0
ARRIVAL_SPAN_S = 1800.0
POLICIES: tuple[Balance, ...] = ("least_outstanding", "conversation_affinity", "first")


@dataclass
class Upstream:
    name: str
    up: bool = True
    busy: int = 0
    queue: deque[int] = field(default_factory=deque)
    cache: OrderedDict[int, None] = field(default_factory=OrderedDict)

    def link(self) -> Link:
        return Link(self.name, self.up, self.busy + len(self.queue), SLOTS)


@dataclass
class Conversation:
    turns_left: int
    history: int = 0
    last: str | None = None


@dataclass
class Stats:
    prompt_tokens: int = 0
    cached_tokens: int = 0
    waits: list[float] = field(default_factory=list)
    moved: int = 0
    turns: int = 0
    refused: int = 0


@dataclass
class Turn:
    conversation: int
    arrived: float
    new_tokens: int
    output_tokens: int


class Simulation:
    """A discrete-event run of one policy; the same seed gives every policy the same load."""

    def __init__(self, balance: Balance, conversations: int, seed: int) -> None:
        self.balance = balance
        self.rng = random.Random(seed)
        self.ups = {f"u{i}": Upstream(f"u{i}") for i in range(UPSTREAMS)}
        self.chain = list(self.ups)
        self.convs = {
            c: Conversation(turns_left=self.rng.randint(3, 15)) for c in range(conversations)
        }
        self.turns: dict[int, Turn] = {}
        self.events: list[tuple[float, int, str, int]] = []
        self.seq = 0
        self.stats = Stats()
        self.live = conversations
        """Conversations with turns left; failures stop when none is."""
        for c in self.convs:
            self._at(self.rng.uniform(0, ARRIVAL_SPAN_S), "turn", c)
        self._at(FAIL_EVERY_S, "fail", 0)

    def _at(self, when: float, kind: str, arg: int) -> None:
        self.seq += 1
        heapq.heappush(self.events, (when, self.seq, kind, arg))

    def run(self) -> Stats:
        while self.events:
            now, _, kind, arg = heapq.heappop(self.events)
            if kind == "turn":
                self._arrive(now, arg)
            elif kind == "done":
                self._finish(now, arg)
            elif kind == "fail":
                self._fail(now)
            elif kind == "recover":
                self.ups[f"u{arg}"].up = True
        return self.stats

    def _arrive(self, now: float, c: int) -> None:
        conv = self.convs[c]
        self.seq += 1
        turn = Turn(c, now, self.rng.randint(20, 200), self.rng.randint(30, 150))
        self.turns[self.seq] = turn
        order = choose(self.balance, [self.ups[n].link() for n in self.chain], conv.last)
        target = next((n for n in order if len(self.ups[n].queue) < MAX_QUEUE), None)
        if target is None:
            self.stats.refused += 1  # every link down or full: the caller got a 502/503
            self._next(now, c)
            return
        if conv.last is not None and not self.ups[conv.last].up:
            self.stats.moved += 1
        up = self.ups[target]
        up.queue.append(self.seq)
        self._start(now, up)

    def _start(self, now: float, up: Upstream) -> None:
        while up.up and up.queue and up.busy < SLOTS:
            key = up.queue.popleft()
            turn = self.turns[key]
            conv = self.convs[turn.conversation]
            cached = conv.history if turn.conversation in up.cache else 0
            prompt = conv.history + turn.new_tokens
            self.stats.prompt_tokens += prompt
            self.stats.cached_tokens += cached
            self.stats.waits.append(now - turn.arrived)
            self.stats.turns += 1
            up.cache[turn.conversation] = None
            up.cache.move_to_end(turn.conversation)
            while len(up.cache) > CACHE_CONVERSATIONS:
                up.cache.popitem(last=False)
            up.busy += 1
            conv.last = up.name
            work = (prompt - cached) * PREFILL_S_PER_TOKEN + turn.output_tokens * DECODE_S_PER_TOKEN
            self._at(now + work, "done", key)

    def _finish(self, now: float, key: int) -> None:
        turn = self.turns.pop(key)
        conv = self.convs[turn.conversation]
        up = self.ups[conv.last] if conv.last else None
        if up is not None and up.busy > 0:
            up.busy -= 1
            self._start(now, up)
        conv.history += turn.new_tokens + turn.output_tokens
        self._next(now, turn.conversation)

    def _next(self, now: float, c: int) -> None:
        """The conversation's next turn after a think time, or its end."""
        conv = self.convs[c]
        conv.turns_left -= 1
        if conv.turns_left > 0:
            self._at(now + self.rng.expovariate(1 / THINK_S), "turn", c)
        else:
            self.live -= 1

    def _fail(self, now: float) -> None:
        healthy = [u for u in self.ups.values() if u.up]
        if healthy and self.live:
            victim = self.rng.choice(healthy)
            victim.up, victim.cache = False, OrderedDict()
            stranded = list(victim.queue)
            victim.queue.clear()
            victim.busy = 0
            for key in stranded:  # queued turns fail over as new arrivals
                turn = self.turns.pop(key)
                self._arrive(now, turn.conversation)
            self._at(now + DOWN_S, "recover", int(victim.name[1:]))
            self._at(now + FAIL_EVERY_S, "fail", 0)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _table(rows: dict[Balance, Stats], conversations: int, seed: int) -> str:
    lines = [
        "## Routing policies by simulation (`benchmarks/route_sim.py`)",
        "",
        f"Written on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. {UPSTREAMS} simulated upstreams "
        f"({SLOTS} slots, prefix cache of {CACHE_CONVERSATIONS} conversations each), "
        f"{conversations} conversations of 3-15 turns, one upstream failing every "
        f"{FAIL_EVERY_S:.0f} s for {DOWN_S:.0f} s, seed {seed}. The policy is "
        "`llamaport.runtime.proxy.choose`, the router's own function.",
        "",
        "| policy | turns | prefix-cache hit ratio | queueing p50 | queueing p99 "
        "| turns moved on failure | refused |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for balance, s in rows.items():
        ratio = s.cached_tokens / s.prompt_tokens if s.prompt_tokens else 0.0
        lines.append(
            f"| {balance} | {s.turns} | {ratio:.1%} | {_percentile(s.waits, 50) * 1000:.0f} ms "
            f"| {_percentile(s.waits, 99) * 1000:.0f} ms | {s.moved} | {s.refused} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    rows = {b: Simulation(b, args.conversations, args.seed).run() for b in POLICIES}
    print(write_section("route_sim", _table(rows, args.conversations, args.seed)))


if __name__ == "__main__":
    main()
