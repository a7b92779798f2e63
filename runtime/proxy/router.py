"""The proxy's service: the local runtime, or an upstream, behind one interface.

:class:`ProxyService` is a :class:`Service` (compat calls it exactly as it
calls the local one) that sends a routed model along its chain of upstreams:
it orders the chain with :func:`choose`, retries a link's retryable failures
with jittered back-off before the first chunk, then fails over to the next
link (as it does past a link that has no such model, a 404); after the first
chunk nothing is retried and a broken stream raises
:class:`UpstreamBroken`. A prober closes open breakers and refreshes the model
lists of upstreams without a configured ``models``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from llamaport.runtime.engine.spawn import Spawner
from llamaport.runtime.errors import ServerBusy
from llamaport.runtime.proxy.choice import Link, choose
from llamaport.runtime.proxy.config import LOCAL, Balance, ProxyConfig, UpstreamConfig
from llamaport.runtime.proxy.errors import (
    NoUpstreamLeft,
    RoutedModel,
    UpstreamBadReply,
    UpstreamBroken,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from llamaport.runtime.proxy.health import Outcome, UpstreamState
from llamaport.runtime.proxy.upstream import UpstreamClient
from llamaport.runtime.service import RemoteModel, Service, UpstreamView, _shape
from llamaport.runtime.types import Chunk, EmbedRequest, EmbedResult, GenerateRequest
from llamaport.storage.errors import ModelNotFound
from llamaport.storage.settings import Settings, read_secret
from llamaport.storage.store import Store

__all__ = ["ProxyService"]

log = logging.getLogger("llamaport")
T = TypeVar("T")

_ATTEMPTS = 3
"""Tries per link for a retryable failure before the first chunk."""
_PROBE_EVERY_S = 1.0
_DISCOVER_EVERY_S = 60.0
_FULL = "its queue is full"
_MISSING = "it has no such model"
_PINS = 100_000
"""Affinity pins kept (least recently used dropped first)."""


@dataclass(frozen=True)
class _Route:
    model: str
    chain: tuple[str, ...]
    upstream_model: str | None
    balance: Balance


def _key(name: str) -> str:
    """A model name with Ollama's implied ``:latest``, for matching."""
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, UpstreamUnavailable) and not exc.fatal


_OUTCOMES: tuple[tuple[type[BaseException], Outcome], ...] = (
    (ServerBusy, "full"),
    (UpstreamUnavailable, "unavailable"),
    (UpstreamTimeout, "timeout"),
    (UpstreamBadReply, "bad_reply"),
    (UpstreamBroken, "broken"),
    (UpstreamRejected, "rejected"),
)


def _outcome(exc: BaseException) -> Outcome:
    """How a link's request that raised ``exc`` ended; anything not the upstream's
    doing (the caller gone, the task cancelled) is ``canceled``."""
    if isinstance(exc, UpstreamRejected) and exc.status == 404:
        return "missing"
    return next((o for kind, o in _OUTCOMES if isinstance(exc, kind)), "canceled")


def _client(config: UpstreamConfig) -> UpstreamClient:
    """Each kind's client module is imported here, by the first upstream of its kind:
    the openai SDK is a third of serve's start-up imports, and aiohttp 0.15 s."""
    key = read_secret(config.api_key_env) if config.api_key_env else None
    if config.kind == "openai":
        from llamaport.runtime.proxy.openai_kind import OpenAIUpstream

        return OpenAIUpstream(config, key)
    from llamaport.runtime.proxy.ollama_kind import OllamaUpstream

    return OllamaUpstream(config, key)


class ProxyService(Service):
    """A :class:`Service` that also serves the routed models of a :class:`ProxyConfig`."""

    def __init__(
        self, settings: Settings, store: Store, config: ProxyConfig, spawner: Spawner | None = None
    ) -> None:
        super().__init__(settings, store, spawner)
        self.config = config
        self.clients = {up.name: _client(up) for up in config.upstream}
        self.states = {
            up.name: UpstreamState(up.name, up.max_concurrency, settings.max_queue)
            for up in config.upstream
        }
        self._local_outstanding = 0
        self._routes = {
            _key(r.model): _Route(r.model, tuple(r.upstreams), r.upstream_model, r.balance)
            for r in config.route
        }
        self._listed = {up.name: list(up.models or []) for up in config.upstream}
        self._pins: OrderedDict[str, str] = OrderedDict()
        self._prober: asyncio.Task[None] | None = None

    # -- which models go where -------------------------------------------------------

    def _route(self, model: str) -> _Route | None:
        route = self._routes.get(_key(model))
        if route is not None:
            return route
        chain = tuple(n for n, models in self._listed.items() if _key(model) in map(_key, models))
        return _Route(model, chain, None, "least_outstanding") if chain else None

    def remote_upstream(self, model: str) -> str | None:
        route = self._route(model)
        if route is None or route.chain == (LOCAL,):
            return None
        return next(n for n in route.chain if n != LOCAL)

    def check_local(self, model: str, action: str) -> None:
        upstream = self.remote_upstream(model)
        if upstream is not None:
            raise RoutedModel(model, upstream, action)

    def remote_models(self) -> list[RemoteModel]:
        names = [r.model for r in self._routes.values()]
        names += [m for models in self._listed.values() for m in models]
        out: dict[str, RemoteModel] = {}
        for name in names:
            route = self._route(name)
            if route is not None and _key(name) not in out and route.chain != (LOCAL,):
                upstreams = [n for n in route.chain if n != LOCAL]
                out[_key(name)] = RemoteModel(name, route.upstream_model or name, upstreams)
        return list(out.values())

    def upstreams(self) -> list[UpstreamView]:
        return [_view(up, self.states[up.name]) for up in self.config.upstream]

    def _order(self, route: _Route, affinity: str | None) -> list[str]:
        links = []
        for name in route.chain:
            if name == LOCAL:
                links.append(Link(LOCAL, True, self._local_outstanding))
                continue
            state = self.states[name]
            links.append(Link(name, state.breaker.closed, state.outstanding, state.max_concurrency))
        pinned = self._pins.get(affinity) if affinity else None
        return choose(route.balance, links, pinned)

    def _pin(self, affinity: str | None, upstream: str) -> None:
        if affinity:
            self._pins[affinity] = upstream
            self._pins.move_to_end(affinity)
            while len(self._pins) > _PINS:
                self._pins.popitem(last=False)

    def _unavailable(
        self, route: _Route, tried: dict[str, str]
    ) -> NoUpstreamLeft | ServerBusy | ModelNotFound:
        """Why no link served: all full is the server's 503/429, all without the
        model a 404 (as for a model not stored here), anything else a 502 naming
        every link and why."""
        if tried and all(why == _FULL for why in tried.values()):
            return ServerBusy()
        links = [name for name in route.chain if name != LOCAL]
        if links and all(tried.get(name) == _MISSING for name in links):
            return ModelNotFound(route.model)
        for name in route.chain:
            if name not in tried and name in self.states:
                why = self.states[name].last_error or "unavailable"
                tried[name] = f"cooling down after: {why}"
        return NoUpstreamLeft(route.model, tried)

    def _failed(self, state: UpstreamState, exc: UpstreamError) -> None:
        state.last_error = exc.detail
        state.breaker.failure(fatal=isinstance(exc, UpstreamUnavailable) and exc.fatal)
        log.warning("%s", exc)

    async def _retrying(self, state: UpstreamState, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` with jittered back-off on retryable failures; the breaker learns
        of the outcome (a refusal of the request itself counts as neither)."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(_ATTEMPTS),
            wait=wait_random_exponential(multiplier=0.05, max=1.0),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    result = await call()
        except UpstreamError as exc:
            self._failed(state, exc)
            raise
        finally:
            state.retries += retrying.statistics.get("attempt_number", 1) - 1
        return result

    @asynccontextmanager
    async def _link(self, name: str, tried: dict[str, str]) -> AsyncIterator[None]:
        """One link of a chain, holding its concurrency slot. A link that is full,
        unavailable or without the model is written into ``tried`` (the caller moves
        on to the next one); success closes the breaker's count, and a missing model
        counts neither way; a stream broken after its first chunk counts against the
        link and is raised. Every way a link ends is counted in ``state.requests``."""
        state = self.states[name]
        try:
            async with state.slot():
                yield
        except BaseException as exc:
            outcome = _outcome(exc)
            state.requests[outcome] += 1
            if outcome == "full":
                tried[name] = _FULL
            elif outcome == "missing":
                tried[name] = _MISSING
                log.warning("%s; trying the next link", exc)
            elif isinstance(exc, UpstreamUnavailable):
                tried[name] = exc.detail
            else:
                if isinstance(exc, UpstreamBroken):
                    self._failed(state, exc)
                raise
        else:
            state.requests["ok"] += 1
            state.breaker.success()

    # -- generation --------------------------------------------------------------------

    def generate(self, req: GenerateRequest) -> AsyncGenerator[Chunk, None]:
        route = self._route(req.model)
        if route is None:
            return super().generate(req)
        return self._proxied(req, route)

    async def _local(self, req: GenerateRequest) -> AsyncGenerator[Chunk, None]:
        self._local_outstanding += 1
        try:
            async with aclosing(super().generate(req)) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            self._local_outstanding -= 1

    async def _proxied(self, req: GenerateRequest, route: _Route) -> AsyncGenerator[Chunk, None]:
        tried: dict[str, str] = {}
        start = time.perf_counter_ns()
        for name in self._order(route, req.affinity):
            if name == LOCAL:
                self._pin(req.affinity, LOCAL)
                async with aclosing(self._local(req)) as local:
                    async for chunk in local:
                        chunk.upstream = LOCAL
                        yield chunk
                return
            state, client = self.states[name], self.clients[name]
            model = route.upstream_model or req.model
            async with self._link(name, tried):
                opened = await self._retrying(state, partial(_open, client, req, model))
                self._pin(req.affinity, name)
                async with aclosing(opened[1]) as rest:
                    opened[0].upstream = name
                    yield opened[0]
                    async for chunk in rest:
                        chunk.upstream = name
                        if chunk.done and chunk.metrics and not chunk.metrics.total_duration:
                            chunk.metrics.total_duration = time.perf_counter_ns() - start
                        yield chunk
            if name not in tried:
                return
        raise self._unavailable(route, tried)

    # -- embeddings and tokens ------------------------------------------------------------

    async def embed(self, req: EmbedRequest) -> EmbedResult:
        route = self._route(req.model)
        if route is None:
            return await super().embed(req)
        tried: dict[str, str] = {}
        for name in self._order(route, None):
            if name == LOCAL:
                local = await super().embed(req)
                local.upstream = LOCAL
                return local
            state, client = self.states[name], self.clients[name]
            model = route.upstream_model or req.model
            async with self._link(name, tried):
                result = await self._retrying(state, partial(client.embed, req, model))
            if name not in tried:
                result.embeddings = [
                    _shape(v, req.dimensions, req.normalize) for v in result.embeddings
                ]
                result.upstream = name
                return result
        raise self._unavailable(route, tried)

    def render(self, req: GenerateRequest) -> tuple[str, int]:
        self.check_local(req.model, "render the prompt of")
        return super().render(req)

    async def tokenize(self, req: GenerateRequest) -> tuple[list[int], int]:
        self.check_local(req.model, "tokenize for")
        return await super().tokenize(req)

    async def detokenize(self, req: GenerateRequest, tokens: list[int]) -> str:
        self.check_local(req.model, "detokenize for")
        return await super().detokenize(req, tokens)

    async def forget(self, conversation: str) -> None:
        """Also drop the conversation's affinity pin: its turns are gone."""
        self._pins.pop(conversation, None)
        await super().forget(conversation)

    # -- probing and lifetime ---------------------------------------------------------------

    async def start(self) -> None:
        self._prober = asyncio.create_task(self._probe_forever())

    async def _probe(self, name: str, discover: bool) -> None:
        state, client = self.states[name], self.clients[name]
        try:
            models = await client.models()
        except UpstreamError as exc:
            state.last_error = exc.detail
            if state.breaker.probe_due:
                state.breaker.probed(healthy=False)
            return
        if state.breaker.probe_due:
            state.breaker.probed(healthy=True)
            log.info('upstream "%s" is healthy again', name)
        if discover:
            self._listed[name] = models

    async def _probe_forever(self) -> None:
        """Close breakers whose cool-down passed and whose upstream answers; rediscover
        model lists every minute."""
        last_discovery = -_DISCOVER_EVERY_S
        while True:
            discover = time.monotonic() - last_discovery >= _DISCOVER_EVERY_S
            if discover:
                last_discovery = time.monotonic()
            due = [
                up.name
                for up in self.config.upstream
                if self.states[up.name].breaker.probe_due or (discover and up.models is None)
            ]
            probes = (self._probe(n, discover and self._discovers(n)) for n in due)
            for failed in await asyncio.gather(*probes, return_exceptions=True):
                if isinstance(failed, Exception):
                    log.warning("upstream probe failed: %s", failed)
            await asyncio.sleep(_PROBE_EVERY_S)

    def _discovers(self, name: str) -> bool:
        return next(up.models is None for up in self.config.upstream if up.name == name)

    async def close(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
        await asyncio.gather(*(c.aclose() for c in self.clients.values()))
        await super().close()


def _view(config: UpstreamConfig, state: UpstreamState) -> UpstreamView:
    return UpstreamView(
        name=config.name,
        kind=config.kind,
        state=state.breaker.state,
        outstanding=state.outstanding,
        waiting=state.waiting,
        max_concurrency=state.max_concurrency,
        last_error=state.last_error,
        requests={outcome: n for outcome, n in state.requests.items()},
        retries=state.retries,
    )


async def _open(
    client: UpstreamClient, req: GenerateRequest, model: str
) -> tuple[Chunk, AsyncGenerator[Chunk, None]]:
    """The first chunk and the rest of the stream; closes the stream if there is none."""
    chunks = client.generate(req, model)
    try:
        return await anext(chunks), chunks
    except BaseException:
        await chunks.aclose()
        raise
