"""The CLI's short commands: ``serve``, ``list``, ``ps``, ``show``, ``stop``, ``cp``,
``rm``, ``pull``, ``push``, ``-v``.

Each handler gets a :class:`Client` and a :class:`Console` and returns the
exit status; problems are raised as :class:`CLIError` (or the client's
errors) and printed once, by ``main``, as ``Error: <message>``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

from llamaport.compat.cli.format import list_table, ps_table, show_info, upstreams_table
from llamaport.compat.cli.progress import show_progress
from llamaport.compat.client import Client, ClientError, ProgressLine, ResponseError
from llamaport.compat.version import __version__
from llamaport.storage.settings import Settings

__all__ = [
    "NO_SERVER",
    "SHOW_FIELDS",
    "CLIError",
    "Console",
    "copy_model",
    "list_models",
    "list_running",
    "list_upstreams",
    "pull_model",
    "push_model",
    "remove_models",
    "require_server",
    "serve",
    "show_model",
    "stop_model",
    "version",
]

NO_SERVER = "could not connect to llamaport server, run 'llamaport serve' to start it"
NOT_FOUND = 404


class CLIError(Exception):
    """A failure to report as ``Error: <message>`` with exit status 1."""


@dataclass
class Console:
    """The three standard streams, injectable so commands can be tested."""

    stdin: TextIO
    stdout: TextIO
    stderr: TextIO

    @classmethod
    def system(cls) -> Console:
        return cls(sys.stdin, sys.stdout, sys.stderr)

    def stdin_is_tty(self) -> bool:
        return _isatty(self.stdin)

    def stdout_is_tty(self) -> bool:
        return _isatty(self.stdout)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def require_server(client: Client) -> None:
    """Fail with Ollama's hint when nothing answers ``HEAD /``."""
    if not client.heartbeat():
        raise CLIError(NO_SERVER)


def serve(settings: Settings) -> int:
    """Run the HTTP server in the foreground until a signal stops it (gracefully)."""
    from llamaport.compat.server import serve as run_server

    return run_server(settings)


def list_models(
    client: Client, console: Console, prefix: str = "", now: datetime | None = None
) -> int:
    """``list``/``ls``: the local models, newest first as the server sorts them."""
    require_server(client)
    models = client.tags().models
    console.stdout.write(list_table(models, now or datetime.now(UTC), prefix))
    return 0


def list_upstreams(client: Client, console: Console) -> int:
    """``upstreams``: the proxy's upstreams, their breaker state and last error."""
    require_server(client)
    console.stdout.write(upstreams_table(client.upstreams().get("upstreams") or []))
    return 0


def list_running(
    client: Client, console: Console, prefix: str = "", now: datetime | None = None
) -> int:
    """``ps``: the loaded models and when they unload."""
    require_server(client)
    models = client.ps().models
    console.stdout.write(ps_table(models, now or datetime.now(UTC), prefix))
    return 0


SHOW_FIELDS = {
    "license": "Show license of a model",
    "modelfile": "Show Modelfile of a model",
    "parameters": "Show parameters of a model",
    "template": "Show template of a model",
    "system": "Show system message of a model",
}
"""``show``'s one-field flags, in the order Ollama checks them."""
_SHOW_ONE = (
    "only one of '--license', '--modelfile', '--parameters', '--system', "
    "or '--template' can be specified"
)


def show_model(
    client: Client,
    console: Console,
    model: str,
    fields: Sequence[str] = (),
    verbose: bool = False,
) -> int:
    """``show MODEL``: the info tables, or one field's text (``--modelfile``...).

    License, Modelfile and parameters end with a newline, system and template
    are printed as they are, as Ollama prints them.
    """
    if len(fields) > 1:
        raise CLIError(_SHOW_ONE)
    require_server(client)
    resp = client.show(model, verbose=verbose)
    if not fields:
        console.stdout.write(show_info(resp, verbose))
        return 0
    text = str(getattr(resp, fields[0]) or "")
    console.stdout.write(text if fields[0] in ("system", "template") else text + "\n")
    return 0


def stop_model(client: Client, model: str) -> int:
    """``stop MODEL``: unload it now (``keep_alive: 0``)."""
    require_server(client)
    try:
        for _ in client.generate({"model": model, "keep_alive": 0}):
            pass
    except ResponseError as exc:
        if exc.status == NOT_FOUND:
            raise CLIError(f'couldn\'t find model "{model}" to stop') from exc
        raise
    return 0


def copy_model(client: Client, console: Console, source: str, destination: str) -> int:
    """``cp SOURCE DESTINATION``."""
    require_server(client)
    client.copy(source, destination)
    console.stdout.write(f"copied '{source}' to '{destination}'\n")
    return 0


def remove_models(client: Client, console: Console, models: list[str]) -> int:
    """``rm MODEL...``: the server unloads each before deleting it."""
    require_server(client)
    for model in models:
        client.delete(model)
        console.stdout.write(f"deleted '{model}'\n")
    return 0


def pull_model(
    client: Client, console: Console, model: str, insecure: bool = False, verbose: bool = False
) -> int:
    """``pull MODEL [--insecure] [--verbose]``: progress bars on stderr, as Ollama draws them;
    ``--verbose`` adds a line per layer (digest, size, time)."""
    require_server(client)
    show_progress(client.pull(model, insecure=insecure), console.stderr, verbose=verbose)
    return 0


def pull_if_missing(client: Client, model: str, insecure: bool = False) -> Iterator[ProgressLine]:
    """Pull events for ``model`` if the server lacks it, else none: ``run`` and ``create``
    fetch a missing model first, as Ollama's do (the HTTP routes keep their 404)."""
    try:
        client.show(model)
    except ResponseError as exc:
        if exc.status != 404:
            raise
        yield from client.pull(model, insecure=insecure)


def push_model(
    client: Client, console: Console, model: str, insecure: bool = False, verbose: bool = False
) -> int:
    """``push MODEL [--insecure] [--verbose]``."""
    require_server(client)
    show_progress(client.push(model, insecure=insecure), console.stderr, verbose=verbose)
    return 0


def version(client: Client, console: Console) -> int:
    """``-v``: the server's version, warning when the client's differs."""
    try:
        info = client.version()
    except ClientError:
        console.stdout.write(f"llamaport version is {__version__}\n")
        console.stderr.write("Warning: could not connect to a running llamaport instance\n")
        return 0
    server = info.llamaport or info.version
    console.stdout.write(f"llamaport version is {server}\n")
    if server != __version__:
        console.stderr.write(f"Warning: client version is {__version__}\n")
    return 0
