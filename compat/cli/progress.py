"""Transfer progress as Ollama's CLI shows it: status lines and one bar per layer.

Events come from ``/api/pull`` or ``/api/push``. An event with a ``total``
moves the bar of its ``digest`` (or, without one, of its status): bytes,
speed, time left. Any other event is a plain status line. Lines and bars
keep the server's order: bars are finished before the next line is printed.
"""

from __future__ import annotations

from collections.abc import Iterable
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

from llamaport.client import JSONObject

__all__ = ["show_progress"]


class _Display:
    def __init__(self, stream: TextIO) -> None:
        self.console = RichConsole(file=stream, highlight=False, soft_wrap=True)
        self.bars: Progress | None = None
        self.tasks: dict[str, TaskID] = {}

    def event(self, event: JSONObject) -> None:
        status = str(event.get("status") or "")
        digest = event.get("digest")
        total = event.get("total")
        if isinstance(total, int) and total > 0:
            key = digest if isinstance(digest, str) and digest else status
            self._bar(status, key, total, int(event.get("completed") or 0))
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
        task = self.tasks.get(key)
        if task is None:
            self.tasks[key] = self.bars.add_task(status, total=total, completed=completed)
        else:
            self.bars.update(task, completed=completed)

    def finish_bars(self) -> None:
        if self.bars is not None:
            self.bars.stop()
            self.bars = None


def show_progress(events: Iterable[JSONObject], stream: TextIO) -> None:
    """Render every event to ``stream`` (the CLI's stderr) until the stream ends."""
    display = _Display(stream)
    try:
        for event in events:
            display.event(event)
    finally:
        display.finish_bars()
