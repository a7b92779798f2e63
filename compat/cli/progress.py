"""Transfer progress as Ollama's CLI shows it: status lines and one bar per layer.

Events come from ``/api/pull`` or ``/api/push``. An event with a ``total``
moves the bar of its ``digest`` (or, without one, of its status): bytes,
speed, time left. Any other event is a plain status line. Lines and bars
keep the server's order: bars are finished before the next line is printed.
With ``verbose``, each finished set of bars is followed by one line per layer:
its digest, size and the time it took.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console as RichConsole
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from llamaport.compat.cli.format import human_bytes
from llamaport.compat.client import ProgressLine

__all__ = ["show_progress"]


@dataclass
class _Layer:
    task: TaskID
    total: int
    started: float
    finished: float | None = None


class _Display:
    def __init__(self, stream: TextIO, verbose: bool) -> None:
        self.console = RichConsole(file=stream, highlight=False, soft_wrap=True)
        self.verbose = verbose
        self.bars: Progress | None = None
        self.tasks: dict[str, _Layer] = {}

    def event(self, event: ProgressLine) -> None:
        status = event.status
        if event.total is not None and event.total > 0:
            self._bar(status, event.digest or status, event.total, event.completed or 0)
        elif status:
            self.finish_bars()
            self.console.print(status)

    def _bar(self, status: str, key: str, total: int, completed: int) -> None:
        if self.bars is None:
            self.bars = Progress(
                TextColumn("{task.description}:"),
                TaskProgressColumn(),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.bars.start()
            self.tasks = {}
        layer = self.tasks.get(key)
        if layer is None:
            task = self.bars.add_task(status, total=total, completed=completed)
            layer = self.tasks[key] = _Layer(task, total, time.monotonic())
        else:
            self.bars.update(layer.task, completed=completed)
        if completed >= total and layer.finished is None:
            layer.finished = time.monotonic()

    def finish_bars(self) -> None:
        if self.bars is None:
            return
        self.bars.stop()
        self.bars = None
        if self.verbose:
            for key, layer in self.tasks.items():
                took = (layer.finished or time.monotonic()) - layer.started
                self.console.print(f"{key} {human_bytes(layer.total)} in {took:.1f}s")


def show_progress(events: Iterable[ProgressLine], stream: TextIO, verbose: bool = False) -> None:
    """Render every event to ``stream`` (the CLI's stderr) until the stream ends."""
    display = _Display(stream, verbose)
    try:
        for event in events:
            display.event(event)
    finally:
        display.finish_bars()
