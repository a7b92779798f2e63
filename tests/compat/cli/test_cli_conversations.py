"""CLI sessions: the REPL stores its turns, ``/history``, ``run --conversation``, and
``llamaport conversations list|show|rm|export``, against the real server over HTTP."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path

from llamaport.compat.cli.commands import Console
from llamaport.compat.cli.main import run_cli
from llamaport.compat.client import Client
from llamaport.storage.settings import Settings, parse_host
from tests.compat.cli._repl import Harness
from tests.compat.cli.test_cli_e2e import CLI, Terminal, cli_env
from tests.conftest import MODEL, Server


def _cli(server: Server, *argv: str) -> tuple[int, str, str]:
    console = Console(io.StringIO(), io.StringIO(), io.StringIO())
    settings = Settings(host=parse_host(server.host), home=server.home)
    code = run_cli(list(argv), console, settings)
    return code, console.stdout.getvalue(), console.stderr.getvalue()


def _new(server: Server) -> str:
    with Client(server.url) as client:
        return str(client.create_conversation({"model": MODEL})["id"])


def _items(server: Server, conversation: str) -> list[dict[str, object]]:
    with Client(server.url) as client:
        return client.conversation_items(conversation)


def test_a_session_stores_its_turns_and_shows_them(
    repl: Callable[..., Harness], server: Server
) -> None:
    conversation = _new(server)
    h = repl(conversation=conversation)
    h.feed("hello", "and again")
    assert h.err.getvalue() == ""
    items = _items(server, conversation)
    assert [i["role"] for i in items] == ["user", "assistant", "user", "assistant"]
    assert [i["content"][0]["text"] for i in items[::2]] == ["hello", "and again"]  # type: ignore[index]
    assert h.session.request()["messages"] == [], "only new messages travel"
    before = h.out.getvalue()
    h.feed("/history")
    shown = h.out.getvalue()[len(before) :]
    assert shown.splitlines()[0] == "user: hello"
    assert shown.splitlines()[2] == "user: and again"
    assert len(re.findall(r"^assistant( \(incomplete\))?: ", shown, re.M)) == 2, (
        "a reply cut at num_predict is marked incomplete"
    )


def test_clear_starts_a_new_conversation_and_keeps_the_old(
    repl: Callable[..., Harness], server: Server
) -> None:
    conversation = _new(server)
    h = repl(conversation=conversation)
    h.feed("hello", "/clear")
    assert h.session.opts.conversation not in (None, conversation)
    assert len(_items(server, conversation)) == 2
    h.feed("fresh")
    assert h.session.opts.conversation is not None
    assert len(_items(server, h.session.opts.conversation)) == 2


def test_history_without_a_stored_conversation_shows_the_session(
    repl: Callable[..., Harness],
) -> None:
    h = repl()
    h.feed("hello", "/history")
    assert "user: hello\nassistant: " in h.out.getvalue(), "local messages carry no status"


def test_run_with_conversation_resumes_it(server: Server) -> None:
    conversation = _new(server)
    code, out, err = _cli(server, "run", MODEL, "--conversation", conversation, "hi there")
    assert (code, err) == (0, "")
    items = _items(server, conversation)
    assert [i["role"] for i in items] == ["user", "assistant"]
    assert out.strip() == items[1]["content"][0]["text"].strip()  # type: ignore[index]
    code, _, err = _cli(server, "run", MODEL, "--conversation", "conv_nope", "x")
    assert code == 1 and err == "Error: conversation 'conv_nope' not found\n"


def test_conversations_list_show_export_rm(server: Server) -> None:
    conversation = _new(server)
    with Client(server.url) as client:
        for _ in client.chat(
            {
                "model": MODEL,
                "conversation": conversation,
                "messages": [{"role": "user", "content": "Tell me about otters"}],
                "options": {"num_predict": 4},
            }
        ):
            pass
    code, out, _ = _cli(server, "conversations", "list")
    assert code == 0 and out.splitlines()[0].split() == ["ID", "TITLE", "ITEMS", "UPDATED"]
    row = next(line for line in out.splitlines() if line.startswith(conversation))
    assert "Tell me about otters" in row and " 2 " in row
    code, out, _ = _cli(server, "conversations", "show", conversation)
    assert code == 0 and out.startswith("user: Tell me about otters\nassistant (incomplete): ")
    code, out, _ = _cli(server, "conversations", "export", conversation)
    exported = json.loads(out)
    assert exported["conversation"]["id"] == conversation
    assert [i["role"] for i in exported["items"]] == ["user", "assistant"]
    code, out, _ = _cli(server, "conversations", "export", conversation, "--format", "markdown")
    assert (
        out.startswith("# Tell me about otters\n") and "\n## user\n\nTell me about otters\n" in out
    )
    code, _, err = _cli(server, "conversations", "export", conversation, "--format", "xml")
    assert code == 1 and "unknown export format" in err
    code, out, _ = _cli(server, "conversations", "rm", conversation)
    assert (code, out) == (0, f"deleted '{conversation}'\n")
    for argv in (["show", conversation], ["rm", conversation], ["export", conversation]):
        code, _, err = _cli(server, "conversations", *argv)
        assert code == 1 and err == f"Error: conversation '{conversation}' not found\n"


def test_the_real_repl_stores_its_chat_and_resumes_it(server: Server, tmp_path: Path) -> None:
    """``llamaport run`` on a pseudo-terminal: the chat is stored, ``/history`` shows it,
    and ``run --conversation ID`` replays it and goes on."""
    env = {**cli_env(server.host, tmp_path / "cli-home"), "TERM": "dumb"}
    term = Terminal([*CLI, "run", MODEL], env=env)
    try:
        term.expect(">>> ")
        term.sendline("/set parameter num_predict 4")
        term.expect(">>> ")
        term.sendline("Name a bird in the REPL")
        term.expect(">>> ")
        term.sendline("/history")
        shown = term.expect(">>> ")
        assert "user: Name a bird in the REPL" in shown and "assistant" in shown
        term.sendline("/bye")
        assert term.wait() == 0
    finally:
        term.close()
    code, out, _ = _cli(server, "conversations", "list")
    assert code == 0
    row = next(line for line in out.splitlines() if "Name a bird in the REPL" in line)
    conversation = row.split()[0]
    term = Terminal([*CLI, "run", MODEL, "--conversation", conversation], env=env)
    try:
        term.expect(">>> Name a bird in the REPL\r\n")  # the stored turns are replayed first
        term.expect(">>> ")
        term.sendline("/set parameter num_predict 4")
        term.expect(">>> ")
        term.sendline("And a fish")
        term.expect(">>> ")
        term.sendline("/bye")
        assert term.wait() == 0
    finally:
        term.close()
    users = [i["content"][0]["text"] for i in _items(server, conversation) if i["role"] == "user"]  # type: ignore[index]
    assert users == ["Name a bird in the REPL", "And a fish"]
