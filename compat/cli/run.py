"""``llamaport run MODEL [PROMPT...]``: one-shot generation or the chat REPL.

Unlike the other commands, ``run`` starts a server in the background when
none answers, so ``llamaport run MODEL`` works on a fresh machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llamaport.compat.cli.commands import CLIError, Console, pull_if_missing
from llamaport.compat.cli.conversations import item_text, known
from llamaport.compat.cli.display import ResponsePrinter
from llamaport.compat.cli.format import go_duration, go_quote, timing_summary
from llamaport.compat.cli.progress import show_progress
from llamaport.compat.cli.repl import HTTPBackend, RunOptions, Session, run_repl
from llamaport.compat.client import (
    ChatChunk,
    Client,
    GenerateChunk,
    JSONObject,
    ResponseError,
    ShowResponse,
    Stream,
)
from llamaport.storage.settings import Settings, parse_duration

__all__ = [
    "RunArgs",
    "ensure_server",
    "parse_format",
    "parse_keep_alive",
    "parse_think",
    "run",
    "start_background_server",
]

SERVER_START_TIMEOUT = 60.0
POLL_INTERVAL = 0.25
THINK_LEVELS = ("high", "medium", "low", "max")


@dataclass
class RunArgs:
    """The parsed flags of ``run``."""

    model: str
    prompt: list[str] = field(default_factory=list)
    verbose: bool = False
    keepalive: str | None = None
    format: str = ""
    nowordwrap: bool = False
    think: str | None = None
    hidethinking: bool = False
    conversation: str | None = None
    insecure: bool = False


def parse_think(value: str | None) -> bool | str | None:
    """``--think`` values: bare/``true``, ``false`` or a level; ``None`` if absent."""
    if value is None:
        return None
    if value in ("", "true"):
        return True
    if value == "false":
        return False
    if value in THINK_LEVELS:
        return value
    raise CLIError(
        f"invalid value for --think: {go_quote(value)} "
        "(must be true, false, high, medium, low, or max)"
    )


def parse_keep_alive(value: str | None) -> str | int | None:
    """``--keepalive`` as a Go duration, sent the way Ollama's client sends it."""
    if value is None or value == "":
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise CLIError(str(exc)) from exc
    if seconds < 0:
        return -1
    return go_duration(round(seconds * 1e9))


def parse_format(value: str) -> str | JSONObject | None:
    """``--format``: ``json``, a JSON schema object, or passed through for the server to judge."""
    if not value:
        return None
    if value == "json":
        return value
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, dict) else value


def start_background_server(settings: Settings) -> subprocess.Popen[bytes]:
    """Start ``llamaport serve`` detached from this terminal, logging to ``server_log``."""
    log = settings.server_log
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "llamaport.compat.cli.main", "serve"],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            start_new_session=True,
        )


def ensure_server(client: Client, settings: Settings, console: Console) -> None:
    """Make sure a server answers, starting one in the background if needed."""
    if client.heartbeat():
        return
    process = start_background_server(settings)
    log = settings.server_log
    console.stderr.write(f"Started a llamaport server in the background (log: {log})\n")
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if client.heartbeat():
            return
        if process.poll() is not None:
            raise CLIError(
                f"the llamaport server exited with status {process.returncode}; see {log}"
            )
        time.sleep(POLL_INTERVAL)
    raise CLIError(f"timed out waiting for the llamaport server to start; see {log}")


def _wrap_width(args: RunArgs, console: Console) -> int | None:
    if args.nowordwrap or not console.stdout_is_tty():
        return None
    return shutil.get_terminal_size().columns


def _options(args: RunArgs, capabilities: list[str]) -> RunOptions:
    think = parse_think(args.think)
    if think is None and "thinking" in capabilities:
        think = True  # as Ollama does for thinking models when --think is absent
    return RunOptions(
        model=args.model,
        format=parse_format(args.format),
        keep_alive=parse_keep_alive(args.keepalive),
        think=think,
        hide_thinking=args.hidethinking,
        verbose=args.verbose,
        word_wrap=not args.nowordwrap,
        conversation=args.conversation,
    )


def run(client: Client, settings: Settings, console: Console, args: RunArgs) -> int:
    """Answer one prompt, or open the REPL when there is none and both ends are terminals."""
    parse_think(args.think)  # reject bad flags before touching the server
    parse_keep_alive(args.keepalive)
    ensure_server(client, settings, console)
    parts = list(args.prompt)
    interactive = not parts and console.stdout_is_tty()
    if not console.stdin_is_tty():
        piped = console.stdin.read()
        if piped:
            parts.insert(0, piped)
        interactive = False
    show_progress(pull_if_missing(client, args.model, args.insecure), console.stderr)
    info = client.show(args.model)
    if args.conversation is not None:
        with known(args.conversation):
            client.conversation(args.conversation)
    capabilities = info.capabilities
    opts = _options(args, capabilities)
    prompt = " ".join(parts)
    if "embedding" in capabilities:
        return _embed(client, console, opts, prompt)
    if interactive:
        return _interactive(client, settings, console, opts, info)
    return _generate(client, console, opts, prompt, _wrap_width(args, console))


def _embed(client: Client, console: Console, opts: RunOptions, prompt: str) -> int:
    """Embedding models print the vector as one JSON array."""
    if not prompt:
        raise CLIError(
            "embedding models require input text. Usage: llamaport run "
            f'{opts.model} "your text here"'
        )
    body: JSONObject = {"model": opts.model, "input": prompt}
    if opts.keep_alive is not None:
        body["keep_alive"] = opts.keep_alive
    embeddings = client.embed(body).embeddings
    if not embeddings:
        raise CLIError("no embeddings returned")
    console.stdout.write(json.dumps(embeddings[0], separators=(",", ":")) + "\n")
    return 0


def _generate(
    client: Client, console: Console, opts: RunOptions, prompt: str, width: int | None
) -> int:
    """One ``/api/generate`` call (``/api/chat`` in a stored conversation),
    streamed to stdout; Ctrl+C stops it quietly."""
    body: JSONObject = {"model": opts.model, "prompt": prompt}
    if opts.conversation is not None:
        body = {
            "model": opts.model,
            "messages": [{"role": "user", "content": prompt}],
            "conversation": opts.conversation,
        }
    body.update(_common_fields(opts))
    printer = ResponsePrinter(
        console.stdout,
        width=width,
        hide_thinking=opts.hide_thinking,
        color=console.stdout_is_tty(),
    )
    stream: Stream[ChatChunk] | Stream[GenerateChunk]
    stream = client.chat(body) if opts.conversation is not None else client.generate(body)
    last: ChatChunk | GenerateChunk | None = None
    try:
        for chunk in stream:
            if isinstance(chunk, ChatChunk):
                message = chunk.message
                printer.feed(message.thinking or "", message.content, message.tool_calls)
            else:
                printer.feed(chunk.thinking or "", chunk.response)
            last = chunk
    except KeyboardInterrupt:
        printer.finish()
        console.stdout.write("\n")
        return 0
    finally:
        stream.close()
    printer.finish()
    if prompt:
        console.stdout.write("\n\n")
    if opts.verbose and last is not None and last.done:
        console.stderr.write(timing_summary(last))
    return 0


def _common_fields(opts: RunOptions) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if opts.format:
        fields["format"] = opts.format
    if opts.options:
        fields["options"] = dict(opts.options)
    if opts.keep_alive is not None:
        fields["keep_alive"] = opts.keep_alive
    if opts.think is not None:
        fields["think"] = opts.think
    return fields


def _interactive(
    client: Client, settings: Settings, console: Console, opts: RunOptions, info: ShowResponse
) -> int:
    """Load the model, replay the Modelfile's messages, then chat."""
    load: JSONObject = {"model": opts.model}
    if opts.keep_alive is not None:
        load["keep_alive"] = opts.keep_alive
    if opts.think is not None:
        load["think"] = opts.think  # fail now, not at the first message, if unsupported
    for _ in client.generate(load):
        pass
    backend = HTTPBackend(client, console.stdout, color=console.stdout_is_tty())
    if opts.conversation is None:
        _replay(console, info.messages or [])
        try:
            opts.conversation = backend.new_conversation(opts)
        except ResponseError as exc:  # a server without conversations (Ollama): chat unstored
            console.stderr.write(f"Warning: this chat is not stored: {exc}\n")
    else:
        items = backend.items(opts.conversation)
        _replay(console, [{"role": i.get("role"), "content": item_text(i)} for i in items])
    session = Session(opts, backend, console.stdout, console.stderr)
    history: Path | None = None if settings.nohistory else settings.history_file
    return run_repl(session, history, console.stdout)


def _replay(console: Console, messages: list[JSONObject]) -> None:
    """Show the model's built-in conversation (Modelfile ``MESSAGE``s)."""
    for message in messages:
        if message.get("role") == "user":
            console.stdout.write(f">>> {message.get('content', '')}\n")
        elif message.get("role") == "assistant":
            console.stdout.write(f"{message.get('content', '')}\n\n")
