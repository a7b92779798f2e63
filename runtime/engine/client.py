"""The server's handle on one engine process.

It takes a process from its :class:`~llamaport.runtime.engine.spawn.Spawner`
(the spare ``serve`` started, else a new one) loading its spec, waits for
:class:`Ready`, and routes the engine's events to per-request asyncio queues,
reading the socket on the event loop itself (``add_reader``): a reader thread
cost every token a thread wake-up, the GIL's hand-over and a write to the
loop's self-pipe. When the process dies, every request still running gets an
:class:`EngineCrashed` and ``on_exit`` tells the scheduler to forget this
engine; the next request starts a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
from collections.abc import AsyncIterator, Callable
from multiprocessing.connection import Connection

from llamaport.runtime.engine.spawn import Spawner
from llamaport.runtime.engine.wire import (
    Cancel,
    Command,
    Detokenize,
    Detokenized,
    Done,
    Embed,
    Embedded,
    EngineInfo,
    Event,
    Failed,
    Forget,
    LoadFailed,
    LoadSpec,
    Ready,
    SamplingParams,
    Segment,
    Shutdown,
    Submit,
    Tokenize,
    Tokens,
)
from llamaport.runtime.errors import EngineCrashed, ModelLoadFailed

__all__ = ["EngineClient"]

_CRASHED = "crashed"


class EngineClient:
    """Owns one engine process. Create with :meth:`start`; end with :meth:`stop`.

    Its process comes from ``spawner`` (see :mod:`~llamaport.runtime.engine.spawn`);
    without one, from a spawner that holds no spare (a new process).
    """

    def __init__(self, spec: LoadSpec, debug: bool = False, spawner: Spawner | None = None) -> None:
        self.spec = spec
        self._debug = debug
        self._spawner = spawner or Spawner()
        self._ids = itertools.count(1)
        self._streams: dict[int, asyncio.Queue[Event]] = {}
        self._conn: Connection | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.info: EngineInfo | None = None
        self.alive = False
        self.exit_message = ""
        self.on_exit: Callable[[EngineClient], None] | None = None
        self._reading = False
        self._exit_report: asyncio.Future[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self, timeout: float) -> EngineInfo:
        """Take a process, send it the load spec and wait until the model is loaded."""
        self._loop = asyncio.get_running_loop()
        process = await asyncio.to_thread(self._spawner.take, self.spec, self._debug)
        self._proc = process.proc
        self._conn = process.conn
        first = await asyncio.to_thread(self._first_event, timeout)
        if not isinstance(first, Ready):
            await self.stop()
            message = first.message if isinstance(first, LoadFailed) else "engine did not start"
            raise ModelLoadFailed(f"llama runner process has terminated: {message}")
        self.info = first.info
        self.alive = True
        self._loop.add_reader(self._conn.fileno(), self._readable)
        # uvloop (libuv) makes a watched descriptor non-blocking, and Connection
        # reads and writes whole messages: it cannot resume one cut short. A
        # readable socket holds the start of a message; the rest follows at once.
        os.set_blocking(self._conn.fileno(), True)
        self._reading = True
        return first.info

    def _first_event(self, timeout: float) -> Event | None:
        assert self._conn is not None
        try:
            if self._conn.poll(timeout if timeout > 0 else None):
                event: Event = self._conn.recv()
                return event
        except (EOFError, OSError):
            pass
        return LoadFailed(self._describe_exit())

    def _describe_exit(self) -> str:
        assert self._proc is not None
        try:
            code = self._proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        if code is None:
            return "no answer from the engine process"
        return f"signal {-code}" if code < 0 else f"exit status {code}"

    def _readable(self) -> None:
        """One message from the engine (one step's events). The loop calls this
        again while more are waiting, so no ``poll()`` per message is needed."""
        assert self._conn is not None
        try:
            self._dispatch(self._conn.recv())
        except (EOFError, OSError):
            self._stop_reading()
            self._exit_report = asyncio.ensure_future(self._report_exit())

    def _stop_reading(self) -> None:
        if self._reading:
            assert self._conn is not None and self._loop is not None
            self._loop.remove_reader(self._conn.fileno())
            self._reading = False

    async def _report_exit(self) -> None:
        message = await asyncio.to_thread(self._describe_exit)
        self._died(f"llama runner process has terminated: {message}")

    def _dispatch(self, events: list[Event]) -> None:
        for event in events:
            queue = self._streams.get(getattr(event, "rid", -1))
            if queue is not None:
                queue.put_nowait(event)

    def _died(self, message: str) -> None:
        if not self.alive:
            return
        self.alive = False
        self.exit_message = message
        self._fail_all(_CRASHED, message)
        if self.on_exit is not None:
            self.on_exit(self)

    def _fail_all(self, kind: str, message: str) -> None:
        for rid, queue in self._streams.items():
            queue.put_nowait(Failed(rid, kind, message))

    def end_requests(self, kind: str, message: str) -> None:
        """End every request in flight with ``Failed(kind, message)`` and cancel its
        sequence in the engine, which is then idle (the shutdown deadline uses this)."""
        rids = list(self._streams)
        self._fail_all(kind, message)
        if self.alive:
            for rid in rids:
                self._send(Cancel(rid))

    def _send(self, command: Command) -> None:
        if self._conn is None or not self.alive:
            raise EngineCrashed(self.exit_message or "llama runner process is not running")
        try:
            self._conn.send(command)
        except (OSError, ValueError) as exc:
            raise EngineCrashed(f"llama runner process has terminated: {exc}") from exc

    async def generate(
        self,
        segments: tuple[Segment, ...],
        sampling: SamplingParams,
        return_context: bool,
        persist: str = "",
        owner: str = "",
    ) -> AsyncIterator[Event]:
        """Yield the request's events up to and including ``Done`` or ``Failed``
        (``persist`` and ``owner``: see :attr:`Submit.persist`).

        Closing the iterator early (client gone, task cancelled) cancels the
        sequence in the engine at its next step.
        """
        rid = next(self._ids)
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._streams[rid] = queue
        finished = False
        try:
            self._send(Submit(rid, segments, sampling, return_context, persist, owner))
            while True:
                event = await queue.get()
                if isinstance(event, Failed) and event.kind == _CRASHED:
                    raise EngineCrashed(event.message)
                finished = isinstance(event, Done | Failed)
                yield event
                if finished:
                    return
        finally:
            del self._streams[rid]
            if not finished and self.alive:
                self._send(Cancel(rid))

    async def _call(self, make: Callable[[int], Command]) -> Event:
        """Send one command and wait for its single answer."""
        rid = next(self._ids)
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._streams[rid] = queue
        try:
            self._send(make(rid))
            event = await queue.get()
        finally:
            del self._streams[rid]
        if isinstance(event, Failed) and event.kind == _CRASHED:
            raise EngineCrashed(event.message)
        return event

    async def embed(self, texts: tuple[str, ...], truncate: bool) -> Embedded | Failed:
        event = await self._call(lambda rid: Embed(rid, texts, truncate))
        assert isinstance(event, Embedded | Failed)
        return event

    async def tokenize(self, segments: tuple[Segment, ...]) -> Tokens | Failed:
        event = await self._call(lambda rid: Tokenize(rid, segments))
        assert isinstance(event, Tokens | Failed)
        return event

    async def detokenize(self, tokens: tuple[int, ...]) -> Detokenized | Failed:
        event = await self._call(lambda rid: Detokenize(rid, tokens))
        assert isinstance(event, Detokenized | Failed)
        return event

    def forget(self, owner: str) -> None:
        """Have the engine remove ``owner``'s KV files (no answer; a dead engine has
        nothing queued to write)."""
        with contextlib.suppress(EngineCrashed):
            self._send(Forget(owner))

    async def stop(self, timeout: float = 5.0) -> None:
        """Ask the engine to exit; kill it if it does not within ``timeout``."""
        was_alive, self.alive = self.alive, False
        if was_alive and self._conn is not None:
            with contextlib.suppress(OSError, ValueError):
                self._conn.send(Shutdown())
        if self._proc is not None:
            try:
                await asyncio.to_thread(self._proc.wait, timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                await asyncio.to_thread(self._proc.wait, timeout)
        if self._conn is not None:
            self._stop_reading()
            self._conn.close()
