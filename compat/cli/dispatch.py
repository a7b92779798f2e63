"""Every command but ``serve``: one :class:`Client` to the server, the handler, its errors.

``main`` imports this module only for those commands, so ``serve`` never
loads the client side (httpx, tenacity, the formatting) before it listens.
"""

from __future__ import annotations

import argparse

from llamaport.compat.cli import commands, conversations
from llamaport.compat.cli.console import NO_SERVER, CLIError, Console
from llamaport.compat.cli.create import create_model
from llamaport.compat.cli.run import RunArgs, run
from llamaport.compat.client import Client, ClientError, ConnectError
from llamaport.storage.settings import Settings

__all__ = ["run_command"]


def run_command(ns: argparse.Namespace, settings: Settings, console: Console) -> int:
    """Run a parsed client command; the client's errors become ``Error: ...``
    and status 1 (``CLIError`` is left to ``main``)."""
    try:
        return _dispatch(ns, settings, console)
    except ConnectError:
        console.stderr.write(f"Error: {NO_SERVER}\n")
    except ClientError as exc:
        console.stderr.write(f"Error: {exc}\n")
    return 1


def _dispatch(ns: argparse.Namespace, settings: Settings, console: Console) -> int:
    command = ns.command
    with Client(settings.host.url, api_key=settings.api_key) as client:
        if ns.version and command is None:
            return commands.version(client, console)
        if command == "run":
            args = RunArgs(
                model=ns.model,
                prompt=list(ns.prompt),
                verbose=ns.verbose,
                keepalive=ns.keepalive,
                format=ns.format,
                nowordwrap=ns.nowordwrap,
                think=ns.think,
                hidethinking=ns.hidethinking,
                conversation=ns.conversation,
                insecure=ns.insecure,
            )
            return run(client, settings, console, args)
        if command == "conversations":
            return _conversations(ns, client, console)
        if command in ("list", "ls"):
            return commands.list_models(client, console, ns.prefix)
        if command == "ps":
            return commands.list_running(client, console, ns.prefix)
        if command == "upstreams":
            return commands.list_upstreams(client, console)
        if command == "show":
            fields = [name for name in commands.SHOW_FIELDS if getattr(ns, name)]
            return commands.show_model(client, console, ns.model, fields, ns.verbose)
        if command == "stop":
            return commands.stop_model(client, ns.model)
        if command == "create":
            return create_model(client, console, ns.model, ns.file, ns.quantize)
        if command == "cp":
            return commands.copy_model(client, console, ns.source, ns.destination)
        if command == "rm":
            return commands.remove_models(client, console, ns.models)
        if command == "pull":
            return commands.pull_model(client, console, ns.model, ns.insecure, ns.verbose)
        if command == "push":
            return commands.push_model(client, console, ns.model, ns.insecure, ns.verbose)
    raise CLIError(f"unknown command: {command}")  # main prints the help for none


def _conversations(ns: argparse.Namespace, client: Client, console: Console) -> int:
    if ns.action in ("list", "ls"):
        return conversations.list_conversations(client, console)
    if ns.action == "show":
        return conversations.show(client, console, ns.id)
    if ns.action == "rm":
        return conversations.remove(client, console, ns.ids)
    if ns.action == "export":
        return conversations.export(client, console, ns.id, ns.export_format)
    raise CLIError("usage: llamaport conversations list|show ID|rm ID...|export ID")
