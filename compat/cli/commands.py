"""The CLI's short commands: ``list``, ``ps``, ``show``, ``stop``, ``cp``,
``rm``, ``pull``, ``push``, ``-v`` (``serve`` is :mod:`~llamaport.compat.cli.main`'s).

Each handler gets a :class:`Client` and a :class:`Console` and returns the
exit status; problems are raised as :class:`CLIError` (or the client's
errors) and printed once as ``Error: <message>``, by ``main`` (the client's
errors by :mod:`~llamaport.compat.cli.dispatch`). ``Console``, ``CLIError`` and the texts the parser
needs live in :mod:`~llamaport.compat.cli.console` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from llamaport.compat.cli.console import NO_SERVER, SHOW_FIELDS, CLIError, Console
from llamaport.compat.cli.format import list_table, ps_table, show_info, upstreams_table
from llamaport.compat.cli.progress import show_progress
from llamaport.compat.client import Client, ClientError, ProgressLine, ResponseError
from llamaport.compat.version import __version__

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
    "show_model",
    "stop_model",
    "version",
]

NOT_FOUND = 404


def require_server(client: Client) -> None:
    """Fail with Ollama's hint when nothing answers ``HEAD /``."""
    if not client.heartbeat():
        raise CLIError(NO_SERVER)


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
