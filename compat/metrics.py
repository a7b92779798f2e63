"""Prometheus metrics and the access log, fed from each request's chunk stream.

Nothing here instruments the engine: a generation's figures come from what
the runtime already reports (the first chunk with output, the final chunk's
counts and durations), and the gauges read the scheduler when ``/metrics`` is
scraped. Every server app owns one :class:`ServerMetrics` with a registry of
its own, so apps in one process never share counters.

The access log is one JSON line per HTTP request (:class:`AccessLog`, in place
of uvicorn's), with the figures of every generation the request ran
(:meth:`ServerMetrics.observe` adds them to the request's line).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import Counter as Tally
from collections.abc import AsyncGenerator, Iterator
from contextvars import ContextVar
from typing import Any

from fastapi import Request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llamaport.runtime.scheduler import Scheduler
from llamaport.runtime.service import Service
from llamaport.runtime.types import Chunk, EmbedResult, Metrics

__all__ = [
    "CONTENT_TYPE",
    "AccessLog",
    "ServerMetrics",
    "install_access_log",
    "noted",
    "observed",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

access_log = logging.getLogger("llamaport.access")

_LATENCY = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_TOKEN_GAP = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
_DURATION = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def install_access_log() -> None:
    """Send access lines (one JSON object each, :class:`AccessLog`) to stderr,
    beside uvicorn's error log; ``serve`` turns uvicorn's own access log off."""
    if not access_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s access %(message)s"))
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False


def _resident_bytes(pid: int | None) -> int | None:
    """An engine process's resident memory (Linux ``/proc``), None elsewhere."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


_OUTCOMES = ("ok", "canceled", "error")
"""A request's outcome is the worst of its generations' (in this order)."""


class _Access:
    """One request's access line: what the middleware saw of the exchange and
    what each generation it ran reported (``n`` choices add up)."""

    def __init__(self, scope: Scope) -> None:
        self.start = time.perf_counter()
        query = scope.get("query_string", b"").decode("latin-1")
        client = scope.get("client")
        self.head: dict[str, Any] = {
            "method": scope["method"],
            "path": scope["path"] + (f"?{query}" if query else ""),
        }
        if client:
            self.head["client"] = f"{client[0]}:{client[1]}"
        self.code: int | None = None
        self.seconds = 0.0
        self.running = 0  # generations that have not reported yet
        self.ended = False  # the exchange is over; the last generation writes the line
        self.model: str | None = None
        self.outcome: str | None = None
        self.upstreams: dict[str, None] = {}
        self.ttft: float | None = None
        self.tokens: Tally[str] = Tally()
        self.eval_ns = 0

    def add(
        self,
        model: str,
        status: str,
        ttft: float | None,
        final: Metrics | None,
        upstream: str | None,
    ) -> None:
        self.running -= 1
        self.model = model
        if self.outcome is None or _OUTCOMES.index(status) > _OUTCOMES.index(self.outcome):
            self.outcome = status
        if upstream is not None:
            self.upstreams[upstream] = None
        if ttft is not None:
            self.ttft = ttft if self.ttft is None else min(self.ttft, ttft)
        if final is not None:
            self.tokens["tokens_in"] += final.prompt_eval_count
            self.tokens["tokens_cached"] += final.prompt_cached_count
            self.tokens["tokens_out"] += final.eval_count
            self.eval_ns += final.eval_duration
        if self.ended and not self.running:
            self.write()

    def embedded(self, model: str, result: EmbedResult) -> None:
        self.model = model
        if result.upstream is not None:
            self.upstreams[result.upstream] = None
        self.tokens["tokens_in"] += result.prompt_eval_count

    def end(self) -> None:
        self.seconds = time.perf_counter() - self.start
        self.ended = True
        if not self.running:  # else a generation closed after the exchange writes it
            self.write()

    def write(self) -> None:
        code = self.code or 500  # no response started: ServerErrorMiddleware sends a 500
        status = self.outcome or ("ok" if code < 400 else "error")
        line = {**self.head, "code": code, "status": status, "seconds": round(self.seconds, 4)}
        if self.model is not None:
            line["model"] = self.model
        if self.upstreams:
            line["upstream"] = ", ".join(self.upstreams)
        if self.ttft is not None:
            line["ttft"] = round(self.ttft, 4)
        if self.tokens:
            line |= self.tokens
            out = self.tokens["tokens_out"]
            if out > 1 and self.eval_ns > 0:
                line["tok_s"] = round(out / (self.eval_ns / 1e9), 2)
        access_log.info(json.dumps(line))


_access: ContextVar[_Access | None] = ContextVar("llamaport_access", default=None)


class AccessLog:
    """ASGI middleware writing one JSON access line per HTTP request: method,
    path, client, code, status, seconds, and for a generation model, upstream,
    ttft, tokens in/cached/out and tok/s. The line is written as the response's
    last part goes out, or when the exchange ends without one (the client
    left). Outermost, so the guards' refusals are logged too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        access = _Access(scope)
        token = _access.set(access)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                access.code = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                access.end()  # before the client sees the end, so it can read the line
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            _access.reset(token)
            if not access.ended:  # the client left, or no response was sent
                access.end()


def noted(model: str, result: EmbedResult) -> EmbedResult:
    """``result`` with its model, upstream and input tokens on the request's access line."""
    access = _access.get()
    if access is not None:
        access.embedded(model, result)
    return result


def observed(
    request: Request, model: str, chunks: AsyncGenerator[Chunk, None]
) -> AsyncGenerator[Chunk, None]:
    """``chunks`` recorded by the app's :class:`ServerMetrics` (routes call this)."""
    metrics: ServerMetrics = request.app.state.metrics
    return metrics.observe(model, chunks)


class _SchedulerState(Collector):
    """Gauges read from the scheduler at scrape time."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    def collect(self) -> Iterator[Metric]:
        runners = self._scheduler.running()
        queue = GaugeMetricFamily("llamaport_queue_depth", "Requests waiting for a sequence slot.")
        queue.add_metric([], self._scheduler.pending)
        loaded = GaugeMetricFamily("llamaport_loaded_models", "Models loaded in engine processes.")
        loaded.add_metric([], len(runners))
        busy = GaugeMetricFamily(
            "llamaport_busy_slots", "Sequence slots in use, by model.", labels=["model"]
        )
        size = GaugeMetricFamily(
            "llamaport_model_size_bytes", "Weights of each loaded model.", labels=["model"]
        )
        rss = GaugeMetricFamily(
            "llamaport_model_resident_bytes",
            "Resident memory of each loaded model's engine process (weights, KV, caches).",
            labels=["model"],
        )
        for runner in runners:
            name = [runner.record.short_name]
            busy.add_metric(name, min(runner.refs, runner.info.n_parallel))
            size.add_metric(name, runner.info.model_size)
            resident = _resident_bytes(runner.engine.pid)
            if resident is not None:
                rss.add_metric(name, resident)
        yield from (queue, loaded, busy, size, rss)


class _Upstreams(Collector):
    """The proxy's upstreams (``/api/upstreams``) read at scrape time; nothing
    without a configured upstream."""

    def __init__(self, service: Service) -> None:
        self._service = service

    def collect(self) -> Iterator[Metric]:
        upstreams = self._service.upstreams()
        if not upstreams:
            return
        name = ["upstream"]
        available = GaugeMetricFamily(
            "llamaport_upstream_available",
            "1 while requests go to the upstream, 0 while its circuit breaker is open.",
            labels=name,
        )
        outstanding = GaugeMetricFamily(
            "llamaport_upstream_outstanding", "Requests in flight to the upstream.", labels=name
        )
        waiting = GaugeMetricFamily(
            "llamaport_upstream_waiting",
            "Requests waiting for one of the upstream's max_concurrency slots.",
            labels=name,
        )
        requests = CounterMetricFamily(
            "llamaport_upstream_requests",
            "Requests sent to the upstream, by how they ended.",
            labels=["upstream", "outcome"],
        )
        retries = CounterMetricFamily(
            "llamaport_upstream_retries",
            "Tries repeated after a retryable failure, before a first token.",
            labels=name,
        )
        for up in upstreams:
            label = [up["name"]]
            available.add_metric(label, 1 if up["state"] == "closed" else 0)
            outstanding.add_metric(label, up["outstanding"])
            waiting.add_metric(label, up["waiting"])
            retries.add_metric(label, up["retries"])
            for outcome, count in sorted(up["requests"].items()):
                requests.add_metric([*label, outcome], count)
        yield from (available, outstanding, waiting, requests, retries)


class ServerMetrics:
    """The app's registry; wrap every generation's chunks with :meth:`observe`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        model = ["model"]
        self.ttft = Histogram(
            "llamaport_time_to_first_token_seconds",
            "From the request to its first generated output (load and queue included).",
            model,
            buckets=_LATENCY,
            registry=r,
        )
        self.upstream_ttft = Histogram(
            "llamaport_upstream_time_to_first_token_seconds",
            "Time to first token of routed models' requests, by the upstream that served "
            "them (local: this server's runtime); retries and failed-over links included.",
            ["upstream"],
            buckets=_LATENCY,
            registry=r,
        )
        self.token_gap = Histogram(
            "llamaport_inter_token_latency_seconds",
            "Mean time between generated tokens, one observation per request.",
            model,
            buckets=_TOKEN_GAP,
            registry=r,
        )
        self.queue_wait = Histogram(
            "llamaport_queue_wait_seconds",
            "Time neither loading, prefilling nor decoding: waiting for a slot, rendering.",
            model,
            buckets=_LATENCY,
            registry=r,
        )
        self.duration = Histogram(
            "llamaport_request_duration_seconds",
            "Whole generation requests, by outcome.",
            ["model", "status"],
            buckets=_DURATION,
            registry=r,
        )
        self.prompt = Counter("llamaport_prompt_tokens", "Prompt tokens.", model, registry=r)
        self.cached = Counter(
            "llamaport_cached_prompt_tokens", "Prompt tokens reused from KV.", model, registry=r
        )
        self.generated = Counter(
            "llamaport_generated_tokens", "Generated tokens.", model, registry=r
        )

    def watch(self, service: Service) -> None:
        """Report the scheduler's queue, slots and loaded models, and the proxy's
        upstreams, read from ``service`` at each scrape."""
        self.registry.register(_SchedulerState(service.scheduler))
        self.registry.register(_Upstreams(service))

    def render(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)

    async def observe(
        self, model: str, chunks: AsyncGenerator[Chunk, None]
    ) -> AsyncGenerator[Chunk, None]:
        """Yield ``chunks`` unchanged and record the request when they end.

        Closing this generator closes ``chunks`` too, so a disconnect still
        cancels the sequence in the engine.
        """
        start = time.perf_counter()
        first: float | None = None
        final: Metrics | None = None
        upstream: str | None = None
        status = "canceled"
        access = _access.get()  # here, not in finally: a late close may run in another task
        if access is not None:
            access.running += 1
        try:
            async for chunk in chunks:
                upstream = upstream or chunk.upstream
                if first is None and (chunk.text or chunk.thinking or chunk.tool_calls):
                    first = time.perf_counter()
                if chunk.done:
                    status = "ok"  # a consumer may stop at the final chunk
                    if chunk.done_reason not in ("load", "unload"):
                        final = chunk.metrics
                yield chunk
            status = "ok"
        except Exception:
            status = "error"
            raise
        finally:
            await chunks.aclose()
            ttft = None if first is None else first - start
            self._record(model, status, time.perf_counter() - start, ttft, final, upstream)
            if access is not None:
                access.add(model, status, ttft, final, upstream)

    def _record(
        self,
        model: str,
        status: str,
        seconds: float,
        ttft: float | None,
        final: Metrics | None,
        upstream: str | None,
    ) -> None:
        self.duration.labels(model, status).observe(seconds)
        if ttft is not None:
            self.ttft.labels(model).observe(ttft)
            if upstream is not None:
                self.upstream_ttft.labels(upstream).observe(ttft)
        if final is not None:
            self._count(model, final)

    def _count(self, model: str, final: Metrics) -> None:
        self.prompt.labels(model).inc(final.prompt_eval_count)
        self.cached.labels(model).inc(final.prompt_cached_count)
        self.generated.labels(model).inc(final.eval_count)
        if final.eval_count > 1:
            gap = final.eval_duration / 1e9 / (final.eval_count - 1)
            self.token_gap.labels(model).observe(gap)
        busy = final.load_duration + final.prompt_eval_duration + final.eval_duration
        self.queue_wait.labels(model).observe(max(0, final.total_duration - busy) / 1e9)
