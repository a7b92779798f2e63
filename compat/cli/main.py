"""Entry point of the ``llamaport`` command: argument parsing and dispatch.

The command set, flags and messages follow Ollama's CLI so scripts written
for ``ollama`` work with ``llamaport``. Everything except ``serve`` reaches
the server over HTTP only.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from llamaport.compat.cli.console import SHOW_FIELDS, CLIError, Console
from llamaport.runtime.engine.spawn import Spawner
from llamaport.storage.settings import Settings, load_settings

__all__ = ["build_parser", "main", "normalize_argv", "parse_args", "run_cli"]


class _Parser(argparse.ArgumentParser):
    """Report usage errors the way every other error is reported."""

    def error(self, message: str) -> NoReturn:
        raise CLIError(message)


def build_parser() -> argparse.ArgumentParser:
    """The full command tree; exposed so tests can check parsing alone."""
    parser = _Parser(prog="llamaport", description="Large language model runner")
    parser.add_argument("-v", "--version", action="store_true", help="Show version information")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    sub.add_parser("serve", aliases=["start"], help="Start llamaport")

    run_cmd = sub.add_parser("run", help="Run a model")
    run_cmd.add_argument("model", metavar="MODEL")
    run_cmd.add_argument("prompt", metavar="PROMPT", nargs="*")
    run_cmd.add_argument("--verbose", action="store_true", help="Show timings for response")
    run_cmd.add_argument(
        "--insecure", action="store_true", help="Use an insecure registry to pull a missing model"
    )
    run_cmd.add_argument(
        "--keepalive", metavar="DUR", help="Duration to keep a model loaded (e.g. 5m)"
    )
    run_cmd.add_argument("--format", default="", help="Response format (e.g. json)")
    run_cmd.add_argument(
        "--nowordwrap",
        action="store_true",
        help="Don't wrap words to the next line automatically",
    )
    run_cmd.add_argument(
        "--think",
        metavar="VALUE",
        help="Enable thinking mode: true/false or high/medium/low/max for supported models",
    )
    run_cmd.add_argument(
        "--hidethinking", action="store_true", help="Hide thinking output (if provided)"
    )
    run_cmd.add_argument(
        "--conversation", metavar="ID", help="Resume a stored conversation (llamaport)"
    )

    create_cmd = sub.add_parser("create", help="Create a model")
    create_cmd.add_argument("model", metavar="MODEL")
    create_cmd.add_argument(
        "-f", "--file", help='Name of the Modelfile (default "Modelfile")', default=None
    )
    create_cmd.add_argument(
        "-q", "--quantize", help="Quantize model to this level (e.g. q4_K_M)", default=None
    )

    cp_cmd = sub.add_parser("cp", help="Copy a model")
    cp_cmd.add_argument("source", metavar="SOURCE")
    cp_cmd.add_argument("destination", metavar="DESTINATION")

    rm_cmd = sub.add_parser("rm", help="Remove a model")
    rm_cmd.add_argument("models", metavar="MODEL", nargs="+")

    stop_cmd = sub.add_parser("stop", help="Stop a running model")
    stop_cmd.add_argument("model", metavar="MODEL")

    show_cmd = sub.add_parser("show", help="Show information for a model")
    show_cmd.add_argument("model", metavar="MODEL")
    for name, text in SHOW_FIELDS.items():
        show_cmd.add_argument(f"--{name}", action="store_true", help=text)
    show_cmd.add_argument(
        "-v", "--verbose", action="store_true", help="Show detailed model information"
    )

    list_cmd = sub.add_parser("list", aliases=["ls"], help="List models")
    list_cmd.add_argument("prefix", metavar="PREFIX", nargs="?", default="")

    for verb, about in (
        ("pull", "Pull a model from a registry"),
        ("push", "Push a model to a registry"),
    ):
        transfer = sub.add_parser(verb, help=about)
        transfer.add_argument("model", metavar="MODEL")
        transfer.add_argument(
            "--insecure", action="store_true", help="Use an insecure registry (plain HTTP)"
        )
        transfer.add_argument("--verbose", action="store_true", help="Show each layer's transfer")

    ps_cmd = sub.add_parser("ps", help="List running models")
    ps_cmd.add_argument("prefix", metavar="PREFIX", nargs="?", default="")

    sub.add_parser("upstreams", help="List the proxy's upstreams and their health")

    conv_cmd = sub.add_parser("conversations", help="Manage stored conversations")
    conv_sub = conv_cmd.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    conv_sub.add_parser("list", aliases=["ls"], help="List conversations")
    conv_show = conv_sub.add_parser("show", help="Show a conversation's turns")
    conv_show.add_argument("id", metavar="ID")
    conv_rm = conv_sub.add_parser("rm", help="Delete conversations")
    conv_rm.add_argument("ids", metavar="ID", nargs="+")
    conv_export = conv_sub.add_parser("export", help="Export a conversation")
    conv_export.add_argument("id", metavar="ID")
    conv_export.add_argument(
        "--format", default="json", help="json (default) or markdown", dest="export_format"
    )
    return parser


def normalize_argv(argv: Sequence[str]) -> list[str]:
    """Turn a bare ``--think`` into ``--think=true``.

    Ollama's flag takes its value only as ``--think=VALUE``, so in
    ``run m --think why`` the word ``why`` stays part of the prompt.
    """
    out: list[str] = []
    for index, arg in enumerate(argv):
        if arg == "--":
            return out + list(argv[index:])
        out.append("--think=true" if arg == "--think" else arg)
    return out


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse a command line, letting ``run``'s flags sit anywhere among the prompt words.

    argparse stops filling ``PROMPT`` at the first flag, so words after it
    come back as extras; for ``run`` they are appended to the prompt, in order.
    """
    parser = build_parser()
    ns, extras = parser.parse_known_args(normalize_argv(argv))
    if extras and ns.command == "run" and not any(e.startswith("-") and e != "-" for e in extras):
        ns.prompt = [*ns.prompt, *extras]
    elif extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    return ns


def _dispatch(ns: argparse.Namespace, settings: Settings, console: Console) -> int:
    """The CLI's one seam of deferred imports: ``serve`` loads the server and
    none of the client side, every other command the reverse (the server's
    imports alone are most of its start-up)."""
    if ns.command in ("serve", "start"):
        return _serve(settings)
    if ns.command is None and not ns.version:
        build_parser().print_help(console.stdout)
        return 0
    from llamaport.compat.cli.dispatch import run_command

    return run_command(ns, settings, console)


def _begin_preload(settings: Settings, spawner: Spawner) -> None:
    """Start the spare loading the first ``LLAMAPORT_PRELOAD`` model that resolves,
    so the load runs beside the server's imports (:meth:`Spawner.begin`).

    Only without a proxy configuration, where a name may be routed upstream.
    Whatever fails here (a name that does not resolve, a store that cannot
    be read) is left to the lifespan, which reports it as before.
    """
    if not settings.preload or (settings.config is not None and settings.config.exists()):
        return
    from llamaport.runtime.errors import LlamaportError
    from llamaport.runtime.service import Service
    from llamaport.storage.embedded import register_embedded_model
    from llamaport.storage.errors import StorageError
    from llamaport.storage.store import Store

    try:
        store = Store(settings.models)
        register_embedded_model(store)
    except (StorageError, OSError):
        return
    service = Service(settings, store)
    for name in settings.preload:
        try:
            spec = service.load_spec(name)
        except (LlamaportError, StorageError, OSError):
            continue
        spawner.begin(spec, settings.debug)
        return


def _serve(settings: Settings) -> int:
    """Run the HTTP server in the foreground until a signal stops it (gracefully).

    The spare engine process starts before the server is imported, so its
    Python start and ``llama_cpp`` import run beside ours and the first load
    finds it waiting (:mod:`~llamaport.runtime.engine.spawn`); it is ended
    here if no load took it.
    """
    spawner = Spawner(spare=True)
    try:
        _begin_preload(settings, spawner)
        from llamaport.compat.server import serve

        return serve(settings, spawner)
    finally:
        spawner.close()


def run_cli(argv: Sequence[str], console: Console, settings: Settings | None = None) -> int:
    """Parse ``argv``, run the command, and turn errors into ``Error: ...`` and status 1."""
    try:
        ns = parse_args(argv)
        return _dispatch(ns, settings or load_settings(), console)
    except CLIError as exc:
        console.stderr.write(f"Error: {exc}\n")
    except KeyboardInterrupt:
        console.stderr.write("\n")
        return 130
    return 1


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point (``llamaport = llamaport.compat.cli.main:main``)."""
    try:
        return run_cli(sys.argv[1:] if argv is None else argv, Console.system())
    except BrokenPipeError:
        # The reader went away (``llamaport list | head``): exit quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
