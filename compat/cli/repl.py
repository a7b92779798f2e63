"""The interactive chat of ``llamaport run MODEL`` (Ollama's ``>>>`` prompt).

:class:`Session` holds all the logic: multi-line assembly, ``/`` commands and
the client-side message history. It is fed one line at a time and writes to
injected streams, and everything that needs the server goes through the
small :class:`Backend` protocol, so the logic runs without a terminal.
:func:`run_repl` is the thin terminal loop around it (``readline``, Ctrl+C,
Ctrl+D, history file) and :class:`HTTPBackend` the thin HTTP side.
"""

from __future__ import annotations

import contextlib
import enum
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from llamaport.compat.cli.conversations import item_lines
from llamaport.compat.cli.display import ResponsePrinter
from llamaport.compat.cli.format import (
    go_quote,
    go_value,
    list_table,
    show_info,
    timing_summary,
)
from llamaport.compat.client import (
    Client,
    ClientError,
    JSONObject,
    Metrics,
    ModelEntry,
    ResponseError,
    ShowResponse,
)
from llamaport.storage.params import ParameterError, parse_parameter

__all__ = ["AssistantTurn", "Backend", "HTTPBackend", "RunOptions", "Session", "run_repl"]

PROMPT = ">>> "
CONTINUATION = "... "
INTERRUPT_HINT = "Use Ctrl + d or /bye to exit."

USAGE = """Available Commands:
  /set            Set session variables
  /show           Show model information
  /load <model>   Load a session or model
  /save <model>   Save your current session
  /list           List the models on the server
  /clear          Clear session context
  /history        Show this conversation's turns
  /bye            Exit
  /?, /help       Help for a command
  /? shortcuts    Help for keyboard shortcuts

Use \"\"\" to begin a multi-line message.

"""

USAGE_SET = """Available Commands:
  /set parameter ...     Set a parameter
  /set system <string>   Set system message
  /set history           Enable history
  /set nohistory         Disable history
  /set wordwrap          Enable wordwrap
  /set nowordwrap        Disable wordwrap
  /set format json       Enable JSON mode
  /set noformat          Disable formatting
  /set verbose           Show LLM stats
  /set quiet             Disable LLM stats
  /set think             Enable thinking
  /set nothink           Disable thinking

"""

USAGE_SHOW = """Available Commands:
  /show info         Show details for this model
  /show license      Show model license
  /show modelfile    Show Modelfile for this model
  /show parameters   Show parameters for this model
  /show system       Show system message
  /show template     Show prompt template

"""

USAGE_SHORTCUTS = """Available keyboard shortcuts:
  Ctrl + a            Move to the beginning of the line (Home)
  Ctrl + e            Move to the end of the line (End)
   Alt + b            Move back (left) one word
   Alt + f            Move forward (right) one word
  Ctrl + k            Delete the sentence after the cursor
  Ctrl + u            Delete the sentence before the cursor
  Ctrl + w            Delete the word before the cursor

  Ctrl + l            Clear the screen
  Ctrl + c            Stop the model from responding
  Ctrl + d            Exit llamaport (/bye)

"""

USAGE_PARAMETERS = """Available Parameters:
  /set parameter seed <int>             Random number seed
  /set parameter num_predict <int>      Max number of tokens to predict
  /set parameter top_k <int>            Pick from top k num of tokens
  /set parameter top_p <float>          Pick token based on sum of probabilities
  /set parameter min_p <float>          Pick token based on top token probability * min_p
  /set parameter num_ctx <int>          Set the context size
  /set parameter temperature <float>    Set creativity level
  /set parameter repeat_penalty <float> How strongly to penalize repetitions
  /set parameter repeat_last_n <int>    Set how far back to look for repetitions
  /set parameter num_gpu <int>          The number of layers to send to the GPU
  /set parameter stop <string> <string> ...   Set the stop parameters

"""


@dataclass
class RunOptions:
    """What ``run`` sends with every request; ``/set`` changes it mid-session."""

    model: str
    format: str | JSONObject | None = None
    keep_alive: str | int | None = None
    think: bool | str | None = None
    hide_thinking: bool = False
    verbose: bool = False
    word_wrap: bool = True
    system: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    conversation: str | None = None
    """A stored conversation: each turn sends only new messages, the server keeps the rest."""


@dataclass
class AssistantTurn:
    """A finished assistant reply and the final chunk's metrics."""

    message: JSONObject
    metrics: Metrics


class Backend(Protocol):
    """The server-facing half of a session."""

    def show(self, opts: RunOptions) -> ShowResponse:
        """``/api/show`` for the session's model, with its system and options."""
        ...

    def send(self, body: JSONObject, opts: RunOptions) -> AssistantTurn | None:
        """Stream one ``/api/chat`` reply to the screen; ``None`` if cancelled."""
        ...

    def new_conversation(self, opts: RunOptions) -> str:
        """Create a stored conversation for this session; its id."""
        ...

    def items(self, conversation: str) -> list[JSONObject]:
        """A stored conversation's items, oldest first."""
        ...

    def load(self, model: str) -> None:
        """Load ``model`` on the server (an empty chat); a 404 if it has no such model."""
        ...

    def save(self, body: JSONObject) -> None:
        """``/api/create`` with ``body``, waiting for it to finish."""
        ...

    def models(self) -> list[ModelEntry]:
        """The server's models, as ``/api/tags`` lists them."""
        ...


class Multiline(enum.Enum):
    NONE = enum.auto()
    PROMPT = enum.auto()
    SYSTEM = enum.auto()


class Session:
    """One chat: feed it lines, it answers on ``out``/``err`` and via the backend.

    ``set_history`` is called with ``True``/``False`` for ``/set history`` and
    ``/set nohistory``; the terminal loop owns the actual history.
    """

    def __init__(
        self,
        opts: RunOptions,
        backend: Backend,
        out: TextIO,
        err: TextIO,
        set_history: Callable[[bool], None] | None = None,
    ) -> None:
        self.opts = opts
        self.messages: list[JSONObject] = []
        self._sent = 0
        """With a stored conversation, ``messages[:_sent]`` are already on the server."""
        self._backend = backend
        self._out = out
        self._err = err
        self.set_history = set_history
        self._buffer = ""
        self._multiline = Multiline.NONE
        if opts.system:
            self.messages.append({"role": "system", "content": opts.system})

    @property
    def prompt(self) -> str:
        """``... `` while a multi-line block is open, else ``>>> ``."""
        return CONTINUATION if self._multiline is not Multiline.NONE else PROMPT

    def interrupt(self) -> None:
        """Ctrl+C at the prompt: drop any half-typed block and explain how to leave."""
        self._buffer = ""
        self._multiline = Multiline.NONE
        self._print("\n" + INTERRUPT_HINT)

    def feed(self, line: str) -> bool:
        """Handle one input line; ``False`` means the user asked to exit."""
        if self._multiline is not Multiline.NONE:
            self._continue_block(line)
        elif line.startswith('"""'):
            self._open_block(line)
        elif line.startswith("/"):
            return self._command(line)
        else:
            self._buffer += line
        if self._buffer and self._multiline is Multiline.NONE:
            self._submit(self._buffer)
            self._buffer = ""
        return True

    # -- multi-line input -----------------------------------------------

    def _open_block(self, line: str) -> None:
        text = line[3:]
        if text.endswith('"""'):
            self._buffer += text[:-3]
        else:
            self._buffer += text + "\n"
            self._multiline = Multiline.PROMPT

    def _continue_block(self, line: str) -> None:
        if not line.endswith('"""'):
            self._buffer += line + "\n"
            return
        self._buffer += line[:-3]
        if self._multiline is Multiline.SYSTEM:
            self._apply_system(self._buffer, replace=False)
            self._buffer = ""
        self._multiline = Multiline.NONE

    # -- commands -------------------------------------------------------

    def _command(self, line: str) -> bool:
        words = line.split()
        if line.startswith(("/exit", "/bye")):
            return False
        if line.startswith("/clear"):
            self._restart()
            self._print("Cleared session context")
        elif line.startswith("/load"):
            self._load(words[1:])
        elif line.startswith("/save"):
            self._save(words[1:])
        elif line.startswith("/list"):
            models = self._backend.models()
            self._out.write(list_table(models, datetime.now(UTC)))
        elif line.startswith("/history"):
            self._show_history()
        elif line.startswith("/set"):
            self._set(words[1:], line)
        elif line.startswith("/show"):
            self._show(words[1:])
        elif line.startswith(("/help", "/?")):
            self._help(words[1:])
        else:
            self._print(f"Unknown command '{words[0]}'. Type /? for help")
        return True

    def _restart(self) -> None:
        """Empty the chat but for the system message; a stored one starts a new conversation."""
        self.messages = []
        self._sent = 0
        if self.opts.conversation is not None:
            try:
                self.opts.conversation = self._backend.new_conversation(self.opts)
            except ClientError as exc:
                self.opts.conversation = None
                self._err.write(f"Warning: this chat is not stored: {exc}\n")
        if self.opts.system:
            self.messages.append({"role": "system", "content": self.opts.system})

    def _load(self, args: list[str]) -> None:
        """``/load <model>``: switch model and start over, or keep the old one if it is missing."""
        if len(args) != 1:
            self._print("Usage:\n  /load <modelname>")
            return
        self._print(f"Loading model '{args[0]}'")
        try:
            self._backend.load(args[0])
        except ResponseError as exc:
            if exc.status != 404:
                raise
            self._print(f"Couldn't find model '{args[0]}'")
            return
        self.opts.model = args[0]
        self._restart()

    def _save(self, args: list[str]) -> None:
        """``/save <model>``: a new model from this one, the system message, parameters and chat."""
        if len(args) != 1:
            self._print("Usage:\n  /save <modelname>")
            return
        body: JSONObject = {"model": args[0], "from": self.opts.model}
        if self.opts.system:
            body["system"] = self.opts.system
        if self.opts.options:
            body["parameters"] = self.opts.options
        chat = [m for m in self.messages if m.get("role") != "system"]
        if chat:
            body["messages"] = chat
        try:
            self._backend.save(body)
        except ResponseError as exc:
            if exc.status != 400 or "invalid model name" not in exc.message:
                raise
            self._print(f"error: The model name '{args[0]}' is invalid")
            return
        self._print(f"Created new model '{args[0]}'")

    def _help(self, args: list[str]) -> None:
        if not args:
            self._err.write(USAGE)
        elif args[0] in ("set", "/set"):
            self._err.write(USAGE_SET)
        elif args[0] in ("show", "/show"):
            self._err.write(USAGE_SHOW)
        elif args[0] in ("shortcut", "shortcuts"):
            self._err.write(USAGE_SHORTCUTS)

    def _set(self, args: list[str], line: str) -> None:
        if not args:
            self._err.write(USAGE_SET)
            return
        what, rest = args[0], args[1:]
        simple: dict[str, tuple[str, Callable[[], None]]] = {
            "wordwrap": ("Set 'wordwrap' mode.", lambda: setattr(self.opts, "word_wrap", True)),
            "nowordwrap": (
                "Set 'nowordwrap' mode.",
                lambda: setattr(self.opts, "word_wrap", False),
            ),
            "verbose": ("Set 'verbose' mode.", lambda: setattr(self.opts, "verbose", True)),
            "quiet": ("Set 'quiet' mode.", lambda: setattr(self.opts, "verbose", False)),
            "nothink": ("Set 'nothink' mode.", lambda: setattr(self.opts, "think", False)),
            "noformat": ("Disabled format.", lambda: setattr(self.opts, "format", None)),
        }
        if what in simple:
            message, action = simple[what]
            action()
            self._print(message)
        elif what in ("history", "nohistory"):
            if self.set_history is not None:
                self.set_history(what == "history")
        elif what == "think":
            self.opts.think = rest[0] if rest else True
            self._print(f"Set 'think' mode to '{rest[0]}'." if rest else "Set 'think' mode.")
        elif what == "format":
            if not rest or rest[0] != "json":
                self._print("Invalid or missing format. For 'json' mode use '/set format json'")
            else:
                self.opts.format = "json"
                self._print("Set format to 'json' mode.")
        elif what == "parameter":
            self._set_parameter(rest)
        elif what == "system":
            self._set_system(rest)
        else:
            self._print(f"Unknown command '/set {what}'. Type /? for help")

    def _set_parameter(self, args: list[str]) -> None:
        if len(args) < 2:
            self._err.write(USAGE_PARAMETERS)
            return
        name, values = args[0], args[1:]
        try:
            value = parse_parameter(name, values)
        except ParameterError as exc:
            self._print(f"Couldn't set parameter: {go_quote(str(exc))}")
            return
        self.opts.options[name] = value
        self._print(f"Set parameter '{name}' to '{', '.join(values)}'")

    def _set_system(self, args: list[str]) -> None:
        if not args:
            self._err.write(USAGE_SET)
            return
        text = " ".join(args)
        if text.startswith('"""'):
            text = text[3:]
            if text.endswith('"""'):
                text = text[:-3]
            else:  # Ollama drops this newline; keeping it keeps the words apart
                self._buffer += text + "\n"
                self._multiline = Multiline.SYSTEM
                return
        self._apply_system(text, replace=True)

    def _apply_system(self, text: str, *, replace: bool) -> None:
        """Make ``text`` the system message; a one-liner replaces a trailing one."""
        self.opts.system = text
        message = {"role": "system", "content": text}
        if replace and self.messages and self.messages[-1].get("role") == "system":
            self.messages[-1] = message
        else:
            self.messages.append(message)
        self._print("Set system message.")

    def _show(self, args: list[str]) -> None:
        if not args:
            self._err.write(USAGE_SHOW)
            return
        try:
            resp = self._backend.show(self.opts)
        except ClientError as exc:
            self._print(f"error: couldn't get model: {exc}")
            return
        what = args[0]
        if what == "info":
            self._err.write(show_info(resp))
        elif what == "license":
            self._print(resp.license or "No license was specified for this model.")
        elif what == "modelfile":
            self._print(resp.modelfile)
        elif what == "parameters":
            self._show_parameters(resp.parameters)
        elif what == "system":
            system = self.opts.system or resp.system
            self._print(
                f"{system}\n" if system else "No system message was specified for this model."
            )
        elif what == "template":
            self._print(resp.template or "No prompt template was specified for this model.")
        else:
            self._print(f"Unknown command '/show {what}'. Type /? for help")

    def _show_parameters(self, parameters: str) -> None:
        self._print("Model defined parameters:")
        if not parameters:
            self._print("  No additional parameters were specified for this model.")
        else:
            for line in parameters.split("\n"):
                self._print(f"  {line}")
        self._print("")
        if self.opts.options:
            self._print("User defined parameters:")
            for name, value in self.opts.options.items():
                self._print(f"  {name:<30} {go_value(value)}")
            self._print("")

    def _show_history(self) -> None:
        """The stored conversation's turns, or this session's when none is stored."""
        if self.opts.conversation is None:
            self._out.write("".join(f"{m['role']}: {m['content']}\n" for m in self.messages))
            return
        try:
            self._out.write(item_lines(self._backend.items(self.opts.conversation)))
        except ClientError as exc:
            self._err.write(f"Error: {exc}\n")

    # -- chat -----------------------------------------------------------

    def request(self) -> JSONObject:
        """The ``/api/chat`` body for the current history and settings; with a
        stored conversation only the messages the server does not have yet."""
        body: JSONObject = {"model": self.opts.model, "messages": self.messages[self._sent :]}
        if self.opts.conversation is not None:
            body["conversation"] = self.opts.conversation
        if self.opts.format:
            body["format"] = self.opts.format
        if self.opts.options:
            body["options"] = dict(self.opts.options)
        if self.opts.think is not None:
            body["think"] = self.opts.think
        if self.opts.keep_alive is not None:
            body["keep_alive"] = self.opts.keep_alive
        return body

    def _submit(self, text: str) -> None:
        """Send a user message; only a finished reply joins the history."""
        self.messages.append({"role": "user", "content": text})
        try:
            reply = self._backend.send(self.request(), self.opts)
        except ClientError as exc:
            self.messages.pop()
            self._out.write("\n")
            self._err.write(f"Error: {exc}\n")
            return
        if reply is None:
            self._out.write("\n")
            if self.opts.conversation is not None:
                self._sent = len(self.messages)  # the server kept the cut-off turn
            return
        self.messages.append(reply.message)
        if self.opts.conversation is not None:
            self._sent = len(self.messages)
        self._out.write("\n\n")
        if self.opts.verbose:
            self._err.write(timing_summary(reply.metrics))

    def _print(self, text: str) -> None:
        self._out.write(text + "\n")


class HTTPBackend:
    """:class:`Backend` over a :class:`Client`, printing replies to ``out``."""

    def __init__(
        self, client: Client, out: TextIO, *, color: bool, width: int | None = None
    ) -> None:
        self._client = client
        self._out = out
        self._color = color
        self._width = width

    def show(self, opts: RunOptions) -> ShowResponse:
        return self._client.show(opts.model, system=opts.system, options=opts.options)

    def new_conversation(self, opts: RunOptions) -> str:
        return str(self._client.create_conversation({"model": opts.model})["id"])

    def items(self, conversation: str) -> list[JSONObject]:
        return self._client.conversation_items(conversation)

    def load(self, model: str) -> None:
        self._client.show(model)
        for _ in self._client.chat({"model": model, "messages": []}):
            pass

    def save(self, body: JSONObject) -> None:
        for _ in self._client.create(body):
            pass

    def models(self) -> list[ModelEntry]:
        return self._client.tags().models

    def send(self, body: JSONObject, opts: RunOptions) -> AssistantTurn | None:
        width = None
        if opts.word_wrap:
            width = self._width or shutil.get_terminal_size().columns
        printer = ResponsePrinter(
            self._out, width=width, hide_thinking=opts.hide_thinking, color=self._color
        )
        stream = self._client.chat(body)
        last = Metrics()
        role = "assistant"
        try:
            for chunk in stream:
                message = chunk.message
                role = message.role or role
                printer.feed(message.thinking or "", message.content, message.tool_calls)
                last = chunk
        except KeyboardInterrupt:
            printer.finish()
            return None
        finally:
            stream.close()
        printer.finish()
        reply: JSONObject = {"role": role, "content": printer.content}
        if printer.thinking:
            reply["thinking"] = printer.thinking
        return AssistantTurn(message=reply, metrics=last)


def run_repl(session: Session, history_file: Path | None, out: TextIO) -> int:
    """Read lines with ``readline`` until ``/bye`` or Ctrl+D.

    ``history_file`` is read at start and written at exit; ``None`` keeps no
    history (``OLLAMA_NOHISTORY``).
    """
    readline = _load_readline()
    history = _History(readline, history_file)
    session.set_history = history.enable
    try:
        while True:
            try:
                line = input(session.prompt)
            except EOFError:
                out.write("\n")
                return 0
            except KeyboardInterrupt:
                session.interrupt()
                continue
            try:
                if not session.feed(line):
                    return 0
            except KeyboardInterrupt:  # between chunks, after the reply was handled
                out.write("\n")
    finally:
        history.save()


def _load_readline() -> Any:
    """Import ``readline`` for line editing where the platform has it."""
    try:
        import readline
    except ImportError:  # e.g. Windows without pyreadline
        return None
    return readline


class _History:
    """Line history kept in ``history_file`` while enabled."""

    def __init__(self, readline: Any, path: Path | None) -> None:
        self._readline = readline
        self._path = path
        self._enabled = path is not None
        if readline is None:
            return
        readline.set_auto_history(self._enabled)
        if path is not None and path.exists():
            with contextlib.suppress(OSError):
                readline.read_history_file(str(path))

    def enable(self, on: bool) -> None:
        self._enabled = on
        if self._readline is not None:
            self._readline.set_auto_history(on)

    def save(self) -> None:
        if self._readline is None or self._path is None:
            return
        with contextlib.suppress(OSError):
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._readline.write_history_file(str(self._path))
