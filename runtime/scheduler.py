"""Which models are loaded: load on first use, keep-alive, eviction, the queue.

One :class:`Runner` (an engine process) per model file. A request takes a
reference with :meth:`Scheduler.acquire` and gives it back with
:meth:`Scheduler.release`; when the last reference goes, the keep-alive timer
starts. Beyond ``max_loaded_models`` the least recently used idle runner is
unloaded. Unlike Ollama, a runner whose context is at least as large as the
one asked for is reused instead of reloaded (Ollama reloads on any change).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from llamaport.runtime.engine.client import EngineClient
from llamaport.runtime.engine.wire import EngineInfo, LoadSpec
from llamaport.runtime.errors import ServerBusy
from llamaport.runtime.options import LoadOptions
from llamaport.storage.settings import Settings
from llamaport.storage.store import ModelRecord

__all__ = ["EngineFactory", "QueueTicket", "Runner", "Scheduler", "load_spec", "runner_key"]

EngineFactory = Callable[[LoadSpec, bool], EngineClient]
"""Makes the engine (not yet started) for a load spec and the debug flag.

The default spawns an engine process (:class:`EngineClient`); tests of
queueing, keep-alive and eviction pass one whose engines spawn nothing, as
Ollama's scheduler tests swap its ``newServerFn``.
"""

log = logging.getLogger(__name__)


def runner_key(record: ModelRecord) -> str:
    """One runner per weights file and adapter set: a model built with an
    ADAPTER never shares an engine with its base."""
    return "\0".join(str(p) for p in (record.model_path, *record.adapters))


def load_spec(settings: Settings, record: ModelRecord, load: LoadOptions) -> LoadSpec:
    """What an engine loads for ``record`` with ``load``, the server's settings
    filling in the rest."""
    return LoadSpec(
        model_path=str(record.model_path),
        n_ctx=load.num_ctx,
        n_parallel=settings.num_parallel,
        n_batch=load.num_batch,
        n_gpu_layers=0 if settings.no_gpu else load.num_gpu,
        main_gpu=load.main_gpu,
        use_mmap=load.use_mmap,
        n_threads=load.num_thread,
        flash_attn=settings.flash_attention,
        kv_cache_type=settings.kv_cache_type,
        adapters=tuple(str(p) for p in record.adapters),
        cache_ram=settings.cache_ram,
        cache_disk=settings.cache_disk,
        cache_dir=str(settings.kv_dir),
    )


@dataclass
class Runner:
    """A loaded model and the references held on it."""

    record: ModelRecord
    load: LoadOptions
    engine: EngineClient
    info: EngineInfo
    keep_alive: float
    refs: int = 0
    expires_at: float = math.inf
    last_used: float = field(default_factory=time.monotonic)
    timer: asyncio.TimerHandle | None = None

    @property
    def key(self) -> str:
        return runner_key(self.record)

    def serves(self, load: LoadOptions) -> bool:
        """True when this runner can serve ``load`` without reloading.

        Contexts compare by what was asked for, not what the engine managed
        to allocate, so a model clamped for memory is not reloaded each time.
        """
        return (
            self.load.num_ctx >= load.num_ctx
            and self.load.num_batch == load.num_batch
            and (load.num_gpu < 0 or self.load.num_gpu == load.num_gpu)
            and self.load.main_gpu == load.main_gpu
            and self.load.use_mmap == load.use_mmap
            and self.load.num_thread == load.num_thread
        )


class QueueTicket:
    """A place among the pending requests; give it back once the request runs."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release

    def done(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None


class Scheduler:
    """Runners by :func:`runner_key`.

    ``verify(record)`` runs (in a thread) before a model is loaded and raises
    to refuse it; the service passes the store's integrity check.
    ``engine_factory`` makes each runner's engine (see :data:`EngineFactory`).
    """

    def __init__(
        self,
        settings: Settings,
        verify: Callable[[ModelRecord], None] | None = None,
        engine_factory: EngineFactory = EngineClient,
    ) -> None:
        self._settings = settings
        self._verify = verify
        self._engine_factory = engine_factory
        self._runners: dict[str, Runner] = {}
        self._lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._pending = 0

    # -- the queue -----------------------------------------------------------

    def admit(self) -> QueueTicket:
        """Take a pending place or raise :class:`ServerBusy` (Ollama's 503)."""
        if self._pending >= self._settings.max_queue:
            raise ServerBusy()
        self._pending += 1

        def leave() -> None:
            self._pending -= 1

        return QueueTicket(leave)

    @property
    def pending(self) -> int:
        """Requests holding a queue place: not yet given a sequence slot."""
        return self._pending

    # -- references ----------------------------------------------------------

    async def acquire(
        self, record: ModelRecord, load: LoadOptions, keep_alive: float | None
    ) -> Runner:
        """Return a loaded runner for ``record`` with one more reference."""
        async with self._lock:
            runner = self._runners.get(runner_key(record))
            if runner is not None and not runner.serves(load):
                await self._wait_idle(runner)
                await self._unload(runner)
                runner = None
            if runner is None:
                await self._make_room()
                runner = await self._load(record, load, keep_alive)
            runner.refs += 1
            if keep_alive is not None:
                runner.keep_alive = keep_alive
            self._touch(runner)
            return runner

    def release(self, runner: Runner, keep_alive: float | None = None) -> None:
        runner.refs -= 1
        if keep_alive is not None:
            runner.keep_alive = keep_alive
        self._touch(runner)
        if runner.refs == 0:
            if runner.keep_alive <= 0:
                asyncio.get_running_loop().create_task(self._expire(runner))
            elif math.isfinite(runner.keep_alive):
                runner.timer = asyncio.get_running_loop().call_later(
                    runner.keep_alive, lambda: asyncio.ensure_future(self._expire(runner))
                )
        asyncio.get_running_loop().create_task(self._notify())

    def _touch(self, runner: Runner) -> None:
        if runner.timer is not None:
            runner.timer.cancel()
            runner.timer = None
        runner.last_used = time.monotonic()
        runner.expires_at = time.time() + runner.keep_alive

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _wait_idle(self, runner: Runner) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: runner.refs == 0 or not runner.engine.alive)

    # -- loading and unloading ---------------------------------------------------

    async def _load(
        self, record: ModelRecord, load: LoadOptions, keep_alive: float | None
    ) -> Runner:
        if self._verify is not None:
            await asyncio.to_thread(self._verify, record)
        spec = load_spec(self._settings, record, load)
        engine = self._engine_factory(spec, self._settings.debug)
        info = await engine.start(self._settings.load_timeout)
        log.info(
            "%s: offloaded %d/%d layers to GPU",
            record.short_name,
            info.n_gpu_layers,
            info.n_layer + 1,
        )
        runner = Runner(
            record=record,
            load=load,
            engine=engine,
            info=info,
            keep_alive=self._settings.keep_alive if keep_alive is None else keep_alive,
        )
        engine.on_exit = lambda _engine: self._forget(runner)
        self._runners[runner.key] = runner
        return runner

    def _forget(self, runner: Runner) -> None:
        """The engine died on its own: drop it so the next request reloads."""
        if self._runners.get(runner.key) is runner:
            del self._runners[runner.key]
        if runner.timer is not None:
            runner.timer.cancel()
        asyncio.get_running_loop().create_task(self._notify())

    async def _make_room(self) -> None:
        while len(self._runners) >= self._settings.max_loaded_models:
            idle = [r for r in self._runners.values() if r.refs == 0]
            if idle:
                await self._unload(min(idle, key=lambda r: r.last_used))
                continue
            async with self._changed:
                await self._changed.wait()

    async def _unload(self, runner: Runner) -> None:
        if self._runners.get(runner.key) is runner:
            del self._runners[runner.key]
        if runner.timer is not None:
            runner.timer.cancel()
        await runner.engine.stop()

    async def _expire(self, runner: Runner) -> None:
        async with self._lock:
            if runner.refs == 0 and self._runners.get(runner.key) is runner:
                await self._unload(runner)

    async def unload(self, record: ModelRecord) -> None:
        """Unload ``record`` once its running requests finish (``keep_alive: 0``)."""
        runner = self._runners.get(runner_key(record))
        if runner is None:
            return
        runner.keep_alive = 0
        if runner.refs == 0:
            await self._expire(runner)

    def running(self) -> list[Runner]:
        return sorted(self._runners.values(), key=lambda r: r.expires_at, reverse=True)

    async def close(self) -> None:
        for runner in list(self._runners.values()):
            await self._unload(runner)
