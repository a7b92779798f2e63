"""The facade every face calls: generate, embed, and what is loaded.

It resolves the model in the store, merges options, renders the prompt,
takes a runner from the scheduler and turns engine events into
:class:`Chunk`s. Faces never see engines, templates or option precedence.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, TypedDict

from llamaport.runtime.engine.client import EngineClient
from llamaport.runtime.engine.kv_disk import forget_files
from llamaport.runtime.engine.spawn import Spawner
from llamaport.runtime.engine.wire import (
    Done,
    Failed,
    LoadSpec,
    SamplingParams,
    Segment,
    Started,
    Text,
)
from llamaport.runtime.errors import (
    BadRequest,
    EngineError,
    InputTooLong,
    PromptTooLong,
    RequestCanceled,
    ShuttingDown,
)
from llamaport.runtime.history import FittedHistory, fit_history
from llamaport.runtime.options import LoadOptions, Options, resolve_options
from llamaport.runtime.output.pipeline import OutputPipeline
from llamaport.runtime.output.thinking import OPEN_TAG, ThinkingParser
from llamaport.runtime.output.toolcalls import ToolCallParser
from llamaport.runtime.prompt import GoTemplateRenderer, select_renderer
from llamaport.runtime.prompt.gotemplate import check_template
from llamaport.runtime.prompt.tools import ToolPlan, plan_tools
from llamaport.runtime.scheduler import QueueTicket, Runner, Scheduler, load_spec
from llamaport.runtime.types import (
    Chunk,
    DoneReason,
    EmbedRequest,
    EmbedResult,
    GenerateRequest,
    Message,
    Metrics,
    link_tool_results,
)
from llamaport.storage.gguf_meta import GGUFInfo, capabilities
from llamaport.storage.settings import Settings
from llamaport.storage.store import ModelRecord, Store

__all__ = ["RemoteModel", "Service", "UpstreamView"]


_SHUTTING_DOWN = "shutting_down"
"""The ``Failed`` kind :meth:`Service.end_requests` puts on every stream."""

_THINK_BUDGET_CHARS = 4096
"""With ``format`` and thinking: at most this much reasoning before the answer,
or half ``num_predict`` in characters when that is set, so the answer keeps
at least half the tokens."""


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _format(fmt: str | dict[str, Any] | None) -> str:
    """``format`` as the engine takes it: a schema travels as JSON text."""
    return json.dumps(fmt) if isinstance(fmt, dict) else fmt or ""


@dataclass
class _Prepared:
    record: ModelRecord
    info: GGUFInfo
    options: Options
    warnings: list[str]
    caps: list[str]
    """What the model can do, from its template (Go TEMPLATE, else the GGUF's) and projectors."""
    template: str | None
    """The Go template in effect: the request's, else the Modelfile TEMPLATE."""


@dataclass(frozen=True)
class RemoteModel:
    """A model served by upstreams, for the listings (``/api/tags``, ``/v1/models``)."""

    name: str
    upstream_model: str
    upstreams: list[str]


class UpstreamView(TypedDict):
    """One upstream as ``/api/upstreams`` and ``/metrics`` show it: no URL, no key."""

    name: str
    kind: str
    state: str
    """``closed`` (requests go to it) or ``open`` (cooling down after failures)."""
    outstanding: int
    waiting: int
    max_concurrency: int | None
    last_error: str | None
    requests: dict[str, int]
    """Requests sent to it since the server started, by how they ended."""
    retries: int


class Service:
    """What compat calls. One per server.

    The proxy's ``ProxyService`` extends it; the methods that only mean
    something with upstreams (:meth:`remote_upstream`, :meth:`remote_models`,
    :meth:`upstreams`) answer "none" here.
    """

    def __init__(self, settings: Settings, store: Store, spawner: Spawner | None = None) -> None:
        """``spawner`` gives the engines their processes (``serve``'s holds a
        spare for the first load); its maker closes it."""
        self.settings = settings
        self.store = store
        self.scheduler = Scheduler(
            settings,
            verify=store.verify_model,
            engine_factory=partial(EngineClient, spawner=spawner),
        )

    def _prepare(
        self,
        name: str,
        request_options: dict[str, object],
        template: str | None = None,
        task: str | None = None,
    ) -> _Prepared:
        """The model, its options and capabilities. ``task`` ("generate", "chat") is
        the generation asked for, refused on an embedding-only model as Ollama
        refuses it; embeddings and tokens pass None."""
        if template:
            check_template(template)
        record = self.store.get(name)
        info = self.store.gguf_info(record.model_path, record.short_name)
        template = template or record.template
        caps = capabilities(info, template, has_projector=bool(record.projectors))
        if task and "completion" not in caps and "embedding" in caps:
            raise BadRequest(f'"{name}" does not support {task}')
        options = resolve_options(record.params, request_options)
        warnings = []
        trained = info.context_length or 0
        if options.num_ctx and trained and options.num_ctx > trained:
            warnings.append(
                f"num_ctx {options.num_ctx} exceeds the model's trained context; "
                f"clamped to {trained}"
            )
        return _Prepared(record, info, options, warnings, caps, template)

    def _load_options(self, prep: _Prepared) -> LoadOptions:
        trained = prep.info.context_length or self.settings.context_length
        default_ctx = min(trained, self.settings.context_length)
        num_ctx = min(prep.options.num_ctx or default_ctx, trained)
        return prep.options.load_options(num_ctx, self.settings.num_thread)

    async def _acquire(self, prep: _Prepared, keep_alive: float | None) -> Runner:
        return await self.scheduler.acquire(prep.record, self._load_options(prep), keep_alive)

    def load_spec(self, name: str) -> LoadSpec:
        """What a load-only request for ``name`` has its engine load, the model's
        blobs verified first. ``serve`` starts ``LLAMAPORT_PRELOAD``'s first model
        with it before the server imports (:meth:`Spawner.begin`); raises as
        that request would (an unknown or corrupt model)."""
        prep = self._prepare(name, {})
        self.store.verify_model(prep.record)
        return load_spec(self.settings, prep.record, self._load_options(prep))

    # -- generation -------------------------------------------------------------

    async def generate(self, req: GenerateRequest) -> AsyncGenerator[Chunk, None]:
        """Yield chunks; the last has ``done`` set. Errors raise before or between chunks."""
        start = time.perf_counter()
        prep = self._prepare(req.model, req.options, req.template, req.task)
        self._check_request(req, prep)
        if req.is_load_only:
            yield await self._load_or_unload(prep, req.keep_alive, start)
            return
        messages = self._messages(req, prep.record)
        ticket = self.scheduler.admit()
        try:
            runner = await self._acquire(prep, req.keep_alive)
        except BaseException:
            ticket.done()
            raise
        load_ns = _ns(time.perf_counter() - start)
        wanted = self._load_options(prep).num_ctx
        if runner.info.n_ctx < wanted:
            prep.warnings.append(
                f"num_ctx {wanted} does not fit in memory; using {runner.info.n_ctx}"
            )
        try:
            async for chunk in self._run(req, prep, runner, messages, ticket):
                if chunk.done and chunk.metrics is not None:
                    chunk.metrics.load_duration = load_ns
                    chunk.metrics.total_duration = _ns(time.perf_counter() - start)
                yield chunk
        finally:
            ticket.done()
            self.scheduler.release(runner, req.keep_alive)

    def render(self, req: GenerateRequest) -> tuple[str, int]:
        """The prompt ``req`` renders to, and its image count, without running the model.

        Ollama's ``_debug_render_only``. Text only: ``context`` token ids are
        not detokenized into it.
        """
        prep = self._prepare(req.model, req.options, req.template, req.task)
        self._check_request(req, prep)
        plan = self._plan(req, prep, self._messages(req, prep.record))
        segments = self._segments(req, prep, plan)
        images = len(req.images) + sum(len(m.images) for m in req.messages or [])
        return "".join(s.text for s in segments), images

    @staticmethod
    def _check_request(req: GenerateRequest, prep: _Prepared) -> None:
        """Refuse what the model cannot do, with Ollama's texts, before loading."""
        caps = prep.caps
        full = str(prep.record.name)
        if req.think and "thinking" not in caps:
            raise BadRequest(f'"{req.model}" does not support thinking')
        if req.suffix and "insert" not in caps:
            raise BadRequest(f"{full} does not support insert")
        images = req.images or [i for m in req.messages or [] for i in m.images]
        if images and "vision" not in caps:
            raise BadRequest(f'"{req.model}" does not support images')
        if req.format and req.tool_choice not in (None, "auto", "none") and req.tools:
            raise BadRequest("format cannot be combined with a tool_choice that forces a call")

    async def _load_or_unload(
        self, prep: _Prepared, keep_alive: float | None, start: float
    ) -> Chunk:
        if keep_alive == 0:
            await self.scheduler.unload(prep.record)
            return Chunk(done=True, done_reason="unload")
        runner = await self._acquire(prep, keep_alive)
        self.scheduler.release(runner, keep_alive)
        metrics = Metrics(load_duration=_ns(time.perf_counter() - start))
        metrics.total_duration = metrics.load_duration
        return Chunk(done=True, done_reason="load", metrics=metrics)

    def _messages(self, req: GenerateRequest, record: ModelRecord) -> list[Message]:
        """The conversation to render: Modelfile MESSAGEs and SYSTEM plus the request,
        each tool result tied to its call."""
        preset = [Message(role=m["role"], content=m["content"]) for m in record.messages]
        if req.messages is not None:
            messages = preset + link_tool_results(req.messages)
            if record.system and not (req.messages and req.messages[0].role == "system"):
                messages.insert(0, Message(role="system", content=record.system))
            return messages
        system = req.system if req.system is not None else record.system
        head = [Message(role="system", content=system)] if system else []
        return head + ([] if req.context else preset) + [Message(role="user", content=req.prompt)]

    @staticmethod
    def _plan(req: GenerateRequest, prep: _Prepared, messages: list[Message]) -> ToolPlan:
        native = "tools" in prep.caps
        return plan_tools(messages, req.tools, req.tool_choice, native)

    @staticmethod
    def _think(req: GenerateRequest, prep: _Prepared) -> bool | str | None:
        """``think`` as the template sees it: on by default for a model that thinks
        (as Ollama since 0.12.4), and never set for one that cannot."""
        if "thinking" not in prep.caps:
            return None
        return True if req.think is None else req.think

    def _segments(self, req: GenerateRequest, prep: _Prepared, plan: ToolPlan) -> list[Segment]:
        if req.raw:
            if req.system or req.context or req.template:
                raise BadRequest("raw mode does not support template, system, or context")
            return [Segment(req.prompt, special=True)]
        info = prep.info
        renderer = select_renderer(
            prep.template, info.chat_template, info.bos_token, info.eos_token
        )
        if req.suffix and isinstance(renderer, GoTemplateRenderer):
            return renderer.render_infill(req.prompt, req.suffix)
        segments = renderer.render(plan.messages, plan.template_tools, self._think(req, prep))
        if req.context:
            segments.insert(0, Segment(tokens=tuple(req.context)))
        return segments

    async def _run(
        self,
        req: GenerateRequest,
        prep: _Prepared,
        runner: Runner,
        messages: list[Message],
        ticket: QueueTicket,
    ) -> AsyncIterator[Chunk]:
        """Generate; a chat prompt too long for the context is fitted once
        (:func:`fit_history`, Ollama's ``truncate``) and run again."""
        async with aclosing(self._attempt(req, prep, runner, messages, ticket, 0)) as attempt:
            try:
                first = await anext(attempt)
            except PromptTooLong as exc:
                if not req.is_chat or not req.truncate:
                    raise
                too_long = exc
            else:
                yield first
                async for chunk in attempt:
                    yield chunk
                return
        fitted = await self._fit(req, prep, runner, messages)
        if not fitted.left_out:
            raise too_long
        retry = self._attempt(req, prep, runner, fitted.messages, ticket, fitted.left_out)
        async with aclosing(retry):
            async for chunk in retry:
                yield chunk

    async def _fit(
        self, req: GenerateRequest, prep: _Prepared, runner: Runner, messages: list[Message]
    ) -> FittedHistory:
        """The newest turns that fit the runner's context, counted by its tokenizer."""

        async def count(candidate: list[Message]) -> int:
            segments = self._segments(req, prep, self._plan(req, prep, candidate))
            result = await runner.engine.tokenize(tuple(segments))
            if isinstance(result, Failed):
                raise self._error(result, runner)
            return len(result.tokens)

        return await fit_history(messages, count, runner.info.n_ctx)

    async def _attempt(
        self,
        req: GenerateRequest,
        prep: _Prepared,
        runner: Runner,
        messages: list[Message],
        ticket: QueueTicket,
        left_out: int,
    ) -> AsyncGenerator[Chunk, None]:
        """One generation of ``messages``; the final chunk reports ``left_out``."""
        warnings = list(prep.warnings)
        plan = self._plan(req, prep, messages)
        segments = tuple(self._segments(req, prep, plan))
        sampling, output = self._decoding(req, prep, plan, segments)
        with_context = not req.raw and not req.is_chat
        persist = self._kv_identity(prep) if req.stored else ""
        owner = (req.affinity or "") if req.stored else ""
        events = runner.engine.generate(segments, sampling, with_context, persist, owner)
        async for event in events:
            if isinstance(event, Started):
                ticket.done()
                continue
            if isinstance(event, Failed):
                raise self._error(event, runner)
            if isinstance(event, Text):
                chunk = output.feed(event.text, event.logprobs)
            elif isinstance(event, Done):
                chunk = output.finish()
            else:
                continue
            if chunk is not None:
                chunk.warnings, warnings = warnings, []
                yield chunk
            if isinstance(event, Done):
                yield self._final(event, left_out, warnings)
                return

    @staticmethod
    def _kv_identity(prep: _Prepared) -> str:
        """What a stored turn's tokens mean, for its KV state on disk: the model's
        manifest digest (weights, GGUF template, Modelfile) and the template in
        effect (a request's own included), hashed. A file under another identity
        is never restored into this turn."""
        text = "\0".join((prep.record.digest, prep.template or ""))
        return hashlib.sha256(text.encode()).hexdigest()

    def _decoding(
        self, req: GenerateRequest, prep: _Prepared, plan: ToolPlan, segments: tuple[Segment, ...]
    ) -> tuple[SamplingParams, OutputPipeline]:
        """The engine's sampling parameters and the parser of what it writes back."""
        think = self._think(req, prep)
        thinker = None
        if think is not None and not req.raw:
            prompt_end = segments[-1].text.rstrip() if segments else ""
            thinker = ThinkingParser(opened=prompt_end.endswith(OPEN_TAG))
        sampling = replace(
            prep.options.sampling(_format(plan.forced or req.format)),
            shift=req.shift,
            logprobs=req.logprobs,
            top_logprobs=req.top_logprobs if req.logprobs else 0,
        )
        if thinker is not None and sampling.format and (think is not False or thinker.opened):
            n = sampling.num_predict or 0
            budget = max(1, n // 2) if n > 0 else _THINK_BUDGET_CHARS
            sampling = replace(sampling, think_budget=budget, think_opened=thinker.opened)
        tools = ToolCallParser(plan.names, plan.forced is not None) if plan.names else None
        return sampling, OutputPipeline(thinker, tools, show_thinking=think is not False)

    def _error(self, event: Failed, runner: Runner) -> Exception:
        if event.kind == "prompt_too_long":
            return PromptTooLong(event.n_tokens, runner.info.n_ctx)
        if event.kind == "input_too_long":
            return InputTooLong()
        if event.kind == "canceled":
            return RequestCanceled()
        if event.kind == "bad_request":
            return BadRequest(event.message)
        if event.kind == _SHUTTING_DOWN:
            return ShuttingDown(self.settings.shutdown_grace)
        return EngineError(event.message)

    @staticmethod
    def _final(event: Done, dropped: int, warnings: list[str]) -> Chunk:
        metrics = Metrics(
            prompt_eval_count=event.prompt_eval_count,
            prompt_eval_duration=event.prompt_eval_ns,
            eval_count=event.eval_count,
            eval_duration=event.eval_ns,
            prompt_cached_count=event.prompt_cached_count,
        )
        reason: DoneReason = "length" if event.reason == "length" else "stop"
        return Chunk(
            done=True,
            done_reason=reason,
            metrics=metrics,
            context=list(event.context) or None,
            truncated_messages=dropped,
            closed=event.closed,
            warnings=warnings,
        )

    # -- embeddings ------------------------------------------------------------------

    async def embed(self, req: EmbedRequest) -> EmbedResult:
        start = time.perf_counter()
        prep = self._prepare(req.model, req.options)
        ticket = self.scheduler.admit()
        try:
            runner = await self._acquire(prep, req.keep_alive)
        finally:
            ticket.done()
        load_ns = _ns(time.perf_counter() - start)
        try:
            if not req.inputs:
                return EmbedResult([], 0, _ns(time.perf_counter() - start), load_ns)
            result = await runner.engine.embed(tuple(req.inputs), req.truncate)
        finally:
            self.scheduler.release(runner, req.keep_alive)
        if isinstance(result, Failed):
            raise self._error(result, runner)
        vectors = [_shape(list(v), req.dimensions, req.normalize) for v in result.vectors]
        return EmbedResult(vectors, result.n_tokens, _ns(time.perf_counter() - start), load_ns)

    # -- tokens ----------------------------------------------------------------------

    async def tokenize(self, req: GenerateRequest) -> tuple[list[int], int]:
        """Token ids of ``req.prompt`` as plain text, or of the chat prompt that
        ``req.messages`` (and ``req.tools``) render to; with the context size to
        budget against."""
        prep = self._prepare(req.model, req.options)
        runner = await self._acquire(prep, req.keep_alive)
        try:
            if req.messages is not None:
                plan = self._plan(req, prep, self._messages(req, prep.record))
                segments = self._segments(req, prep, plan)
            else:
                segments = [Segment(req.prompt)]
            result = await runner.engine.tokenize(tuple(segments))
        finally:
            self.scheduler.release(runner, req.keep_alive)
        if isinstance(result, Failed):
            raise self._error(result, runner)
        return list(result.tokens), runner.info.n_ctx

    async def detokenize(self, req: GenerateRequest, tokens: list[int]) -> str:
        prep = self._prepare(req.model, req.options)
        runner = await self._acquire(prep, req.keep_alive)
        try:
            result = await runner.engine.detokenize(tuple(tokens))
        finally:
            self.scheduler.release(runner, req.keep_alive)
        if isinstance(result, Failed):
            raise self._error(result, runner)
        return result.text

    async def forget(self, conversation: str) -> None:
        """Remove the KV files a stored conversation's turns left (its id, or a
        response chain's first item, as :attr:`GenerateRequest.affinity`): they hold
        its text. Running engines remove theirs after any write still queued; the
        files of every other model and layout are removed here."""
        if not conversation:
            return
        for runner in self.scheduler.running():
            runner.engine.forget(conversation)
        await asyncio.to_thread(forget_files, self.settings.kv_dir, conversation)

    def running(self) -> list[Runner]:
        return self.scheduler.running()

    def remote_upstream(self, model: str) -> str | None:
        """The upstream that serves ``model`` instead of this server, if any."""
        return None

    def check_local(self, model: str, action: str) -> None:
        """Refuse ``action`` (pull, create, delete, ...) on a model an upstream serves."""

    def remote_models(self) -> list[RemoteModel]:
        return []

    def upstreams(self) -> list[UpstreamView]:
        """Each upstream's state."""
        return []

    async def start(self) -> None:
        """Start background work (the proxy's health prober); :meth:`close` stops it."""

    def end_requests(self) -> None:
        """End every generation in flight with :class:`ShuttingDown` (the shutdown
        deadline passed); each face sends it as its in-band error."""
        for runner in self.scheduler.running():
            runner.engine.end_requests(_SHUTTING_DOWN, "server shutting down")

    async def close(self) -> None:
        await self.scheduler.close()


def _shape(vector: list[float], dimensions: int | None, normalize: bool) -> list[float]:
    """Cut to ``dimensions`` and L2-normalise (Ollama's ``/api/embed``)."""
    if dimensions and 0 < dimensions < len(vector):
        vector = vector[:dimensions]
    if not normalize:
        return vector
    if any(v != v or v in (float("inf"), float("-inf")) for v in vector):
        raise BadRequest("embedding contains NaN or Inf values")
    norm = sum(v * v for v in vector) ** 0.5
    return [v / norm for v in vector] if norm > 0 else vector
