"""``llamaport conversations list|show|rm|export`` and the REPL's ``/history``.

Conversations live on the server (``/v1/conversations``); this module only
formats what :class:`Client` fetches. Items are OpenAI's shapes, so a turn is
a ``message`` (user, assistant, system), a ``function_call`` or its
``function_call_output``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

from llamaport.compat.cli.commands import CLIError, Console, require_server
from llamaport.compat.cli.format import human_time, render_table
from llamaport.compat.client import Client, JSONObject, ResponseError

__all__ = [
    "EXPORT_FORMATS",
    "export",
    "item_lines",
    "item_text",
    "known",
    "list_conversations",
    "markdown",
    "remove",
    "show",
]

EXPORT_FORMATS = ("json", "markdown", "md")
NOT_FOUND = 404


def item_text(item: JSONObject) -> str:
    kind = item.get("type")
    if kind == "function_call":
        return f"{item.get('name')}({item.get('arguments')})"
    if kind == "function_call_output":
        return str(item.get("output", ""))
    parts = item.get("content") or item.get("summary") or []
    return "\n".join(str(p.get("text", p.get("refusal", ""))) for p in parts if isinstance(p, dict))


def _who(item: JSONObject) -> str:
    kind = item.get("type")
    if kind == "function_call":
        return "tool call"
    if kind == "function_call_output":
        return "tool result"
    if kind == "reasoning":
        return "reasoning"
    role = str(item.get("role", ""))
    return f"{role} (incomplete)" if item.get("status") == "incomplete" else role


def item_lines(items: Sequence[JSONObject]) -> str:
    """One block per item: ``role: text``, what ``show`` and ``/history`` print."""
    return "".join(f"{_who(item)}: {item_text(item)}\n" for item in items)


def markdown(conversation: JSONObject, items: Sequence[JSONObject]) -> str:
    """A readable export: a title, then each item under its role."""
    title = conversation.get("title") or conversation.get("id")
    out = [f"# {title}\n\n", f"Conversation `{conversation.get('id')}`\n"]
    for item in items:
        out.append(f"\n## {_who(item)}\n\n{item_text(item)}\n")
    return "".join(out)


@contextmanager
def known(conversation_id: str) -> Iterator[None]:
    """Report the server's 404 for ``conversation_id`` as the CLI words it."""
    try:
        yield
    except ResponseError as exc:
        if exc.status == NOT_FOUND:
            raise CLIError(f"conversation '{conversation_id}' not found") from exc
        raise


def _fetch(client: Client, conversation_id: str) -> tuple[JSONObject, list[JSONObject]]:
    with known(conversation_id):
        return client.conversation(conversation_id), client.conversation_items(conversation_id)


def list_conversations(client: Client, console: Console, now: datetime | None = None) -> int:
    """ID, TITLE, ITEMS, UPDATED; the most recently used first."""
    require_server(client)
    rows = []
    for conv in client.conversations():
        updated = datetime.fromtimestamp(int(conv.get("updated_at", 0)), UTC)
        title = str(conv.get("title") or "")
        rows.append(
            [
                str(conv["id"]),
                title if len(title) <= 40 else title[:39] + "…",
                str(conv.get("item_count", 0)),
                human_time(updated, now or datetime.now(UTC)),
            ]
        )
    console.stdout.write(render_table(["ID", "TITLE", "ITEMS", "UPDATED"], rows))
    return 0


def show(client: Client, console: Console, conversation_id: str) -> int:
    require_server(client)
    _, items = _fetch(client, conversation_id)
    console.stdout.write(item_lines(items))
    return 0


def remove(client: Client, console: Console, ids: Sequence[str]) -> int:
    """``rm ID...``: prints ``deleted 'ID'`` for each, as ``llamaport rm`` does for models."""
    require_server(client)
    for conversation_id in ids:
        with known(conversation_id):
            client.delete_conversation(conversation_id)
        console.stdout.write(f"deleted '{conversation_id}'\n")
    return 0


def export(client: Client, console: Console, conversation_id: str, fmt: str) -> int:
    """JSON (``{"conversation": ..., "items": [...]}``, re-importable items) or Markdown."""
    if fmt not in EXPORT_FORMATS:
        raise CLIError(f"unknown export format '{fmt}' (json or markdown)")
    require_server(client)
    conversation, items = _fetch(client, conversation_id)
    if fmt == "json":
        body = {"conversation": conversation, "items": items}
        console.stdout.write(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    else:
        console.stdout.write(markdown(conversation, items))
    return 0
