"""What the repository hands out and takes in: frozen records, new items, ids, titles."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the rows only arrive from repository.py; importing them loads SQLModel
    from llamaport.storage.conversations.tables import ConversationRow, ItemRow, ResponseRow

__all__ = [
    "ConversationRecord",
    "ItemPage",
    "ItemRecord",
    "JSONObject",
    "NewItem",
    "ResponseRecord",
    "conversation_record",
    "item_record",
    "new_id",
    "new_item_id",
    "response_record",
    "title_of",
]

JSONObject = dict[str, Any]


def new_id(prefix: str) -> str:
    """An OpenAI-style id: ``conv_``, ``msg_``, ``fc_``, ``resp_`` ... and 48 hex digits."""
    return f"{prefix}_{secrets.token_hex(24)}"


@dataclass(frozen=True)
class ConversationRecord:
    id: str
    created_at: int
    updated_at: int
    title: str
    metadata: dict[str, str]
    item_count: int = 0


@dataclass(frozen=True)
class ItemRecord:
    id: str
    conversation_id: str
    type: str
    role: str | None
    status: str
    model: str | None
    input_tokens: int
    output_tokens: int
    created_at: int
    data: JSONObject
    """The item in OpenAI's shape, with its ``id`` and ``status``."""


@dataclass(frozen=True)
class ItemPage:
    items: list[ItemRecord]
    has_more: bool


@dataclass(frozen=True)
class ResponseRecord:
    id: str
    created_at: int
    previous_response_id: str | None
    conversation_id: str | None
    status: str
    input_items: list[JSONObject]
    body: JSONObject


@dataclass(frozen=True)
class NewItem:
    """An item to append: OpenAI's shape plus what the columns record."""

    data: JSONObject
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0


def conversation_record(row: ConversationRow, count: int = 0) -> ConversationRecord:
    return ConversationRecord(
        row.id, row.created_at, row.updated_at, row.title, json.loads(row.meta), count
    )


def item_record(row: ItemRow) -> ItemRecord:
    return ItemRecord(
        id=row.id,
        conversation_id=row.conversation_id,
        type=row.type,
        role=row.role,
        status=row.status,
        model=row.model,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        created_at=row.created_at,
        data=json.loads(row.data),
    )


def response_record(row: ResponseRow) -> ResponseRecord:
    return ResponseRecord(
        id=row.id,
        created_at=row.created_at,
        previous_response_id=row.previous_response_id,
        conversation_id=row.conversation_id,
        status=row.status,
        input_items=json.loads(row.input_items),
        body=json.loads(row.body),
    )


_ID_PREFIX = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "reasoning": "rs",
}


def new_item_id(kind: str) -> str:
    """A fresh id for an item of ``kind`` (``msg_``, ``fc_``, ``fco_``, ``rs_``)."""
    return new_id(_ID_PREFIX.get(kind, "item"))


def title_of(items: list[NewItem]) -> str:
    """The first user text, cut to one line of 80 characters."""
    for item in items:
        data = item.data
        if data.get("type") == "message" and data.get("role") == "user":
            for part in data.get("content") or []:
                text = part.get("text") if isinstance(part, dict) else None
                if isinstance(text, str) and text.strip():
                    line = " ".join(text.split())
                    return line if len(line) <= 80 else line[:79] + "…"
    return ""
