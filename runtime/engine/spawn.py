"""Starting engine processes, and the one spare started before the first load.

An engine is ``python -m llamaport.runtime.engine.worker FD``: FD is its end
of a socket pair, and the server sends ``(LoadSpec, debug)`` as the first
message. The worker imports ``llama_cpp`` before it reads that message, and
its Python start plus that import take about 0.2 s of the first request on
the 2-core test machine. So ``serve`` makes a :class:`Spawner` with a spare
before it imports the server: the spare starts beside those imports (on the
other core) and waits for its spec, and the first load takes it. Later loads
spawn as before; no new spare is started, since one waiting beside a loaded
model would hold its memory for nothing.

With ``LLAMAPORT_PRELOAD``, ``serve`` knows the first load before it imports
the server, so :meth:`Spawner.begin` sends the spare its spec at once: the
model loads on the other core while the server imports (0.3-0.4 s of
``smollm2:135m``'s first request on the 2-core machine), and the preload's
load takes the spare already loading, or loaded.

This module imports nothing heavy (no asyncio), so the spare can start first.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection

from llamaport.runtime.engine.wire import LoadSpec

__all__ = ["EngineProcess", "Spawner", "spawn_engine"]

_STOP_SECONDS = 5.0


@dataclass
class EngineProcess:
    """A started worker and the server's end of its socket pair; it waits for its
    ``(LoadSpec, debug)`` message, and exits quietly if ``conn`` closes first."""

    proc: subprocess.Popen[bytes]
    conn: Connection

    def load(self, spec: LoadSpec, debug: bool) -> None:
        """Send the load message. A worker already dead is not an error here: the
        engine's first read finds it gone and reports how it ended."""
        with contextlib.suppress(OSError):
            self.conn.send((spec, debug))

    def end(self, kill: bool = False) -> None:
        """Close our end (a waiting worker exits at its first read), then reap it:
        killed at once with ``kill`` (one busy loading), else if it has not exited
        within a few seconds."""
        self.conn.close()
        if kill:
            self.proc.kill()
        try:
            self.proc.wait(timeout=_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=_STOP_SECONDS)


def spawn_engine() -> EngineProcess:
    """Start one worker process (blocking for the fork and exec only)."""
    ours, theirs = socket.socketpair()
    with theirs:
        command = [sys.executable, "-m", "llamaport.runtime.engine.worker", str(theirs.fileno())]
        proc = subprocess.Popen(command, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
    return EngineProcess(proc, Connection(ours.detach()))


class Spawner:
    """Where engine processes come from: the spare while there is one, else a new one.

    ``Spawner(spare=True)`` starts the spare at once. :meth:`take` hands it
    to the first load, or spawns when it was taken or has died (it is then
    reaped). :meth:`begin` starts the spare's load early; a load of any other
    spec then gets a new process, and the spare is killed. Whoever made the
    spawner calls :meth:`close` when the server stops, which ends a spare no
    load took.
    """

    def __init__(self, spare: bool = False) -> None:
        self._spare: EngineProcess | None = None
        self._begun: tuple[LoadSpec, bool] | None = None
        if spare:
            with contextlib.suppress(OSError):  # no spare: the first load spawns, as later ones
                self._spare = spawn_engine()

    @property
    def spare_pid(self) -> int | None:
        """The waiting spare's pid (None once taken or ended)."""
        return self._spare.proc.pid if self._spare is not None else None

    def begin(self, spec: LoadSpec, debug: bool) -> bool:
        """Start the spare loading ``spec`` now, for the first :meth:`take` of the
        same spec; False when there is no spare or it has begun already."""
        if self._spare is None or self._begun is not None:
            return False
        self._spare.load(spec, debug)
        self._begun = (spec, debug)
        return True

    def take(self, spec: LoadSpec, debug: bool) -> EngineProcess:
        """A process loading ``spec``; the caller owns it from here."""
        spare, begun = self._spare, self._begun
        self._spare = self._begun = None
        if spare is not None:
            if spare.proc.poll() is None and begun in (None, (spec, debug)):
                if begun is None:
                    spare.load(spec, debug)
                return spare
            # Dead while waiting, or loading another spec: reaped, and a fresh one
            # takes its place.
            spare.end(kill=begun is not None)
        process = spawn_engine()
        process.load(spec, debug)
        return process

    def close(self) -> None:
        """End the spare if no load took it (killed if it was loading). Idempotent."""
        spare, begun = self._spare, self._begun
        self._spare = self._begun = None
        if spare is not None:
            with contextlib.suppress(OSError):
                spare.end(kill=begun is not None)
