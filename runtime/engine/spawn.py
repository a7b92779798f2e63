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

This module imports nothing heavy (no asyncio), so the spare can start first.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from dataclasses import dataclass

__all__ = ["EngineProcess", "Spawner", "spawn_engine"]

_STOP_SECONDS = 5.0


@dataclass
class EngineProcess:
    """A started worker and the server's end of its socket pair; it waits for its
    ``(LoadSpec, debug)`` message, and exits quietly if ``sock`` closes first."""

    proc: subprocess.Popen[bytes]
    sock: socket.socket

    def end(self) -> None:
        """Close our end (the worker exits at its first read), then reap it:
        killed if it has not exited within a few seconds."""
        self.sock.close()
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
    return EngineProcess(proc, ours)


class Spawner:
    """Where engine processes come from: the spare while there is one, else a new one.

    ``Spawner(spare=True)`` starts the spare at once. :meth:`take` hands it
    to the first load, or spawns when it was taken or has died (it is then
    reaped). Whoever made the spawner calls :meth:`close` when the server
    stops, which ends a spare no load took.
    """

    def __init__(self, spare: bool = False) -> None:
        self._spare: EngineProcess | None = None
        if spare:
            with contextlib.suppress(OSError):  # no spare: the first load spawns, as later ones
                self._spare = spawn_engine()

    @property
    def spare_pid(self) -> int | None:
        """The waiting spare's pid (None once taken or ended)."""
        return self._spare.proc.pid if self._spare is not None else None

    def take(self) -> EngineProcess:
        """A process for one engine; the caller owns it from here."""
        spare, self._spare = self._spare, None
        if spare is not None:
            if spare.proc.poll() is None:
                return spare
            spare.end()  # died while waiting: reaped, and a fresh one takes its place
        return spawn_engine()

    def close(self) -> None:
        """End the spare if no load took it. Idempotent."""
        spare, self._spare = self._spare, None
        if spare is not None:
            with contextlib.suppress(OSError):
                spare.end()
